"""The ObjectStore contract, run against the local store and the S3 store (a bucket with Object
Lock and one without) over real HTTP on two servers: moto (an API simulator) and a real Ceph
RGW (tests/integration/rgw.py), which refuses what moto accepts (docs/s3.md); plus what only
the S3 store does: object metadata, multipart with a checksum per part, Object Lock retention
that only ever grows, legal holds, deletion of every version, and clear errors for bad
credentials or an unreachable endpoint."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bwc.config.settings import S3Settings
from bwc.errors import StoreError
from bwc.evidence.stores import ObjectStore, open_store
from bwc.evidence.stores import s3 as s3_module
from bwc.evidence.stores.base import MetaConflict
from bwc.evidence.stores.local import LocalStore
from bwc.evidence.stores.s3 import S3Store
from bwc.evidence.timefmt import SystemClock
from tests.integration import rgw
from tests.integration import s3 as s3srv

pytestmark = pytest.mark.integration

MIB = 1 << 20


def s3_store(bucket: str) -> S3Store:
    return S3Store(
        bucket,
        f"c-{os.urandom(6).hex()}",
        s3=S3Settings(multipart_threshold_mb=5, part_size_mb=5, concurrency=3, retry_seconds=5),
    )


@pytest.fixture(params=["local", "s3-locked", "s3-plain", "rgw-locked", "rgw-plain"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ObjectStore]:
    if request.param == "local":
        st = LocalStore(tmp_path / "store")
        st.create()
        yield st
        return
    if request.param.startswith("rgw-"):
        ceph = rgw.cluster()
        s3srv.aws_env(monkeypatch, tmp_path, ceph.url)
        locked_bucket, plain_bucket = ceph.fresh_buckets()
        yield s3_store(locked_bucket if request.param == "rgw-locked" else plain_bucket)
        return
    srv = s3srv.server()
    s3srv.aws_env(monkeypatch, tmp_path, srv.url)
    yield s3_store(s3srv.LOCKED if request.param == "s3-locked" else s3srv.PLAIN)
    srv.start()


def staged_file(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    p = tmp_path / f"spool-{os.urandom(4).hex()}.part"
    p.write_bytes(data)
    return p, hashlib.sha256(data).hexdigest()


def locked(st: ObjectStore) -> bool:
    return isinstance(st, S3Store) and st.bucket.startswith(s3srv.LOCKED)


def on_rgw(st: ObjectStore) -> bool:
    return isinstance(st, S3Store) and st.client.meta.endpoint_url == rgw.cluster().url


def looker(st: S3Store) -> Any:
    """The test's own client on the store's server (to look at or tamper with the bucket)."""
    return s3srv.client(st.client.meta.endpoint_url)


def head(st: S3Store, key: str, version: str | None = None) -> dict[str, Any]:
    c = looker(st)
    args = {"Bucket": st.bucket, "Key": key} | ({"VersionId": version} if version else {})
    return dict(c.head_object(**args))


# ---------------------------------------------------------------------------- the contract


def test_put_read_back_open(store: ObjectStore, tmp_path: Path) -> None:
    data = b"footage " * 1000
    path, sha = staged_file(tmp_path, data)
    store.check()
    assert not store.has_object(sha)
    version = store.put_object(sha, path)
    assert store.has_object(sha)
    back = store.read_back(sha)
    assert (back.sha256, back.size) == (sha, len(data))
    with store.open_object(sha) as f:
        assert f.read() == data
    if locked(store):
        assert version
    elif isinstance(store, LocalStore):
        assert version is None


def test_zero_byte_object(store: ObjectStore, tmp_path: Path) -> None:
    path, sha = staged_file(tmp_path, b"")
    store.put_object(sha, path)
    assert store.read_back(sha).size == 0


def test_resume_with_the_spool_copy_gone(store: ObjectStore, tmp_path: Path) -> None:
    """After a crash the spool copy may be gone: an object already stored is taken as is
    (the read-back that follows checks it); one never stored is an error, not a success."""
    path, sha = staged_file(tmp_path, b"stored before the crash")
    first = store.put_object(sha, path)
    path.unlink(missing_ok=True)
    assert store.put_object(sha, path) == first
    assert store.read_back(sha).sha256 == sha
    gone, other = staged_file(tmp_path, b"never stored")
    gone.unlink()
    with pytest.raises((OSError, StoreError)):
        store.put_object(other, gone)
    assert not store.has_object(other)


def test_multipart_upload_reads_back_whole(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(11 * MIB + 123)  # three parts of at most 5 MiB
    path, sha = staged_file(tmp_path, data)
    version = store.put_object(sha, path)
    back = store.read_back(sha)
    assert (back.sha256, back.size) == (sha, len(data))
    if isinstance(store, S3Store):
        h = head(store, store.object_key(sha), version)
        assert h["Metadata"] == {"sha256": sha, "size": str(len(data))}
        assert h["ETag"].endswith('-3"')  # really multipart
        with store.open_object(sha) as f:
            assert hashlib.sha256(f.read()).hexdigest() == sha


def test_meta_and_checkpoint(store: ObjectStore, tmp_path: Path) -> None:
    path, sha = staged_file(tmp_path, b"x")
    store.put_object(sha, path)
    store.put_meta(sha, "manifest.json", b'{"a":1}')
    store.put_meta(sha, "manifest.sig", b"\x00sig")
    assert store.get_meta(sha, "manifest.json") == b'{"a":1}'
    assert store.get_meta(sha, "manifest.sig") == b"\x00sig"
    assert store.get_checkpoint() is None
    store.put_checkpoint("origin\n1\nroot\n")
    store.put_checkpoint("origin\n2\nroot\n")
    assert store.get_checkpoint() == "origin\n2\nroot\n"


def test_a_record_is_write_once(store: ObjectStore, tmp_path: Path) -> None:
    """A record (a verification run's report) once stored is never replaced by other bytes
    under its name, on every kind of store (S3 wrote a new current version over it)."""
    name = f"verification/{os.urandom(16).hex()}.jsonl"  # a run's random id
    first, sha1 = staged_file(tmp_path, b'{"run": 1}\n')
    other, sha2 = staged_file(tmp_path, b'{"run": 2}\n')
    store.put_record(name, first, sha1)
    store.put_record(name, first, sha1)  # the same again: fine
    with pytest.raises(StoreError, match="already holds another records/verification/"):
        store.put_record(name, other, sha2)
    assert store.get_record(name) == b'{"run": 1}\n'


def test_meta_is_write_once(store: ObjectStore, tmp_path: Path) -> None:
    """Regression (issue 12, defect 2): a manifest or signature already stored is never
    replaced by other bytes (two ingests of the same file at once); only repair_meta puts
    the committed item's back."""
    path, sha = staged_file(tmp_path, b"x")
    store.put_object(sha, path)
    store.put_meta(sha, "manifest.json", b'{"a":1}')
    store.put_meta(sha, "manifest.json", b'{"a":1}')  # the same bytes again: fine
    with pytest.raises(MetaConflict):
        store.put_meta(sha, "manifest.json", b'{"a":2}')
    assert store.get_meta(sha, "manifest.json") == b'{"a":1}'
    store.repair_meta(sha, "manifest.json", b'{"a":2}')
    assert store.get_meta(sha, "manifest.json") == b'{"a":2}'
    # after a repair, the repaired bytes are the ones a new write meets (not the first ones)
    store.put_meta(sha, "manifest.json", b'{"a":2}')
    assert store.get_meta(sha, "manifest.json") == b'{"a":2}'
    store.repair_meta(sha, "manifest.sig", b"sig")  # missing: written
    assert store.get_meta(sha, "manifest.sig") == b"sig"


@pytest.mark.parametrize("kind", ["meta", "log"])
def test_write_once_holds_between_two_writers_at_once(
    store: ObjectStore, tmp_path: Path, kind: str
) -> None:
    """Two writers of one name at once (two ingests, two stations publishing): one wins,
    the other is refused, and the winner's bytes stay (a check, then a write, let both
    "win" and the last one replace the first)."""
    path, sha = staged_file(tmp_path, b"x")
    store.put_object(sha, path)

    def put(n: int, who: str) -> None:
        data = f"{who}-{n}".encode()
        if kind == "meta":
            store.put_meta(sha, "manifest.json" if n % 2 else "manifest.sig", data)
        else:
            store.put_log(f"tile/0/{n:03d}", data, final=True)

    def stored(n: int) -> bytes | None:
        if kind == "meta":
            return store.get_meta(sha, "manifest.json" if n % 2 else "manifest.sig")
        return store.get_log(f"tile/0/{n:03d}")

    rounds = 2 if kind == "meta" else 12
    for n in range(rounds):
        gate = threading.Barrier(2)
        won: list[bytes] = []

        def writer(
            who: str, n: int = n, gate: threading.Barrier = gate, won: list[bytes] = won
        ) -> None:
            gate.wait()
            try:
                put(n, who)
            except StoreError:
                return
            won.append(f"{who}-{n}".encode())

        threads = [threading.Thread(target=writer, args=(w,)) for w in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, f"round {n}: {len(won)} writers won"
        assert stored(n) == won[0]


def test_missing_things_are_store_errors(store: ObjectStore) -> None:
    sha = "ab" * 32
    with pytest.raises(StoreError, match="missing") as info:
        store.read_back(sha)
    assert info.value.exit_code == 7
    with pytest.raises(StoreError, match="missing"):
        store.open_object(sha)
    with pytest.raises(StoreError, match=r"manifest.json of .* is missing"):
        store.get_meta(sha, "manifest.json")


def test_bad_names_are_refused(store: ObjectStore, tmp_path: Path) -> None:
    path, _ = staged_file(tmp_path, b"x")
    with pytest.raises(ValueError):
        store.put_object("../../etc/passwd", path)
    with pytest.raises(ValueError):
        store.put_meta("ab" * 32, "../x", b"")


def test_delete_item_removes_every_version(store: ObjectStore, tmp_path: Path) -> None:
    data = b"old footage"
    path, sha = staged_file(tmp_path, data)
    if locked(store):
        # the default class locks new objects for 6 months: give this one a past date
        assert isinstance(store, S3Store)
        store.clock = _Past()
        if on_rgw(store):
            # RGW refuses a retain-until date in the past (InvalidArgument; moto takes it):
            # these versions are written as if before the bucket's lock, with none
            store._lock_enabled = False
    store.put_object(sha, path)
    path, _ = staged_file(tmp_path, data)
    store.put_object(sha, path)  # a second version (versioned buckets)
    store.put_meta(sha, "manifest.json", b"{}")
    store.put_meta(sha, "manifest.sig", b"s")
    if isinstance(store, S3Store):
        store.clock = SystemClock()  # now the lock date is past
        store._lock_enabled = None
    assert store.delete_item(sha) >= 3
    assert not store.has_object(sha)
    with pytest.raises(StoreError, match="missing"):
        store.get_meta(sha, "manifest.sig")
    if isinstance(store, S3Store):
        c = looker(store)
        listing = c.list_object_versions(Bucket=store.bucket, Prefix=store.object_key(sha))
        assert not listing.get("Versions") and not listing.get("DeleteMarkers")
    assert store.delete_item(sha) == 0


@pytest.mark.parametrize("store", ["rgw-locked", "rgw-plain"], indirect=True)
@pytest.mark.parametrize("size", [1000, 6 * MIB + 1])  # one PUT; two parts
def test_a_body_corrupted_on_the_way_is_refused(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Regression (issue 16): a body that changes between hashing and the wire (a bad NIC,
    a proxy, a spool copy rotting) is refused by the server before it stores anything.
    RGW 16.2 ignores the x-amz-checksum-sha256 header, so only Content-MD5 makes it check."""
    assert isinstance(store, S3Store)
    path, sha = staged_file(tmp_path, os.urandom(size))
    real_read = s3_module._Window.read

    def flipped(self: Any, n: int = -1) -> bytes:
        data = real_read(self, n)
        return bytes([data[0] ^ 1]) + data[1:] if data and self._off == 0 else data

    with monkeypatch.context() as m:
        m.setattr(s3_module._Window, "read", flipped)
        with pytest.raises(StoreError, match="BadDigest"):
            store.put_object(sha, path)
    assert not store.has_object(sha)


@pytest.mark.parametrize("bucket", ["locked", "plain"])
def test_tls_endpoint_of_rgw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    """Over HTTPS (a self-signed certificate, trusted through AWS_CA_BUNDLE), uploads in one
    PUT and in parts reach RGW 16.2. boto3 >= 1.36 streams a body whose checksum it computes
    itself with a trailing checksum, which RGW refuses (411 MissingContentLength); bwc gives
    every request its own checksum (and checksums only when required otherwise), so none is
    streamed that way."""
    ceph = rgw.cluster()
    s3srv.aws_env(monkeypatch, tmp_path, ceph.tls_url)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ceph.ca_bundle))
    locked_bucket, plain_bucket = ceph.fresh_buckets()
    st = s3_store(locked_bucket if bucket == "locked" else plain_bucket)
    for size in (1000, 6 * MIB + 1):
        path, sha = staged_file(tmp_path, os.urandom(size))
        st.put_object(sha, path)
        back = st.read_back(sha)
        assert (back.sha256, back.size) == (sha, size)
    st.put_meta(sha, "manifest.json", b"{}")
    assert st.get_meta(sha, "manifest.json") == b"{}"
    assert st.endpoint.startswith("https://")


class _Past:
    def now(self) -> datetime:
        return datetime.now(UTC) - timedelta(days=400)


def test_retention_and_holds(store: ObjectStore, tmp_path: Path) -> None:
    path, sha = staged_file(tmp_path, b"evidence")
    store.put_object(sha, path)
    store.put_meta(sha, "manifest.json", b"{}")
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3000)
    got = store.extend_retention(sha, later)
    held = store.set_legal_hold(sha, True)
    if not locked(store):
        assert got is None and held is False  # catalog-only
        return
    assert isinstance(store, S3Store)
    assert got == later
    for key in (store.object_key(sha), store.meta_key(sha, "manifest.json")):
        h = head(store, key)
        assert h["ObjectLockMode"] == "COMPLIANCE"
        assert h["ObjectLockRetainUntilDate"] == later
        assert h["ObjectLockLegalHoldStatus"] == "ON"
    # never shortened: an earlier date leaves the later one in place
    store.extend_retention(sha, later - timedelta(days=1000))
    assert head(store, store.object_key(sha))["ObjectLockRetainUntilDate"] == later
    with pytest.raises(StoreError, match="legal hold"):
        store.delete_item(sha)
    assert store.set_legal_hold(sha, False)
    assert head(store, store.object_key(sha))["ObjectLockLegalHoldStatus"] == "OFF"
    with pytest.raises(StoreError, match="Object Lock keeps"):
        store.delete_item(sha)
    assert store.read_back(sha).sha256 == sha


# only a bucket with Object Lock locks objects
@pytest.mark.parametrize("store", ["s3-locked", "rgw-locked"], indirect=True)
def test_new_objects_get_the_default_class_lock(store: ObjectStore, tmp_path: Path) -> None:
    assert isinstance(store, S3Store) and locked(store)
    small, sha1 = staged_file(tmp_path, b"small clip")
    big, sha2 = staged_file(tmp_path, os.urandom(6 * MIB))  # multipart (moto drops its lock)
    now = datetime.now(UTC)
    for path, sha in ((small, sha1), (big, sha2)):
        version = store.put_object(sha, path)
        h = head(store, store.object_key(sha), version)
        assert h["ObjectLockMode"] == "COMPLIANCE"
        days = (h["ObjectLockRetainUntilDate"] - now).days
        assert 180 <= days <= 185, days


def test_describe(store: ObjectStore) -> None:
    info = store.describe()
    text = " ".join(info.notes)
    if isinstance(store, LocalStore):
        assert info.kind == "local" and "catalog" in text
    elif locked(store):
        assert info.object_lock and info.versioning == "Enabled"
        assert "Object Lock is ON" in text
    else:
        assert not info.object_lock and info.versioning is None
        assert "Object Lock is OFF" in text and "Versioning is OFF" in text


# ---------------------------------------------------------------------------- S3 only


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> s3srv.Server:
    srv = s3srv.server()
    s3srv.aws_env(monkeypatch, tmp_path, srv.url)
    return srv


def test_wrong_credentials_give_a_clear_error(
    aws: s3srv.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-do-not-print")
    aws.require_auth(True)
    try:
        with pytest.raises(StoreError) as info:
            S3Store(s3srv.LOCKED, "x").check()
    finally:
        aws.require_auth(False)
    msg = str(info.value)
    assert "InvalidAccessKeyId" in msg and "AWS_ACCESS_KEY_ID" in msg
    assert "wrong-secret" not in msg and "AKIAWRONG" not in msg
    assert info.value.exit_code == 7


def test_no_credentials(aws: s3srv.Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match="no usable S3 credentials"):
        S3Store(s3srv.LOCKED, "x").check()


def test_unreachable_endpoint_fails_fast(
    aws: s3srv.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{s3srv.free_port()}")
    with pytest.raises(StoreError, match=r"cannot reach the S3 endpoint http://127\.0\.0\.1"):
        S3Store(s3srv.LOCKED, "x").check()


def test_missing_bucket(aws: s3srv.Server) -> None:
    with pytest.raises(StoreError, match="bucket no-such-bucket does not exist"):
        S3Store("no-such-bucket", "x").check()


@pytest.mark.parametrize(
    "url",
    ["s3://AKIA:secret@bucket/prefix", "s3://b/prefix", "s3://bucket/p?x=1"],
)
def test_bad_store_urls(url: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "secret" not in str(info.value)


def test_store_url_forms() -> None:
    assert open_store("s3://evidence/station-07/").url == "s3://evidence/station-07"
    assert open_store("s3://evidence").url == "s3://evidence"
    st = open_store("s3://evidence/a/b")
    assert isinstance(st, S3Store)
    assert st.object_key("ab" * 32) == "a/b/objects/ab/" + "ab" * 32
