"""Evidence stores: content-addressed objects with their manifest and signature beside them.

``ObjectStore`` is the contract; ``LocalStore`` is the file-system implementation
(``file:///path``). The S3 implementation (``s3://bucket/prefix``) lives in ``store_s3`` and is
the only module that imports the AWS SDK.

Layout (local): ``objects/<aa>/<sha256>`` (the bytes), ``objects/<aa>/<sha256>.manifest.json``
and ``.manifest.sig`` beside it; ``log/checkpoint`` holds the latest signed checkpoint as a
second copy outside the catalog, so that a catalog rolled back is detected.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from bwc.errors import StoreError
from bwc.evidence.fingerprint import Digest, hash_file
from bwc.fsutil import fsync_dir, fsync_path, write_atomic

if TYPE_CHECKING:
    from bwc.config.settings import Settings
    from bwc.evidence.timefmt import Clock

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
META_NAMES = ("manifest.json", "manifest.sig")


@dataclass(frozen=True)
class StoreInfo:
    """What a store offers for evidence, for `bwc store check`: facts, and what they mean in
    plain words (``notes``)."""

    url: str
    kind: str  # "local" or "s3"
    versioning: str | None = None  # "Enabled", "Suspended", or None (never enabled / n.a.)
    object_lock: bool = False  # retention and legal holds enforced by the store itself
    default_retention: str | None = None  # e.g. "COMPLIANCE 30 days"
    encryption: str | None = None  # e.g. "AES256", "aws:kms"
    notes: tuple[str, ...] = field(default_factory=tuple)


class ObjectStore(Protocol):
    url: str
    # Files an ingest keeps in flight: enough to keep the store busy between one file's
    # requests (its read-back, its manifest) and the next file's upload.
    in_flight: int

    def check(self) -> None:
        """Raise StoreError when the store cannot be reached or written."""

    def has_object(self, sha256: str) -> bool: ...

    def put_object(self, sha256: str, staged: Path) -> str | None:
        """Store the staged file (already hashed to ``sha256``) under its digest. The staged
        file may be consumed (moved). Returns a version id where the store has one."""

    def read_back(self, sha256: str) -> Digest:
        """Re-read the stored object from the medium and return its digest and size."""

    def open_object(self, sha256: str) -> BinaryIO: ...

    def put_meta(self, sha256: str, name: str, data: bytes) -> None: ...

    def get_meta(self, sha256: str, name: str) -> bytes: ...

    def put_checkpoint(self, note: str) -> None: ...

    def get_checkpoint(self) -> str | None: ...

    # -- retention and legal hold (stores without Object Lock: catalog-only, see StoreInfo)
    def describe(self) -> StoreInfo:
        """What the store offers (versioning, Object Lock, encryption) and what it means."""

    def extend_retention(self, sha256: str, until: datetime) -> datetime | None:
        """Make the store keep the item (object, manifest, signature) until at least
        ``until``: COMPLIANCE retention where the store has Object Lock. Never shortens a
        retention already set. Returns the date now enforced, None if the store has no lock."""

    def set_legal_hold(self, sha256: str, on: bool) -> bool:
        """Place or lift the store's legal hold on the item; False if the store has none."""

    def delete_item(self, sha256: str) -> int:
        """Delete the object, its manifest and signature, with every stored version; return
        how many were deleted. Raise StoreError if the store refuses (e.g. still locked)."""

    def protection(self, sha256: str) -> tuple[datetime | None, bool]:
        """The store's own protection of the item: the latest Object Lock date over its
        stored versions, and whether any is on legal hold ((None, False) without a lock)."""


def _check_sha(sha256: str) -> None:
    if not _SHA_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")


