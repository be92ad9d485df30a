"""Small file-system helpers shared by the home, the keys and the local store."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

# Who may read what bwc writes, whatever the umask (issue 12): the home and what is private
# to the station (catalog, keys, spool, config, state files) its owner only; evidence and the
# published log also the owner's group (an evidence-room readers' group), never other users.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SHARED_DIR = 0o750
EVIDENCE_FILE = 0o440  # objects, manifests, records, full log tiles: never rewritten
SHARED_FILE = 0o640  # replaced as the log grows: partial tiles, the checkpoint


def make_dir(path: Path, mode: int, *, parents: bool = False) -> None:
    """``mkdir`` with exactly ``mode`` (mkdir applies the umask, which may be 0), durably:
    the parent is fsynced after the folder is made in it, or a power cut can take the new
    folder's entry, and everything later stored in it, with it (fsyncing a file or a
    folder does not make its own name durable). Folders that exist are left alone; missing
    parents (``parents``) get the same mode, each made durable in its own parent."""
    if parents and not path.parent.exists():
        make_dir(path.parent, mode, parents=True)
    try:
        path.mkdir(mode=mode)
    except FileExistsError:
        return
    os.chmod(path, mode)
    fsync_dir(path.parent)


def tighten(path: Path, mode: int) -> int | None:
    """Take away every permission of ``path`` beyond ``mode``; its old mode if it changed."""
    try:
        old = stat.S_IMODE(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None
    if old & ~mode == 0:
        return None
    os.chmod(path, old & mode)
    return old


def fsync_dir(path: Path) -> None:
    fsync_path(path, os.O_DIRECTORY)


def fsync_path(path: Path, flags: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Write ``data`` so a crash leaves either the old file or the new one, never half of it:
    temp file in the same folder, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_once(path: Path, data: bytes, *, mode: int = 0o444) -> bytes | None:
    """Create ``path`` holding ``data`` unless something is there already: None when it was
    written, else the bytes already there (never replaced). Atomic like ``write_atomic``:
    the temp file is complete and fsynced before it is linked in under the name, which fails
    if the name exists, so two writers at once cannot both win."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    write_atomic(tmp, data, mode=mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_bytes()
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # No hard links here (FAT, some network shares): create it exclusively instead (a
        # crash can leave it short; verify reports that and an ingest repairs it).
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        except FileExistsError:
            return path.read_bytes()
        try:
            os.fchmod(fd, mode)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_dir(path.parent)
    return None


def tree_bytes(root: Path) -> int:
    """The bytes of the regular files under ``root``, read while others write there: a file
    or folder that goes between the listing and the look (a spool copy renamed or removed by
    the daemon) counts nothing, never an error. A missing ``root`` holds 0 bytes."""
    total = 0
    for folder, _dirs, files in os.walk(root):  # os.walk skips a folder that went away
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
