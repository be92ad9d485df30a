"""Opening a source file on a camera (or an ingested folder) without ever following a symlink.

A path is never handed to the kernel whole: the root is opened, then each folder below it by
name relative to its parent's descriptor (``openat`` with ``O_NOFOLLOW | O_DIRECTORY``), then
the file itself (``O_NOFOLLOW | O_NONBLOCK``, so a FIFO swapped in cannot block the open) and
only a regular file is accepted. A folder swapped for a symlink while an ingest runs therefore
fails to open instead of leading outside the camera (to the station's own key, say).
Standard library only: `bwc ingest` stages before the catalog code is loaded.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from bwc.errors import InputError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

FileId = tuple[int, int]  # (st_dev, st_ino)


class UnsafeSource(InputError):
    """The source is not a regular file reached through real folders under its root: it is
    listed as an error (retrying cannot make it one)."""


def _show(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def file_id(st: os.stat_result) -> FileId:
    return (st.st_dev, st.st_ino)


def open_dir(name: bytes, dir_fd: int | None = None) -> int:
    """A folder's descriptor; ``name`` is never followed if it is a symlink."""
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


@dataclass
class OpenedSource:
    """A source file open for reading, with its folder's descriptor (to look at the same
    name again, or unlink it, without resolving the path again)."""

    fd: int
    dir_fd: int
    name: bytes
    stat: os.stat_result

    def close(self) -> None:
        for fd in (self.fd, self.dir_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_parent(root: bytes, rel: bytes, parent: FileId | None = None) -> tuple[int, bytes]:
    """The descriptor of the folder holding ``rel`` under ``root``, and the file's name.
    Every folder on the way is opened without following symlinks; ``parent``: the identity
    the folder had when it was listed, which it must still have. UnsafeSource when a folder
    on the way is no longer a real folder (or not the one listed); OSError otherwise."""
    parts = [p for p in rel.split(b"/") if p not in (b"", b".")]
    if not parts or b".." in parts:
        raise UnsafeSource(f"{_show(rel)} is not a file path under {_show(root)}")
    fd = open_dir(root)
    try:
        for i, part in enumerate(parts[:-1]):
            try:
                nxt = open_dir(part, fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafeSource(
                        f"{_show(os.path.join(root, *parts[: i + 1]))} is no longer a folder "
                        "(a symlink or a file now); not followed"
                    ) from e
                raise
            os.close(fd)
            fd = nxt
        if parent is not None and file_id(os.fstat(fd)) != parent:
            raise UnsafeSource(
                f"the folder of {_show(os.path.join(root, rel))} was replaced after it was "
                "listed; not read"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def open_source(root: bytes, rel: bytes, parent: FileId | None = None) -> OpenedSource:
    """Open ``rel`` under ``root`` for reading, through folder descriptors only (see the
    module's docstring). UnsafeSource for a symlink, a FIFO, a device, a socket or a folder;
    OSError when it cannot be opened (gone, permission)."""
    dir_fd, name = open_parent(root, rel, parent)
    try:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafeSource(
                    f"{_show(os.path.join(root, rel))} is a symlink now; not followed"
                ) from e
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeSource(
                    f"{_show(os.path.join(root, rel))} is not a regular file (a folder, "
                    "device, FIFO or socket); not read"
                )
        except BaseException:
            os.close(fd)
            raise
    except BaseException:
        os.close(dir_fd)
        raise
    return OpenedSource(fd, dir_fd, name, st)


@contextlib.contextmanager
def opened(root: bytes, rel: bytes, parent: FileId | None = None) -> Iterator[OpenedSource]:
    src = open_source(root, rel, parent)
    try:
        yield src
    finally:
        src.close()


def restat(root: bytes, rel: bytes) -> os.stat_result:
    """``rel`` under ``root`` looked at again (not followed if a symlink), through real
    folders only."""
    dir_fd, name = open_parent(root, rel)
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    finally:
        os.close(dir_fd)


def lexists(root: bytes, rel: bytes) -> bool:
    """Whether ``rel`` is still there under ``root`` (anything, a symlink included), looked
    up through real folders only."""
    try:
        dir_fd, name = open_parent(root, rel)
    except (OSError, InputError):
        return False
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except OSError:
        return False
    finally:
        os.close(dir_fd)