class LocalStore:
    in_flight = 2  # a rename and a read-back from the same disk: more would only queue there

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    # -- layout
    def _dir(self, sha256: str) -> Path:
        _check_sha(sha256)
        return self.root / "objects" / sha256[:2]

    def object_path(self, sha256: str) -> Path:
        return self._dir(sha256) / sha256

    def _meta_path(self, sha256: str, name: str) -> Path:
        if name not in META_NAMES:
            raise ValueError(f"unknown meta name {name!r}")
        return self._dir(sha256) / f"{sha256}.{name}"

    # -- contract
    def create(self) -> None:
        for sub in ("objects", "log", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def check(self) -> None:
        if not (self.root / "objects").is_dir():
            raise StoreError(
                f"local store {self.root} is missing", hint="check the store URL or run `bwc init`"
            )
        if not os.access(self.root / "objects", os.W_OK):
            raise StoreError(f"local store {self.root} is not writable")

    def has_object(self, sha256: str) -> bool:
        return self.object_path(sha256).is_file()

    def _fanout(self, sha256: str) -> Path:
        """The object's folder, created if needed, but never the store itself: a store folder
        that is missing (an unmounted disk) must fail, not be silently recreated."""
        objects = self.root / "objects"
        if not objects.is_dir():
            raise StoreError(
                f"local store {self.root} is missing or not mounted",
                hint="check the store URL and that its disk is mounted",
            )
        d = self._dir(sha256)
        try:
            d.mkdir(exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot write to the local store: {e.strerror}") from e
        return d

    def put_object(self, sha256: str, staged: Path) -> str | None:
        final = self.object_path(sha256)
        self._fanout(sha256)
        if not staged.exists() and final.exists():
            # Resuming after a crash right after the rename: the object is in place (the
            # read-back that follows checks its bytes).
            return None
        if final.exists():
            # Content-addressed: an object already there (an earlier run that stopped before
            # committing) is kept only if it really holds these bytes.
            if hash_file(final).sha256 == sha256:
                staged.unlink(missing_ok=True)
                return None
            self._quarantine(final)
        try:
            # Same file system (the spool lives in the home): a rename, no second copy; the
            # staged bytes are made durable first (a no-op when staging already did).
            fsync_path(staged)
            os.replace(staged, final)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise StoreError(f"cannot write object {sha256[:12]}: {e.strerror}") from e
            tmp = final.with_name(f".{sha256}.tmp")
            shutil.copyfile(staged, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
            staged.unlink()
        os.chmod(final, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        fsync_dir(final.parent)
        return None

    def _quarantine(self, path: Path) -> None:
        qdir = self.root / "quarantine"
        qdir.mkdir(exist_ok=True)
        os.replace(path, qdir / f"{path.name}.{os.getpid()}")

    def object_ids(self) -> list[str]:
        """The sha256 of every object file in the store (not its manifests), sorted."""
        found: list[str] = []
        try:
            with os.scandir(self.root / "objects") as dirs:
                for d in dirs:
                    if not d.is_dir(follow_symlinks=False):
                        continue
                    with os.scandir(d.path) as files:
                        found.extend(f.name for f in files if _SHA_RE.fullmatch(f.name))
        except OSError:
            return []  # no store here (yet): whoever reads an object says so
        return sorted(found)

    def read_back(self, sha256: str) -> Digest:
        try:
            return hash_file(self.object_path(sha256), from_disk=True)
        except FileNotFoundError as e:
            raise StoreError(f"object {sha256} is missing from the store") from e
        except OSError as e:
            raise StoreError(f"cannot read object {sha256[:12]} back: {e.strerror}") from e

    def open_object(self, sha256: str) -> BinaryIO:
        try:
            return open(self.object_path(sha256), "rb")
        except FileNotFoundError as e:
            raise StoreError(f"object {sha256} is missing from the store") from e

    def put_meta(self, sha256: str, name: str, data: bytes) -> None:
        path = self._meta_path(sha256, name)
        self._fanout(sha256)
        try:
            if path.exists():
                with contextlib.suppress(OSError):
                    if path.read_bytes() == data:
                        return
                os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
            write_atomic(path, data, mode=0o444)
        except OSError as e:
            raise StoreError(f"cannot write {name} of {sha256[:12]}: {e.strerror}") from e

    def get_meta(self, sha256: str, name: str) -> bytes:
        try:
            return self._meta_path(sha256, name).read_bytes()
        except FileNotFoundError as e:
            raise StoreError(f"{name} of {sha256} is missing from the store") from e

    def put_checkpoint(self, note: str) -> None:
        if not (self.root / "objects").is_dir():
            raise StoreError(f"local store {self.root} is missing or not mounted")
        try:
            (self.root / "log").mkdir(exist_ok=True)
            write_atomic(self.root / "log" / "checkpoint", note.encode("utf-8"))
        except OSError as e:
            raise StoreError(f"cannot write the checkpoint copy to the store: {e.strerror}") from e

    def get_checkpoint(self) -> str | None:
        try:
            return (self.root / "log" / "checkpoint").read_text("utf-8")
        except FileNotFoundError:
            return None

    def iter_objects(self) -> Iterator[str]:
        for sub in sorted((self.root / "objects").iterdir()):
            for p in sorted(sub.iterdir()):
                if _SHA_RE.match(p.name):
                    yield p.name

    # -- retention: the file system has no lock; the catalog and custody log carry it
    def describe(self) -> StoreInfo:
        self.check()
        return StoreInfo(
            url=self.url,
            kind="local",
            notes=(
                f"Local store at {self.root}: objects are read-only files named by their "
                "sha256; `bwc verify` re-reads and re-hashes them.",
                "Retention and legal holds are kept in the catalog and the custody log only: "
                "bwc never deletes an item before its date or while on hold, but anyone with "
                "write access to this folder can. Protect it with permissions and backups, or "
                "use an S3 bucket with Object Lock.",
            ),
        )

    def extend_retention(self, sha256: str, until: datetime) -> datetime | None:
        _check_sha(sha256)
        return None

    def set_legal_hold(self, sha256: str, on: bool) -> bool:
        _check_sha(sha256)
        return False

    def protection(self, sha256: str) -> tuple[datetime | None, bool]:
        _check_sha(sha256)
        return None, False

    def delete_item(self, sha256: str) -> int:
        paths = [self.object_path(sha256), *(self._meta_path(sha256, n) for n in META_NAMES)]
        deleted = 0
        for path in paths:
            try:
                path.unlink()  # the folder is writable; the read-only mode guards the bytes
                deleted += 1
            except FileNotFoundError:
                continue
            except OSError as e:
                raise StoreError(f"cannot delete {path.name}: {e.strerror}") from e
        if deleted:
            fsync_dir(paths[0].parent)
        return deleted


class ReadAhead:
    """Read-backs started before they are needed. `bwc verify --all` starts re-hashing a
    local store's objects while it loads the catalog code (~half of its start), and each
    item's check then takes its result. Every object is still read once, from the medium,
    by ``read_back``; only the moment changes."""

    def __init__(self, store: ObjectStore, ids: Iterable[str], workers: int) -> None:
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="bwc-read-ahead")
        self._started: dict[str, Future[Digest]] = {}
        for sha in ids:
            self._started[sha] = self._pool.submit(store.read_back, sha)

    def take(self, sha256: str) -> Future[Digest] | None:
        """The read-back of this object if it was started (each is taken once)."""
        return self._started.pop(sha256, None)

    def close(self) -> None:
        """Cancel what has not started; wait for what has (no thread outlives the command)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def open_store(
    url: str, settings: Settings | None = None, clock: Clock | None = None
) -> ObjectStore:
    """The store at ``url``. ``settings`` gives the S3 upload tuning and the default
    retention class (whose Object Lock new objects get); ``clock`` dates those locks."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from bwc.evidence.store_s3 import S3Store  # the only module that imports the AWS SDK

        return S3Store.from_url(url, settings=settings, clock=clock)
    raise StoreError(f"unknown store URL scheme {parsed.scheme!r}", hint="use file:/// or s3://")
