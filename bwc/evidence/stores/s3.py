"""The S3-compatible evidence store (AWS S3, Ceph RGW, MinIO, moto): ``s3://bucket/prefix``.

The only module that imports the AWS SDK (botocore: boto3's client, without boto3's resource
layer and s3transfer, which bwc does not use and which cost ~50 ms to load). Credentials,
region and endpoint come from the standard AWS chain (``AWS_*`` variables, ``~/.aws``); they
are never stored or logged by bwc.

Layout under the prefix, as in the local store: ``objects/<aa>/<sha256>`` (the bytes, with
``sha256`` and ``size`` in its metadata), ``objects/<aa>/<sha256>.manifest.json`` and
``.manifest.sig`` beside it, and ``log/checkpoint``.

Uploads stream from the spool file: one PUT up to the multipart threshold (its checksum is
the file's own SHA-256, known from staging, so the server can check the whole object), and
multipart above it, parts sent in parallel through one shared ``RangeReader``, which reads
the spool copy from the medium into reused buffers, so memory stays flat whatever the size.
Every request carries a Content-MD5 of its body (AWS and Ceph RGW refuse a body that does
not match it) and a SHA-256 checksum (AWS checks it; RGW 16.2 and moto ignore it). The
server is not trusted to check either, and a multipart object's SHA-256 checksum is a hash
of its part hashes, never the file's: verification is ``read_back``, which streams the
object and re-hashes it. Where and how the servers differ: docs/s3.md.

Where the bucket has Object Lock, new objects get COMPLIANCE retention until the date of the
default retention class; ``extend_retention`` only ever moves that date later and
``set_legal_hold`` maps to PutObjectLegalHold. Nothing here calls an API that shortens or
downgrades a retention.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast
from urllib.parse import urlparse

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)
from urllib3.exceptions import HTTPError

from bwc.config.settings import RetentionSettings, S3Settings
from bwc.errors import StoreError, first_line
from bwc.evidence import retention
from bwc.evidence.fingerprint import Digest, RangeReader
from bwc.evidence.stores.base import (
    META_NAMES,
    SHA_RE,
    StoreInfo,
    check_log_path,
    check_meta_name,
    check_record_name,
    check_sha,
    meta_conflict,
)
from bwc.evidence.timefmt import Clock, SystemClock, format_utc

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

    from bwc.config.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
MIB = 1 << 20
_READ = 1 << 20  # read-back and part-hash buffer
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TRANSIENT = {
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "503",
    "500",
}
_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}
# A conditional PUT refused: the key exists (412), or another conditional write to it was
# under way (409; the key may then exist or not).
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_CONDITIONAL_ROUNDS = 5
_QUICK_ATTEMPTS = 3  # an operation that is not patient: as the SDK's standard mode would
_BACKOFF_START = 0.25  # seconds; full jitter over an exponentially growing window
_BACKOFF_MAX = 5.0
_NO_LOCK = {"ObjectLockConfigurationNotFoundError"}
# `check` (every command's first request, and `bwc status`) waits at most this long for an
# answer, and does not retry one that never came: an RGW whose OSDs are down or full takes
# the request and never answers, and a status must say so in seconds, not minutes.
_CHECK_TIMEOUT = 10.0


def _quiet_sdk_logs() -> None:
    # botocore's DEBUG output includes signed request headers (the access key id among
    # them). Credentials are never logged (DESIGN, invariant 7), so the SDK's loggers stay
    # at INFO even under `bwc -v`.
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        log = logging.getLogger(name)
        if log.getEffectiveLevel() < logging.INFO:
            log.setLevel(logging.INFO)


def _meta_type(name: str) -> str:
    return "application/json" if name.endswith(".json") else "application/octet-stream"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``length`` bytes of a file at ``offset``: the body of one
    PUT or part. Parallel parts share one ``RangeReader``, which reads the spool copy from
    the medium (it was written with direct I/O and is not in the page cache)."""

    def __init__(self, reader: RangeReader, offset: int, length: int) -> None:
        self._reader = reader
        self._off = offset
        self._len = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._len

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._len}[whence]
        self._pos = max(0, min(self._len, base + offset))
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._next(min(len(view), self._len - self._pos))
        view[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        # The HTTP client asks for 16 KiB at a time; answering with up to 1 MiB (it sends
        # whatever it gets) cuts the read and send calls of an upload 64-fold. (4 MiB saves
        # no time and costs ~18 MB more memory with three uploads at once.)
        n = self._len - self._pos if size < 0 else min(max(size, _READ), self._len - self._pos)
        return self._next(n)

    def _next(self, n: int) -> bytes:
        """Up to ``n`` bytes from the current position (b"" at the window's end)."""
        if n <= 0:
            return b""
        data = self._reader.pread(n, self._off + self._pos)
        if not data:
            raise StoreError("the staged file shrank while it was uploaded")
        self._pos += len(data)
        return data


class _Body(io.RawIOBase):
    """A streamed GET response as a raw file for ``open_object``. The connection can fail
    after the response began (the server killed, a read timeout, a body cut short): that is
    the store's error, said as one (``fail``), never an SDK or urllib3 exception escaping to
    the command line as an internal error."""

    def __init__(self, body: Any, fail: Callable[[Exception], StoreError]) -> None:
        self._body = body
        self._fail = fail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (BotoCoreError, HTTPError, OSError) as e:
            raise self._fail(e) from e
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _version(vid: str | None) -> str | None:
    """A version id, or None where the bucket keeps none (unversioned buckets say "null")."""
    return None if vid in (None, "", "null") else vid


def _hash_range(
    reader: RangeReader, offset: int, length: int, *, sha256: bool = True
) -> tuple[str, str]:
    """The base64 SHA-256 and MD5 of a range, in one pass: the checksum header and the
    Content-MD5 of the request that sends it. ``sha256`` False: the MD5 only (the SHA-256
    is "" then), for a body whose SHA-256 is already known."""
    sha = hashlib.sha256() if sha256 else None
    md5 = hashlib.md5(usedforsecurity=False)
    # read apart from the request body (_Window), so the sums describe the spool copy and
    # not whatever the body stream hands the HTTP client (the tests corrupt that stream)
    pos, end = offset, offset + length
    while pos < end:
        data = reader.pread(min(_READ, end - pos), pos)
        if not data:
            raise StoreError("the staged file shrank while it was uploaded")
        if sha is not None:
            sha.update(data)
        md5.update(data)
        pos += len(data)
    return (_b64(sha.digest()) if sha is not None else ""), _b64(md5.digest())


def _md5(data: bytes) -> str:
    return _b64(hashlib.md5(data, usedforsecurity=False).digest())


@dataclass(frozen=True)
class _Version:
    key: str
    version_id: str | None  # None: unversioned bucket ("null")
    marker: bool  # a delete marker


def open_url(url: str, settings: Settings | None = None, clock: Clock | None = None) -> S3Store:
    """The registry's entry (``bwc.config.stores``): ``s3://bucket/prefix``."""
    return S3Store.from_url(url, settings=settings, clock=clock)


class S3Store:
    """An ``ObjectStore`` in an S3-compatible bucket (see the module docstring)."""

    # Every request waits a round trip: a third file keeps the server busy while one file is
    # read back and another's manifest is sent (bench/s3.py: ~5% faster than two).
    in_flight = 3

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        s3: S3Settings | None = None,
        policy: RetentionSettings | None = None,
        clock: Clock | None = None,
        client: S3Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not _BUCKET_RE.match(bucket):
            raise StoreError(f"{bucket!r} is not a valid S3 bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.options = s3 or S3Settings()
        self.policy = policy or RetentionSettings()
        self.clock: Clock = clock or SystemClock()
        self._client = client
        self._injected = client is not None
        self._session: botocore.session.Session | None = None
        self._probe_client: S3Client | None = None
        self._client_lock = threading.Lock()
        self._sleep = sleep
        self._lock_enabled: bool | None = None
        _quiet_sdk_logs()

    @classmethod
    def from_url(
        cls, url: str, settings: Settings | None = None, clock: Clock | None = None
    ) -> S3Store:
        parsed = urlparse(url)
        if parsed.username or parsed.password or "@" in parsed.netloc:
            raise StoreError(
                "credentials do not belong in the store URL",
                hint="use s3://bucket/prefix; credentials come from AWS_* variables or ~/.aws",
            )
        if parsed.query or parsed.fragment:
            raise StoreError(
                f"the store URL {url!r} has a query or fragment; use s3://bucket/prefix"
            )
        return cls(
            parsed.netloc,
            parsed.path,
            s3=settings.s3 if settings else None,
            policy=settings.retention if settings else None,
            clock=clock,
        )

    # ------------------------------------------------------------------ client and errors

    @property
    def client(self) -> S3Client:
        with self._client_lock:
            if self._client is None:
                self._client = self._new_client(self.options.timeout_seconds)
            return self._client

    @property
    def probe_client(self) -> S3Client:
        """A client for ``check``: the same chain, a short read timeout (an injected
        ``client`` serves both)."""
        if self._injected:
            return self.client
        with self._client_lock:
            if self._probe_client is None:
                self._probe_client = self._new_client(
                    min(_CHECK_TIMEOUT, self.options.timeout_seconds)
                )
            return self._probe_client

    def _new_client(self, read_timeout: float) -> S3Client:
        cfg = Config(
            # one retry layer, ours (_call), with jitter: none stacked in the SDK
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=10,
            read_timeout=read_timeout,
            max_pool_connections=max(32, 4 * self.options.concurrency),
            # We send our own SHA-256 with every body and verify by reading back;
            # the SDK's own CRC32 and response validation would only hash twice.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # The body's SHA-256 travels in the signed x-amz-checksum-sha256 header;
            # signing the payload too would read every part once more.
            s3={"payload_signing_enabled": False},
            user_agent_extra="bwc",
        )
        try:
            # botocore's own session: the same AWS chain as boto3's, without loading
            # boto3 and s3transfer (~50 ms of every `bwc ingest`)
            if self._session is None:
                self._session = botocore.session.get_session()
            return cast("S3Client", self._session.create_client("s3", config=cfg))
        except BotoCoreError as e:
            raise StoreError(
                f"cannot set up the S3 client: {first_line(e)}",
                hint="check AWS_DEFAULT_REGION, AWS_ENDPOINT_URL and ~/.aws/config",
            ) from e

    @property
    def endpoint(self) -> str:
        try:
            url = urlparse(self.client.meta.endpoint_url)
        except StoreError:
            return "the S3 endpoint"
        return f"{url.scheme}://{url.hostname}" + (f":{url.port}" if url.port else "")

    def _where(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    def _error(self, e: Exception, what: str, key: str | None) -> StoreError:
        """One clear StoreError for an SDK error: what failed, where, and what to check.
        Messages never include credentials (the SDK's never do, and nothing is added)."""
        if isinstance(e, NoCredentialsError | PartialCredentialsError):
            return StoreError(
                f"no usable S3 credentials for {self._where(None)}",
                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE and "
                "~/.aws/credentials",
            )
        if isinstance(e, ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", "?"))
            msg = str(err.get("Message", "")).strip()
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "InvalidAccessKeyId":
                return StoreError(
                    f"S3 at {self.endpoint} does not know this access key (InvalidAccessKeyId)",
                    hint="check AWS_ACCESS_KEY_ID or the AWS profile in use",
                )
            if code == "SignatureDoesNotMatch":
                return StoreError(
                    f"S3 at {self.endpoint} rejected the request signature: the secret key "
                    "does not match the access key (SignatureDoesNotMatch)",
                    hint="check AWS_SECRET_ACCESS_KEY or the AWS profile in use",
                )
            if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
                return StoreError(
                    f"the S3 session token was refused ({code})",
                    hint="renew the temporary credentials (AWS_SESSION_TOKEN / the profile)",
                )
            if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
                return StoreError(
                    f"S3 denied {what} of {self._where(key)} (AccessDenied)",
                    hint="check the credentials and the bucket policy for this operation",
                )
            if code == "NoSuchBucket" or (status == 404 and key is None):
                return StoreError(
                    f"bucket {self.bucket} does not exist at {self.endpoint}",
                    hint="create it (with Object Lock for evidence) or fix the store URL",
                )
            return StoreError(
                f"S3 {what} of {self._where(key)} failed: {code}" + (f": {msg}" if msg else "")
            )
        if isinstance(e, ReadTimeoutError):
            # RGW up, RADOS not answering (OSDs down, or full: Ceph blocks writes then)
            return StoreError(
                f"S3 at {self.endpoint} took the request but sent no answer in time "
                f"({what} of {self._where(key)}): the storage behind the endpoint may be "
                "down or full",
                hint="ask the storage operators (for Ceph: `ceph health detail`); sources "
                "are left untouched",
            )
        if isinstance(e, BotoConnectionError | HTTPClientError):
            return StoreError(
                f"cannot reach the S3 endpoint {self.endpoint} ({what}): {first_line(e)}",
                hint="check AWS_ENDPOINT_URL and the network; sources are left untouched",
            )
        return StoreError(f"S3 {what} of {self._where(key)} failed: {first_line(e)}")

    @staticmethod
    def _transient(e: BaseException) -> bool:
        if isinstance(e, BotoConnectionError | HTTPClientError):
            return True
        if isinstance(e, ClientError):
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            return code in _TRANSIENT or int(status) >= 500
        return False

    def _call(
        self,
        what: str,
        key: str | None,
        fn: Callable[[], T],
        *,
        patient: bool,
        retry_timeouts: bool = True,
    ) -> T:
        """Run one S3 operation; SDK errors become StoreError. The one retry layer (the SDK's
        own is off): transient failures (unreachable, 5xx, throttling) are retried with
        exponential backoff and full jitter, three attempts in all; ``patient``: for as long
        as ``retry_seconds``, so that an upload survives a restart of the store instead of
        failing the file. ``retry_timeouts`` False: a request that got no answer at all
        within the read timeout is not tried again (``check``)."""
        stop = (
            stop_before_delay(self.options.retry_seconds)
            if patient
            else stop_after_attempt(_QUICK_ATTEMPTS)
        )

        def log(state: RetryCallState) -> None:
            e = state.outcome.exception() if state.outcome else None
            logger.warning(
                "S3 %s of %s failed (%s); retrying in %.1f s",
                what,
                self._where(key),
                first_line(e) if e else "?",
                state.upcoming_sleep,
            )

        retrying = Retrying(
            stop=stop,
            wait=wait_random_exponential(multiplier=_BACKOFF_START, max=_BACKOFF_MAX),
            retry=retry_if_exception(
                lambda e: (
                    self._transient(e) and (retry_timeouts or not isinstance(e, ReadTimeoutError))
                )
            ),
            sleep=self._sleep,
            before_sleep=log,
            reraise=True,
        )
        try:
            return retrying(fn)
        except (BotoCoreError, ClientError) as e:
            raise self._error(e, what, key) from e

    @staticmethod
    def _code(e: ClientError) -> str:
        return str(e.response.get("Error", {}).get("Code", ""))

    def _or_missing(self, fn: Callable[[], T]) -> T | None:
        """``fn()``, or None when the server says the key (or version) is not there."""
        try:
            return fn()
        except ClientError as e:
            if self._code(e) in _MISSING:
                return None
            raise

    def _missing(self, sha256: str) -> StoreError:
        return StoreError(f"object {sha256} is missing from the store")

    # ------------------------------------------------------------------ layout

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def object_key(self, sha256: str) -> str:
        check_sha(sha256)
        return self._key(f"objects/{sha256[:2]}/{sha256}")

    def meta_key(self, sha256: str, name: str) -> str:
        check_meta_name(name)
        return f"{self.object_key(sha256)}.{name}"

    @property
    def checkpoint_key(self) -> str:
        return self._key("log/checkpoint")

    # ------------------------------------------------------------------ Object Lock

    def lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock (asked once, then remembered)."""
        if self._lock_enabled is None:
            self._lock_enabled = self._read_lock_config() is not None
        return self._lock_enabled

    def _read_lock_config(self) -> dict[str, Any] | None:
        def get() -> dict[str, Any] | None:
            try:
                cfg = self.client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as e:
                if self._code(e) in _NO_LOCK:
                    return None
                raise
            conf = dict(cfg.get("ObjectLockConfiguration", {}))
            return conf if conf.get("ObjectLockEnabled") == "Enabled" else None

        return self._call("reading the Object Lock configuration", None, get, patient=False)

    def _new_lock(self) -> datetime | None:
        """The COMPLIANCE date for a new object: its default class's date from now."""
        if not self.lock_enabled():
            return None
        now = self.clock.now()
        until = retention.retain_until(self.policy.default_class, now)
        return retention.lock_target(until, now, self.policy.permanent_lock_years)

    def _permanent_lock(self) -> datetime | None:
        """The COMPLIANCE date for an object kept like permanent evidence (bwc's records,
        the log's full tiles), or None where the bucket does not lock."""
        if not self.lock_enabled():
            return None
        return retention.lock_target(None, self.clock.now(), self.policy.permanent_lock_years)

    def _lock_args(self, lock: datetime | None) -> dict[str, Any]:
        if lock is None:
            return {}
        return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": lock}

    # ------------------------------------------------------------------ the contract

    def create(self) -> None:
        """Nothing: the bucket is made by its operator (with Object Lock, for evidence)."""

    def iter_objects(self) -> Iterator[tuple[str, datetime]]:
        base = self._key("objects/")
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base}
            if token:
                args["ContinuationToken"] = token
            # one page (1,000 keys) at a time; keys come in byte order: objects/<aa>/<sha>
            # before its manifests, so in sha256 order

            def one(a: dict[str, Any] = args) -> Any:
                return self.client.list_objects_v2(**a)

            page = self._call("listing", None, one, patient=True)
            for entry in page.get("Contents", []):
                parts = entry["Key"][len(base) :].split("/")
                if len(parts) == 2 and SHA_RE.fullmatch(parts[1]) and parts[1][:2] == parts[0]:
                    yield parts[1], entry["LastModified"]
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def prefetch_ids(self) -> list[str]:
        return []  # listing a bucket costs requests: each object is read as it is checked

    def check(self) -> None:
        """Reach the bucket with the configured credentials (fails fast, clear message)."""

        def probe() -> None:
            self.probe_client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(""), MaxKeys=1)

        self._call("listing", None, probe, patient=False, retry_timeouts=False)
        self.lock_enabled()

    def has_object(self, sha256: str) -> bool:
        key = self.object_key(sha256)

        def head() -> bool:
            found = self._or_missing(lambda: self.client.head_object(Bucket=self.bucket, Key=key))
            return found is not None

        return self._call("HEAD", key, head, patient=False)

    def put_object(self, sha256: str, staged: Path) -> str | None:
        key = self.object_key(sha256)
        try:
            size = os.stat(staged).st_size
        except FileNotFoundError:
            # Resuming after a crash: the spool copy is gone. If the object is already
            # stored, say so (the read-back that follows checks its bytes); if not, the
            # caller copies the source again.
            found = self._stored_version(key, sha256)
            if found is not None:
                return found or None
            raise
        return self._upload(key, staged, sha256, size, self._new_lock())

    def _upload(
        self, key: str, staged: Path, sha256: str, size: int, lock: datetime | None
    ) -> str | None:
        """A file in one PUT up to the threshold (with its SHA-256), else in parts."""
        meta = {"sha256": sha256, "size": str(size)}
        if size <= max(self.options.multipart_threshold_mb, self.options.part_size_mb) * MIB:
            return self._put_single(key, staged, sha256, size, meta, lock)
        return self._put_multipart(key, staged, size, meta, lock)

    def put_record(self, name: str, source: Path, sha256: str) -> None:
        check_record_name(name)
        key = self._key(f"records/{name}")
        there = self._current_head(key)
        if there is not None:
            if there.get("Metadata", {}).get("sha256") == sha256:
                return
            # as on a local store: a record is never replaced (by a new current version)
            raise StoreError(f"the store already holds another records/{name}")
        self._upload(key, source, sha256, os.stat(source).st_size, self._permanent_lock())

    def get_record(self, name: str) -> bytes | None:
        check_record_name(name)
        return self._get_bytes(self._key(f"records/{name}"))

    def _current_head(self, key: str) -> dict[str, Any] | None:
        """The HEAD of ``key``'s current version, or None when there is none."""
        return self._call(
            "HEAD",
            key,
            lambda: self._or_missing(
                lambda: dict(self.client.head_object(Bucket=self.bucket, Key=key))
            ),
            patient=True,
        )

    def _stored_version(self, key: str, sha256: str) -> str | None:
        """The current version id of ``key`` if it is stored with this sha256 in its
        metadata ("" for an unversioned bucket), else None."""
        h = self._current_head(key)
        if h is None or h.get("Metadata", {}).get("sha256") != sha256:
            return None
        return _version(h.get("VersionId")) or ""

    def _put_single(
        self,
        key: str,
        staged: Path,
        sha256: str,
        size: int,
        meta: dict[str, str],
        lock: datetime | None,
    ) -> str | None:
        with RangeReader(staged) as reader:
            # Content-MD5: RGW and AWS refuse a body that does not match it (BadDigest)
            # before storing anything; RGW 16.2 ignores the x-amz-checksum-* headers.
            # (One more read of the spool copy, up to multipart_threshold_mb; its SHA-256 is
            # known from staging, so only the MD5 is computed: on 2 cores shared with the
            # server, hashing is what bwc's time goes to.)
            _, md5 = _hash_range(reader, 0, size, sha256=False)

        def put() -> str | None:
            with RangeReader(staged) as reader:
                resp = self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=_Window(reader, 0, size),  # type: ignore[arg-type]
                    ContentLength=size,
                    ContentType="application/octet-stream",
                    Metadata=meta,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64(bytes.fromhex(sha256)),
                    ContentMD5=md5,
                    **self._lock_args(lock),
                )
            return _version(resp.get("VersionId"))

        return self._call("upload", key, put, patient=True)

    def _put_multipart(
        self, key: str, staged: Path, size: int, meta: dict[str, str], lock: datetime | None
    ) -> str | None:
        with RangeReader(staged) as reader:
            return self._put_parts(reader, key, size, meta, lock)

    def _put_parts(
        self, reader: RangeReader, key: str, size: int, meta: dict[str, str], lock: datetime | None
    ) -> str | None:
        part = self.options.part_size_mb * MIB
        upload_id = self._call(
            "starting the multipart upload",
            key,
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                ContentType="application/octet-stream",
                Metadata=meta,
                ChecksumAlgorithm="SHA256",
                **self._lock_args(lock),
            )["UploadId"],
            patient=True,
        )
        failed = threading.Event()

        def send(spec: tuple[int, int, int]) -> dict[str, Any]:
            number, offset, length = spec
            if failed.is_set():
                raise StoreError("upload abandoned")
            try:
                checksum, md5 = _hash_range(reader, offset, length)
                resp = self._call(
                    f"upload of part {number}",
                    key,
                    lambda: self.client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=_Window(reader, offset, length),  # type: ignore[arg-type]
                        ContentLength=length,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=checksum,
                        ContentMD5=md5,  # checked by RGW and AWS (see _put_single)
                    ),
                    patient=True,
                )
            except BaseException:
                failed.set()
                raise
            return {"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": checksum}

        specs = [(n + 1, off, min(part, size - off)) for n, off in enumerate(range(0, size, part))]
        try:
            with ThreadPoolExecutor(
                self.options.concurrency, thread_name_prefix="bwc-s3-part"
            ) as pool:
                parts = list(pool.map(send, specs))
            resp = self._call(
                "completing the multipart upload",
                key,
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                ),
                patient=True,
            )
        except BaseException:
            self._abort(key, upload_id)
            raise
        version = _version(resp.get("VersionId"))
        if lock is not None:
            # moto and RGW 16.2 both drop the lock given to CreateMultipartUpload: check,
            # set it on this version if it is missing or earlier, and read it back.
            self._ensure_lock(key, version, lock)
        return version

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError) as e:
            logger.warning(
                "could not abort the multipart upload of %s: %s", self._where(key), first_line(e)
            )

    def read_back(self, sha256: str) -> Digest:
        key = self.object_key(sha256)

        def read() -> Digest:
            resp = self._or_missing(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
            if resp is None:
                raise self._missing(sha256)
            body = resp["Body"]
            h = hashlib.sha256()
            n = 0
            try:
                for chunk in body.iter_chunks(_READ):
                    h.update(chunk)
                    n += len(chunk)
            finally:
                body.close()
            return Digest(h.hexdigest(), n)

        return self._call("read-back", key, read, patient=True)

    def open_object(self, sha256: str) -> BinaryIO:
        key = self.object_key(sha256)

        def get() -> Any:
            resp = self._or_missing(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
            if resp is None:
                raise self._missing(sha256)
            return resp["Body"]

        body = self._call("download", key, get, patient=True)
        return io.BufferedReader(
            _Body(body, lambda e: self._error(e, "download", key)), buffer_size=_READ
        )

    def put_meta(self, sha256: str, name: str, data: bytes) -> None:
        key = self.meta_key(sha256, name)
        if self._put_once(key, data, _meta_type(name), self._new_lock()) is not None:
            raise meta_conflict(sha256, name)

    def _put_once(self, key: str, data: bytes, ctype: str, lock: datetime | None) -> bytes | None:
        """Write-once: a conditional PUT (If-None-Match: *), which the server refuses if the
        key exists, so two writers at once cannot replace each other's bytes. None when the
        key now holds ``data``, else the other bytes it holds (left as they are). A key
        deleted between the refusal and the read is tried again."""
        for _ in range(_CONDITIONAL_ROUNDS):
            written, version = self._put_bytes(key, data, ctype, lock, only_new=True)
            if written:
                if version is None:
                    return None
                return self._first_writer(key, version, data, ctype, lock)
            there = self._get_bytes(key)
            if there is not None:
                return None if there == data else there
        raise StoreError(f"S3 upload of {self._where(key)} kept meeting another writer")

    def _first_writer(
        self, key: str, ours: str, data: bytes, ctype: str, lock: datetime | None
    ) -> bytes | None:
        """After a conditional PUT that made version ``ours`` in a versioned bucket: RGW 16.2
        ignores If-None-Match there and keeps both writes as versions. What a server that
        honours it would have done is decided by the version just before ours (since the
        last delete marker, in the server's own order): none, ours stands; the same bytes,
        fine; other bytes (the key existed, or another writer got there first), a conflict,
        and those bytes are put back on top so that readers get them again (ours stays an
        older version, locked like every write; nothing is deleted). None, or those bytes."""

        def listing() -> list[str]:
            page = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
            markers = [m["LastModified"] for m in page.get("DeleteMarkers", []) if m["Key"] == key]
            cut = max(markers) if markers else None
            # newest first, as the server orders them
            return [
                str(v.get("VersionId"))
                for v in page.get("Versions", [])
                if v["Key"] == key and (cut is None or v["LastModified"] > cut)
            ]

        versions = self._call("listing the versions", key, listing, patient=True)
        if ours not in versions:
            raise StoreError(
                f"S3 upload of {self._where(key)}: the version just written is not listed",
                hint="the store's listing is not consistent with its writes; try again",
            )
        at = versions.index(ours)
        if at + 1 == len(versions):
            return None
        first = versions[at + 1]

        def get() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=first)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        there = self._call("download", key, get, patient=True)
        if there == data:
            return None
        logger.warning(
            "another writer stored %s first; its bytes are put back on top of ours",
            self._where(key),
        )
        self._put_bytes(key, there, ctype, lock)
        return there

    def repair_meta(self, sha256: str, name: str, data: bytes) -> None:
        key = self.meta_key(sha256, name)
        if self._get_bytes(key) != data:
            # a new version where the bucket keeps them: the one it replaces stays readable
            self._put_bytes(key, data, _meta_type(name), self._new_lock())

    def _put_bytes(
        self, key: str, data: bytes, ctype: str, lock: datetime | None, *, only_new: bool = False
    ) -> tuple[bool, str | None]:
        """A small object in one PUT, with its SHA-256 and MD5 (and Object Lock, if
        ``lock``); ``only_new``: unless the key exists (False then, nothing written). Whether
        it was written, and its version id (None in an unversioned bucket)."""
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if only_new else {}

        def put() -> tuple[bool, str | None]:
            try:
                resp = self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=ctype,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64(hashlib.sha256(data).digest()),
                    ContentMD5=_md5(data),
                    **self._lock_args(lock),
                    **extra,
                )
            except ClientError as e:
                if only_new and self._code(e) in _EXISTS:
                    return False, None
                raise
            return True, _version(resp.get("VersionId"))

        return self._call("upload", key, put, patient=True)

    def _get_bytes(self, key: str) -> bytes | None:
        def get() -> bytes | None:
            resp = self._or_missing(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
            if resp is None:
                return None
            body = resp["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        return self._call("download", key, get, patient=True)

    def get_meta(self, sha256: str, name: str) -> bytes:
        data = self._get_bytes(self.meta_key(sha256, name))
        if data is None:
            raise StoreError(f"{name} of {sha256} is missing from the store")
        return data

    def put_checkpoint(self, note: str) -> None:
        self._put_bytes(
            self.checkpoint_key, note.encode("utf-8"), "text/plain; charset=utf-8", None
        )

    def get_checkpoint(self) -> str | None:
        data = self._get_bytes(self.checkpoint_key)
        return None if data is None else data.decode("utf-8", errors="replace")

    def put_log(self, path: str, data: bytes, *, final: bool) -> None:
        check_log_path(path)
        key = self._key(f"log/{path}")
        if not final:
            self._put_bytes(key, data, "application/octet-stream", None)
        elif self._put_once(key, data, "application/octet-stream", self._permanent_lock()):
            raise StoreError(
                f"the store's copy of log/{path} differs from the catalog's log",
                hint="run `bwc log verify`",
            )

    def get_log(self, path: str) -> bytes | None:
        check_log_path(path)
        return self._get_bytes(self._key(f"log/{path}"))

    def delete_log(self, path: str) -> None:
        check_log_path(path)
        key = self._key(f"log/{path}")
        self._call(
            "delete",
            key,
            lambda: self._or_missing(
                lambda: self.client.delete_object(Bucket=self.bucket, Key=key)
            ),
            patient=False,
        )

    # ------------------------------------------------------------------ retention and holds

    def _versions(self, sha256: str) -> list[_Version]:
        """Every stored version (and delete marker) of the item's object, manifest, signature."""
        obj = self.object_key(sha256)
        keys = {obj, *(self.meta_key(sha256, n) for n in META_NAMES)}

        def listing() -> list[_Version]:
            out: list[_Version] = []
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=obj
            )
            for page in pages:
                for marker, entries in (
                    (False, page.get("Versions", [])),
                    (True, page.get("DeleteMarkers", [])),
                ):
                    for v in entries:
                        k = v.get("Key", "")
                        if k in keys:
                            vid = v.get("VersionId")
                            out.append(_Version(k, _version(vid), marker))
            return out

        return self._call("listing the versions", obj, listing, patient=True)

    def _head(self, key: str, version: str | None) -> dict[str, Any]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version:
            args["VersionId"] = version
        return dict(self._call("HEAD", key, lambda: self.client.head_object(**args), patient=True))

    def _ensure_lock(self, key: str, version: str | None, until: datetime) -> None:
        current = self._head(key, version).get("ObjectLockRetainUntilDate")
        if isinstance(current, datetime) and current >= until:
            return  # already kept as long or longer: never shorten
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Retention": {"Mode": "COMPLIANCE", "RetainUntilDate": until},
        }
        if version:
            args["VersionId"] = version
        self._call(
            "setting retention",
            key,
            lambda: self.client.put_object_retention(**args),
            patient=True,
        )
        # A server that answers 200 and keeps nothing would leave evidence unprotected
        # while bwc records it as locked: read the lock back.
        h = self._head(key, version)
        kept = h.get("ObjectLockRetainUntilDate")
        if h.get("ObjectLockMode") != "COMPLIANCE" or not (
            isinstance(kept, datetime) and kept >= until
        ):
            raise StoreError(
                f"S3 at {self.endpoint} did not keep the COMPLIANCE retention until "
                f"{format_utc(until)} on {self._where(key)}",
                hint="check that the bucket has Object Lock and that the server supports it",
            )

    def extend_retention(self, sha256: str, until: datetime) -> datetime | None:
        if not self.lock_enabled():
            return None
        versions = [v for v in self._versions(sha256) if not v.marker]
        if not any(v.key == self.object_key(sha256) for v in versions):
            raise StoreError(f"object {sha256} is missing from the store")
        for v in versions:
            self._ensure_lock(v.key, v.version_id, until)
        return until

    def set_legal_hold(self, sha256: str, on: bool) -> bool:
        if not self.lock_enabled():
            return False
        versions = [v for v in self._versions(sha256) if not v.marker]
        if not any(v.key == self.object_key(sha256) for v in versions):
            raise StoreError(f"object {sha256} is missing from the store")
        for v in versions:
            args: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": v.key,
                "LegalHold": {"Status": "ON" if on else "OFF"},
            }
            if v.version_id:
                args["VersionId"] = v.version_id

            def put(a: dict[str, Any] = args) -> None:
                self.client.put_object_legal_hold(**a)

            self._call("setting the legal hold", v.key, put, patient=True)
        return True

    def protection(self, sha256: str) -> tuple[datetime | None, bool]:
        """The latest Object Lock date over the item's stored versions and whether any is on
        legal hold (None, False without Object Lock)."""
        if not self.lock_enabled():
            return None, False
        latest: datetime | None = None
        held = False
        for v in self._versions(sha256):
            if v.marker:
                continue
            h = self._head(v.key, v.version_id)
            until = h.get("ObjectLockRetainUntilDate")
            if isinstance(until, datetime) and (latest is None or until > latest):
                latest = until
            held = held or h.get("ObjectLockLegalHoldStatus") == "ON"
        return latest, held

    def delete_item(self, sha256: str) -> int:
        if self.lock_enabled():
            until, held = self.protection(sha256)
            if held:
                raise StoreError(f"the store holds {sha256[:16]} under a legal hold; not deleted")
            if until is not None and until > self.clock.now():
                raise StoreError(
                    f"the store's Object Lock keeps {sha256[:16]} until {format_utc(until)}; "
                    "not deleted",
                    hint="run `bwc retention apply` again after that date",
                )
        versions = self._versions(sha256)
        objs: list[dict[str, str]] = []
        for v in versions:
            entry = {"Key": v.key}
            if v.version_id:
                entry["VersionId"] = v.version_id
            objs.append(entry)
        for batch in (objs[i : i + 1000] for i in range(0, len(objs), 1000)):

            def delete(b: list[dict[str, str]] = batch) -> list[dict[str, Any]]:
                resp = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": b, "Quiet": True},  # type: ignore[typeddict-item]
                )
                return [dict(e) for e in resp.get("Errors", [])]

            errors = self._call("deleting", self.object_key(sha256), delete, patient=True)
            if errors:
                first = errors[0]
                raise StoreError(
                    f"the store refused to delete {first.get('Key')} "
                    f"({first.get('Code')}: {first.get('Message', '')})",
                    hint=f"{len(errors)} version(s) of {sha256[:16]} could not be deleted",
                )
        return len(versions)

    # ------------------------------------------------------------------ store check

    def describe(self) -> StoreInfo:
        self.check()

        def get(name: str, fn: Callable[[], Any], absent: set[str]) -> tuple[Any, str | None]:
            try:
                return fn(), None
            except ClientError as e:
                if self._code(e) in absent:
                    return None, None
                return None, f"could not read the bucket's {name}: {self._code(e)}"

        problems: list[str] = []
        ver, p = self._call(
            "reading versioning",
            None,
            lambda: get(
                "versioning", lambda: self.client.get_bucket_versioning(Bucket=self.bucket), set()
            ),
            patient=False,
        )
        if p:
            problems.append(p)
        lock = self._read_lock_config()
        enc, p = self._call(
            "reading encryption",
            None,
            lambda: get(
                "encryption",
                lambda: self.client.get_bucket_encryption(Bucket=self.bucket),
                {"ServerSideEncryptionConfigurationNotFoundError"},
            ),
            patient=False,
        )
        if p:
            problems.append(p)
        versioning = ver.get("Status") if ver else None
        default = None
        if lock:
            rule = lock.get("Rule", {}).get("DefaultRetention", {})
            if rule:
                n, unit = (
                    (rule["Years"], "years") if rule.get("Years") else (rule.get("Days"), "days")
                )
                default = f"{rule.get('Mode')} {n} {unit}"
        algo = None
        if enc:
            rules = enc.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
            if rules:
                algo = rules[0].get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
        self._lock_enabled = lock is not None
        info = StoreInfo(
            url=self.url,
            kind="s3",
            versioning=versioning,
            object_lock=lock is not None,
            default_retention=default,
            encryption=algo,
        )
        notes = explain(info, self.policy, self.endpoint)
        return StoreInfo(**{**info.__dict__, "notes": (*notes, *problems)})


