"""Where `bwc export` writes a bundle: a folder, or one zip written as the bundle is made.

Both live inside ``<out>.partial-<random>`` beside ``out``, which `export` creates and removes
whatever happens: a folder bundle is that folder, renamed into place; a zip bundle is a file
in it, linked into place (never over a file made there meanwhile). Either way the footage is
written once, while it is read from the store and hashed (``copyout``): into its file, or
straight into a ZIP_STORED member. A zip member cannot be removed, so a footage member whose
object could not be read whole is cut off: the zip is truncated back to where that member
began, and the next member is written there (the zip's central directory, written last,
never names it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bwc.errors import BwcError, StoreError, UsageError
from bwc.evidence.copyout import Sink
from bwc.evidence.fingerprint import Digest, hash_file
from bwc.fsutil import fsync_dir, fsync_path

# writes the footage into the sink; a Digest when the object was read whole, else its error
Fill = Callable[[Sink], Digest | BwcError]

# files in a zip read back as a folder's would be: regular, rw-r--r--
_FILE_ATTR = (stat.S_IFREG | 0o644) << 16


class BundleWriter(Protocol):
    """What `_export` writes a bundle through. Paths are relative to the bundle, with `/`."""

    def footage(self, rel: str, size: int, fill: Fill) -> Digest | BwcError:
        """Write an item's footage (``size``: the catalog's) by ``fill``. When ``fill``
        returns an error no part of the footage stays in the bundle. Not yet durable."""
        ...

    def write(self, rel: str, data: bytes) -> None:
        """Write a small file (durable by ``finish``)."""
        ...

    def share(self, rel: str, data: bytes) -> Path:
        """Write a small file, and return where another program can read it (Chromium
        reads the custody report's HTML)."""
        ...

    def outside(self, rel: str) -> Path:
        """Where another program makes the bundle file ``rel`` (Chromium's PDF); then
        ``take(rel)``."""
        ...

    def take(self, rel: str) -> str | None:
        """Put the file made at ``outside(rel)`` into the bundle: its sha256, or None when
        it was not made."""
        ...

    def sync_footage(self) -> None:
        """Make the footage written so far durable (while Chromium prints)."""
        ...

    def finish(self) -> None:
        """Everything written made durable; nothing more is written."""
        ...

    def publish(self, out: Path) -> None:
        """Put the finished bundle at ``out``, never over anything made there meanwhile
        (UsageError), and remove the partial folder. The caller fsyncs ``out``'s folder."""
        ...

    def discard(self) -> None:
        """Let go of what is open (the caller removes the partial folder)."""
        ...


def _appeared(out: Path) -> UsageError:
    return UsageError(f"{out} appeared during the export; nothing was written there")


class FolderWriter:
    """The bundle as the folder ``root`` (the partial folder itself), renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._footage: list[Path] = []

    def _path(self, rel: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def footage(self, rel: str, size: int, fill: Fill) -> Digest | BwcError:
        del size  # a file needs no size up front
        target = self._path(rel)
        try:
            with open(target, "wb") as dst:
                got = fill(dst)
        except OSError as e:
            raise UsageError(f"cannot write the bundle: {e.strerror or e}") from e
        if isinstance(got, Digest):
            self._footage.append(target)
        else:
            target.unlink()  # a part of an object is no footage: the bundle lists it as failed
        return got

    def write(self, rel: str, data: bytes) -> None:
        with open(self._path(rel), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def share(self, rel: str, data: bytes) -> Path:
        self.write(rel, data)
        return self.root / rel

    def outside(self, rel: str) -> Path:
        return self._path(rel)  # made in place

    def take(self, rel: str) -> str | None:
        path = self.root / rel
        if not path.is_file():
            return None
        fsync_path(path)
        return hash_file(path, from_disk=False).sha256

    def sync_footage(self) -> None:
        # written without fsync (the disk wrote it back meanwhile): now, in one go
        for path in self._footage:
            fsync_path(path)

    def finish(self) -> None:
        self.sync_footage()  # cheap when already done
        # every folder, deepest first, before the bundle is renamed into place
        dirs = {p.parent for p in self.root.rglob("*")} | {self.root}
        for d in sorted(dirs, key=lambda p: -len(p.parts)):
            fsync_dir(d)

    def publish(self, out: Path) -> None:
        if out.exists() or out.is_symlink():  # made meanwhile: a rename would replace it
            raise _appeared(out)
        os.rename(self.root, out)

    def discard(self) -> None:
        pass


class ZipWriter:
    """The bundle as one zip holding one folder ``inner``, written inside the partial folder
    ``scratch`` (beside the files another program makes for it) and linked into place."""

    def __init__(self, scratch: Path, inner: str) -> None:
        self.scratch = scratch
        self.inner = inner
        self.path = scratch / f"{inner}.zip"
        self._fp = open(self.path, "xb")  # noqa: SIM115 (open for the whole export: finish or discard closes it)
        self._zip = zipfile.ZipFile(self._fp, "w", allowZip64=True)
        self._closed = False

    def _info(self, rel: str, kind: int) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(f"{self.inner}/{rel}", time.localtime()[:6])
        info.compress_type = kind
        info.external_attr = _FILE_ATTR
        return info

    def footage(self, rel: str, size: int, fill: Fill) -> Digest | BwcError:
        info = self._info(rel, zipfile.ZIP_STORED)
        info.file_size = size
        # zip64 sizes from the start for footage of 2 GiB and more (by the catalog's size:
        # half the limit, so an object that grew still fits the header it got)
        zip64 = size >= zipfile.ZIP64_LIMIT // 2
        start = self._zip.start_dir  # where this member's local header goes
        try:
            with self._zip.open(info, "w", force_zip64=zip64) as member:
                got = fill(_Capped(member, None if zip64 else zipfile.ZIP64_LIMIT))
        except _TooLarge:
            got = StoreError(
                f"the stored object is over {zipfile.ZIP64_LIMIT} bytes, far more than its "
                f"catalog size ({size})"
            )
        except OSError as e:
            raise UsageError(f"cannot write the bundle: {e.strerror or e}") from e
        if not isinstance(got, Digest):
            self._cut(info, start)
        return got

    def _cut(self, info: zipfile.ZipInfo, start: int) -> None:
        """Forget the member ``info`` (the last one written, whole or not): the zip goes on
        from where its header began, and its bytes are truncated away."""
        if info in self._zip.filelist:
            self._zip.filelist.remove(info)
            self._zip.NameToInfo.pop(info.filename, None)
        self._zip.start_dir = start
        self._fp.seek(start)
        self._fp.truncate()

    def write(self, rel: str, data: bytes) -> None:
        self._zip.writestr(self._info(rel, zipfile.ZIP_DEFLATED), data)

    def share(self, rel: str, data: bytes) -> Path:
        self.write(rel, data)
        path = self.outside(rel)
        path.write_bytes(data)
        return path

    def outside(self, rel: str) -> Path:
        path = self.scratch / "outside" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def take(self, rel: str) -> str | None:
        path = self.outside(rel)
        if not path.is_file():
            return None
        data = path.read_bytes()  # small (the PDF)
        self.write(rel, data)
        return hashlib.sha256(data).hexdigest()

    def sync_footage(self) -> None:
        self._fp.flush()
        os.fsync(self._fp.fileno())

    def finish(self) -> None:
        self._zip.close()  # the central directory
        self._fp.flush()
        os.fsync(self._fp.fileno())
        self._fp.close()
        self._closed = True

    def publish(self, out: Path) -> None:
        try:
            os.link(self.path, out)  # never over a file made there meanwhile
        except FileExistsError as e:
            raise _appeared(out) from e
        shutil.rmtree(self.scratch)  # the report's scratch copies, and the zip's first name

    def discard(self) -> None:
        if self._closed:
            return
        self._closed = True
        # the end records of a zip about to be removed: best effort, and never the error
        with contextlib.suppress(OSError, ValueError):
            self._zip.close()
        self._fp.close()


class _TooLarge(Exception):
    pass


class _Capped:
    """A member's writer that stops before a member without zip64 sizes outgrows them."""

    def __init__(self, dst: Sink, cap: int | None) -> None:
        self._dst = dst
        self._cap = cap
        self._n = 0

    def write(self, data: bytes, /) -> object:
        self._n += len(data)
        if self._cap is not None and self._n > self._cap:
            raise _TooLarge
        return self._dst.write(data)
