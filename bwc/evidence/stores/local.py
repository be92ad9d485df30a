"""The local evidence store: a folder (``file:///path``), usually on the station's own disk.

Objects are written to a temp file, fsynced, renamed into place and made read-only; the
read-back re-reads them from the medium (cached pages dropped). Layout: see ``base``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlparse

from bwc.errors import StoreError
from bwc.evidence.fingerprint import Digest, hash_file
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
from bwc.fsutil import (
    EVIDENCE_FILE,
    PRIVATE_FILE,
    SHARED_DIR,
    SHARED_FILE,
    fsync_dir,
    fsync_path,
    make_dir,
    write_atomic,
    write_once,
)

if TYPE_CHECKING:
    from bwc.config.settings import Settings
    from bwc.evidence.timefmt import Clock


def open_url(url: str, settings: Settings | None = None, clock: Clock | None = None) -> LocalStore:
    """The registry's entry (``bwc.config.stores``): ``file:///path``."""
    return LocalStore(Path(unquote(urlparse(url).path)))


class LocalStore:
    in_flight = 2  # a rename and a read-back from the same disk: more would only queue there

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    # -- layout
    def _dir(self, sha256: str) -> Path:
        check_sha(sha256)
        return self.root / "objects" / sha256[:2]

    def object_path(self, sha256: str) -> Path:
        return self._dir(sha256) / sha256

    def _meta_path(self, sha256: str, name: str) -> Path:
        check_meta_name(name)
        return self._dir(sha256) / f"{sha256}.{name}"

    # -- contract
    def create(self) -> None:
        make_dir(self.root, SHARED_DIR, parents=True)
        for sub in ("objects", "log", "tmp"):
            make_dir(self.root / sub, SHARED_DIR)

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
            make_dir(d, SHARED_DIR)
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
            _private_copy(staged, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
            staged.unlink()
        os.chmod(final, EVIDENCE_FILE)
        fsync_dir(final.parent)
        return None

    def _quarantine(self, path: Path) -> None:
        qdir = self.root / "quarantine"
        make_dir(qdir, SHARED_DIR)
        # another process repairing the same item may have moved it first: nothing to keep
        try:
            os.replace(path, qdir / f"{path.name}.{os.getpid()}.{time.time_ns()}")
        except FileNotFoundError:
            return
        # kept for good: its new name durable before a good copy takes the old one
        fsync_dir(qdir)

    def iter_objects(self) -> Iterator[tuple[str, datetime]]:
        objects = self.root / "objects"
        try:
            with os.scandir(objects) as it:
                fanouts = sorted(d.name for d in it if d.is_dir(follow_symlinks=False))
        except OSError as e:
            raise StoreError(f"cannot list the local store {self.root}: {e.strerror}") from e
        for fan in fanouts:
            try:
                with os.scandir(objects / fan) as it:
                    # one folder at a time (1/256 of the store) in memory
                    found = sorted(
                        (f.name, f.stat(follow_symlinks=False).st_mtime)
                        for f in it
                        if SHA_RE.fullmatch(f.name)
                    )
            except OSError as e:
                raise StoreError(f"cannot list {objects / fan}: {e.strerror}") from e
            for name, mtime in found:
                yield name, datetime.fromtimestamp(mtime, UTC)

    def prefetch_ids(self) -> list[str]:
        return self.object_ids()

    def object_ids(self) -> list[str]:
        """The sha256 of every object file in the store (not its manifests), sorted."""
        found: list[str] = []
        try:
            with os.scandir(self.root / "objects") as dirs:
                for d in dirs:
                    if not d.is_dir(follow_symlinks=False):
                        continue
                    with os.scandir(d.path) as files:
                        found.extend(f.name for f in files if SHA_RE.fullmatch(f.name))
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
            there = write_once(path, data, mode=EVIDENCE_FILE)
        except OSError as e:
            raise StoreError(f"cannot write {name} of {sha256[:12]}: {e.strerror}") from e
        if there is not None and there != data:
            raise meta_conflict(sha256, name)

    def repair_meta(self, sha256: str, name: str, data: bytes) -> None:
        path = self._meta_path(sha256, name)
        self._fanout(sha256)
        try:
            try:
                there: bytes | None = path.read_bytes()
            except FileNotFoundError:
                there = None
            if there == data:
                return
            if there is not None:
                self._quarantine(path)  # kept aside, not destroyed: it may be looked into
            # two processes repairing at once write the same (the catalog's) bytes
            write_atomic(path, data, mode=EVIDENCE_FILE)
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
            make_dir(self.root / "log", SHARED_DIR)
            write_atomic(self.root / "log" / "checkpoint", note.encode("utf-8"), mode=SHARED_FILE)
        except OSError as e:
            raise StoreError(f"cannot write the checkpoint copy to the store: {e.strerror}") from e

    def get_checkpoint(self) -> str | None:
        try:
            return (self.root / "log" / "checkpoint").read_text("utf-8")
        except FileNotFoundError:
            return None

    def put_record(self, name: str, source: Path, sha256: str) -> None:
        check_record_name(name)
        target = self.root / "records" / name
        try:
            if target.exists():
                if hash_file(target).sha256 != sha256:
                    raise StoreError(f"the store already holds another records/{name}")
                return
            make_dir(target.parent, SHARED_DIR, parents=True)
            tmp = target.with_name(f".{target.name}.tmp")
            _private_copy(source, tmp)
            fsync_path(tmp)
            if hash_file(tmp).sha256 != sha256:
                tmp.unlink()
                raise StoreError(f"records/{name} did not read back as it was written")
            os.chmod(tmp, EVIDENCE_FILE)
            try:
                os.link(tmp, target)  # write-once: never over another writer's record
            except FileExistsError:
                if hash_file(target).sha256 != sha256:
                    raise StoreError(f"the store already holds another records/{name}") from None
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                    raise
                os.replace(tmp, target)  # no hard links here; record names are random
            finally:
                tmp.unlink(missing_ok=True)
            fsync_dir(target.parent)
        except OSError as e:
            raise StoreError(f"cannot store records/{name}: {e.strerror}") from e

    def get_record(self, name: str) -> bytes | None:
        check_record_name(name)
        try:
            return (self.root / "records" / name).read_bytes()
        except FileNotFoundError:
            return None

    def put_log(self, path: str, data: bytes, *, final: bool) -> None:
        check_log_path(path)
        target = self.root / "log" / path
        if not (self.root / "objects").is_dir():
            raise StoreError(f"local store {self.root} is missing or not mounted")
        try:
            make_dir(target.parent, SHARED_DIR, parents=True)
            if final:
                # written once: of two stations publishing at once, neither replaces the other
                there = write_once(target, data, mode=EVIDENCE_FILE)
                if there is not None and there != data:
                    raise StoreError(
                        f"the store's copy of log/{path} differs from the catalog's log",
                        hint="run `bwc log verify`",
                    )
                return
            if target.exists():
                os.chmod(target, stat.S_IRUSR | stat.S_IWUSR)
            write_atomic(target, data, mode=EVIDENCE_FILE if final else SHARED_FILE)
        except OSError as e:
            raise StoreError(f"cannot publish log/{path} in the store: {e.strerror}") from e

    def get_log(self, path: str) -> bytes | None:
        check_log_path(path)
        try:
            return (self.root / "log" / path).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read log/{path} from the store: {e.strerror}") from e

    def delete_log(self, path: str) -> None:
        check_log_path(path)
        with contextlib.suppress(FileNotFoundError):
            (self.root / "log" / path).unlink()

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
        check_sha(sha256)
        return None

    def set_legal_hold(self, sha256: str, on: bool) -> bool:
        check_sha(sha256)
        return False

    def protection(self, sha256: str) -> tuple[datetime | None, bool]:
        check_sha(sha256)
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


def _private_copy(source: Path, tmp: Path) -> None:
    """Copy into a new file that nobody else can open while it is being written (its final
    mode is set before it is renamed into place)."""
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    shutil.copyfile(source, tmp)  # truncates and writes: the mode stays