def explain(info: StoreInfo, policy: RetentionSettings, endpoint: str) -> tuple[str, ...]:
    """What a bucket's settings mean for evidence, in plain words."""
    notes = [f"Bucket {info.url} at {endpoint}, reached with the configured credentials."]
    if info.object_lock:
        notes.append(
            "Object Lock is ON: bwc gives every evidence object, manifest and signature "
            "COMPLIANCE retention until its retention class's date (permanent classes: "
            f"{policy.permanent_lock_years} years ahead, extended by `bwc retention apply`). "
            "Until then nobody, not even the bucket's owner or bwc, can delete or overwrite "
            "those bytes. Legal holds are set on the objects themselves."
        )
    else:
        notes.append(
            "Object Lock is OFF: retention classes and legal holds are kept in bwc's catalog "
            "only. Anyone allowed to delete in this bucket can remove evidence; `bwc verify` "
            "would notice, but nothing could bring it back. For evidence, use a bucket "
            "created with Object Lock."
        )
    if info.versioning == "Enabled":
        notes.append(
            "Versioning is ON: an object overwritten or deleted behind bwc's back keeps its "
            "original bytes as an older version; `bwc verify` reports the change."
        )
    else:
        notes.append(
            "Versioning is OFF: an object overwritten in place is gone; `bwc verify` detects "
            "the change, but the original bytes cannot be recovered."
        )
    if info.default_retention:
        mode = info.default_retention.split()[0]
        notes.append(
            f"The bucket's default retention ({info.default_retention}) applies to every "
            "object written without its own, such as the checkpoint copy."
            + (
                " GOVERNANCE retention can be lifted by anyone allowed "
                "s3:BypassGovernanceRetention."
                if mode == "GOVERNANCE"
                else ""
            )
        )
    if info.encryption:
        notes.append(f"Default server-side encryption: {info.encryption}.")
    else:
        notes.append(
            "No default encryption is configured on the bucket (AWS S3 encrypts new objects "
            "with SSE-S3 regardless; other S3-compatible stores may store them in clear)."
        )
    return tuple(notes)
