"""A file system that loses, on a simulated power cut, every write not yet made durable: a
small in-memory FUSE file system in the spirit of LazyFS, for the power-loss trials.

Run as its own process (``python lazyfs.py MOUNTPOINT IMAGE``); the tests drive it through
``LazyFS``. It keeps two states of every file and folder:

- the live one, which every process sees until the power is cut;
- the durable one, which survives the cut. A file's data becomes durable when the file is
  fsynced (fsync or fdatasync, through any of its names); a folder's entries (creates,
  renames, unlinks, links, mkdir, rmdir) when the folder itself is fsynced. Nothing else
  makes anything durable: a rename does not fsync the file it moves (ext4 ``data=ordered``
  without ``auto_da_alloc``), a file's fsync does not make its name durable, and a folder
  that is made durable before its own entries are comes back empty. A file whose data was
  never fsynced comes back empty. This is stricter than most real file systems (ext4's
  journal commits more than was asked for), never laxer, which is the point.

Writing ``sync`` to ``/.lazyfs`` makes everything durable (``sync(2)``); writing ``crash``
cuts the power: the durable state is written to IMAGE, and from then on every operation
fails with EIO until the file system is unmounted. Mounted again with the same IMAGE, it
shows exactly the durable state.

The file data lives in memory: fine for the trials' small cameras (a few MB).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTROL = ".lazyfs"
ROOT = 1

# What to install when FUSE is missing (said by the tests, which fail, never skip).
INSTALL_HINT = (
    "the power-loss tests need FUSE 3: /dev/fuse, the Debian packages fuse3 and libfuse3-3 "
    "(`make test` installs them as root: apt-get install fuse3) and the Python package mfusepy "
    "(in the dev extras: `make setup`)"
)


@dataclass
class Node:
    mode: int  # st_mode, with the file type
    uid: int = 0
    gid: int = 0
    data: bytearray = field(default_factory=bytearray)  # regular files
    entries: dict[str, int] = field(default_factory=dict)  # folders
    target: str = ""  # symlinks
    nlink: int = 0
    atime: int = 0
    mtime: int = 0
    ctime: int = 0

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


# One durable node: mode, uid, gid, data or entries or target, mtime.
Image = dict[int, tuple[int, int, int, Any, int]]


class LazyOps:
    """The FUSE operations (mfusepy's high-level API, paths as str)."""

    use_ns = True

    def __init__(self, image_path: Path) -> None:
        self.image_path = image_path
        self._mutex = threading.RLock()
        self.crashed = False
        self.nodes: dict[int, Node] = {}
        # durable state: file data by inode, folder entries by inode, node metadata
        self.dur_data: dict[int, bytes] = {}
        self.dur_entries: dict[int, dict[str, int]] = {}
        self.dur_meta: dict[int, tuple[int, int, int, str]] = {}
        self.next_ino = ROOT + 1
        if image_path.exists():
            self._load(pickle.loads(image_path.read_bytes()))
        else:
            now = time.time_ns()
            self.nodes[ROOT] = Node(stat.S_IFDIR | 0o755, nlink=2, atime=now, mtime=now, ctime=now)
            self._sync_all()

    # -- durable state
    def _load(self, image: Image) -> None:
        for ino, (mode, uid, gid, body, mtime) in image.items():
            n = Node(mode, uid, gid, atime=mtime, mtime=mtime, ctime=mtime)
            if stat.S_ISDIR(mode):
                n.entries = dict(body)
            elif stat.S_ISLNK(mode):
                n.target = body
            else:
                n.data = bytearray(body)
            self.nodes[ino] = n
            self.next_ino = max(self.next_ino, ino + 1)
        for n in self.nodes.values():
            n.nlink = 2 if n.is_dir else 0
        for n in list(self.nodes.values()):
            for child in n.entries.values():
                c = self.nodes[child]
                if c.is_dir:
                    n.nlink += 1
                else:
                    c.nlink += 1
        self._sync_all()

    def _sync_all(self) -> None:
        for ino in self.nodes:
            self._sync_node(ino)
            if self.nodes[ino].is_dir:
                self._sync_entries(ino)

    def _sync_node(self, ino: int) -> None:
        n = self.nodes[ino]
        self.dur_meta[ino] = (n.mode, n.uid, n.gid, n.target)
        if not n.is_dir:
            self.dur_data[ino] = bytes(n.data)

    def _sync_entries(self, ino: int) -> None:
        n = self.nodes[ino]
        self.dur_entries[ino] = dict(n.entries)
        for child in n.entries.values():
            c = self.nodes[child]
            # the entry's inode exists after a crash, with what was last made durable of it
            old = self.dur_meta.get(child)
            self.dur_meta[child] = (c.mode, c.uid, c.gid, c.target if old is None else old[3])

    def durable_image(self) -> Image:
        """What a power cut leaves: the nodes reachable through durable entries."""
        image: Image = {}
        todo = [ROOT]
        while todo:
            ino = todo.pop()
            if ino in image:
                continue
            mode, uid, gid, target = self.dur_meta[ino]
            mtime = self.nodes[ino].mtime if ino in self.nodes else 0
            if stat.S_ISDIR(mode):
                entries = self.dur_entries.get(ino, {})
                image[ino] = (mode, uid, gid, dict(entries), mtime)
                todo.extend(entries.values())
            elif stat.S_ISLNK(mode):
                image[ino] = (mode, uid, gid, target, mtime)
            else:
                image[ino] = (mode, uid, gid, self.dur_data.get(ino, b""), mtime)
        return image

    def _control(self, data: bytes) -> None:
        for word in data.decode().split():
            if word == "sync":
                self._sync_all()
            elif word == "crash":
                image = self.durable_image()
                tmp = self.image_path.with_name(self.image_path.name + ".tmp")
                tmp.write_bytes(pickle.dumps(image))
                os.replace(tmp, self.image_path)
                self.crashed = True
            else:
                raise OSError(errno.EINVAL, f"unknown control word {word!r}")

    # -- lookup
    def _check(self) -> None:
        if self.crashed:
            raise OSError(errno.EIO, "the power is off")

    def _split(self, path: str) -> tuple[int, str]:
        parent, _, name = path.rstrip("/").rpartition("/")
        return self._ino(parent or "/"), name

    def _ino(self, path: str) -> int:
        ino = ROOT
        for part in path.split("/"):
            if not part:
                continue
            n = self.nodes[ino]
            if not n.is_dir:
                raise OSError(errno.ENOTDIR, path)
            try:
                ino = n.entries[part]
            except KeyError:
                raise OSError(errno.ENOENT, path) from None
        return ino

    def _new(self, mode: int) -> int:
        ino = self.next_ino
        self.next_ino += 1
        now = time.time_ns()
        ctx = _fuse_context()
        self.nodes[ino] = Node(mode, ctx[0], ctx[1], atime=now, mtime=now, ctime=now)
        return ino

    def _link_in(self, parent: int, name: str, ino: int) -> None:
        p = self.nodes[parent]
        if name in p.entries:
            raise OSError(errno.EEXIST, name)
        p.entries[name] = ino
        p.mtime = p.ctime = time.time_ns()
        n = self.nodes[ino]
        if n.is_dir:
            n.nlink = 2
            p.nlink += 1
        else:
            n.nlink += 1

    def _unlink_from(self, parent: int, name: str) -> None:
        p = self.nodes[parent]
        ino = p.entries.pop(name)
        p.mtime = p.ctime = time.time_ns()
        n = self.nodes[ino]
        if n.is_dir:
            p.nlink -= 1
            n.nlink = 0
        else:
            n.nlink -= 1
            n.ctime = time.time_ns()

    # -- operations
    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        with self._mutex:
            if path == "/" + CONTROL:
                return {"st_mode": stat.S_IFREG | 0o600, "st_nlink": 1, "st_size": 0}
            if path == "/" and self.crashed:  # still a mount point, to be unmounted
                return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2, "st_ino": ROOT}
            self._check()
            ino = fh if fh else self._ino(path)
            n = self.nodes[ino]
            size = len(n.data) if not n.is_dir else 4096
            if stat.S_ISLNK(n.mode):
                size = len(os.fsencode(n.target))
            return {
                "st_ino": ino,
                "st_mode": n.mode,
                "st_nlink": n.nlink,
                "st_uid": n.uid,
                "st_gid": n.gid,
                "st_size": size,
                "st_blocks": (size + 511) // 512,
                "st_blksize": 4096,
                "st_atime": n.atime,
                "st_mtime": n.mtime,
                "st_ctime": n.ctime,
            }

    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int], int]]:
        with self._mutex:
            self._check()
            d = self._ino(path)
            # with their inode numbers: a readdir entry of inode 0 is skipped by the C library
            out: list[tuple[str, dict[str, int], int]] = [
                (".", {"st_mode": stat.S_IFDIR, "st_ino": d}, 0),
                ("..", {"st_mode": stat.S_IFDIR, "st_ino": ROOT}, 0),
            ]
            for name, ino in self.nodes[d].entries.items():
                out.append((name, {"st_mode": self.nodes[ino].mode, "st_ino": ino}, 0))
            return out

    def opendir(self, path: str) -> int:
        with self._mutex:
            self._check()
            return self._ino(path)

    def releasedir(self, path: str, fh: int) -> int:
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        with self._mutex:
            self._check()
            parent, name = self._split(path)
            ino = self._new(stat.S_IFDIR | (mode & 0o7777))
            self._link_in(parent, name, ino)
            return 0

    def rmdir(self, path: str) -> int:
        with self._mutex:
            self._check()
            parent, name = self._split(path)
            ino = self.nodes[parent].entries.get(name)
            if ino is None:
                raise OSError(errno.ENOENT, path)
            if self.nodes[ino].entries:
                raise OSError(errno.ENOTEMPTY, path)
            self._unlink_from(parent, name)
            return 0

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        with self._mutex:
            self._check()
            parent, name = self._split(path)
            ino = self._new(stat.S_IFREG | (mode & 0o7777))
            self._link_in(parent, name, ino)
            return ino

    def mknod(self, path: str, mode: int, dev: int) -> int:
        with self._mutex:
            self._check()
            if not stat.S_ISREG(mode):
                raise OSError(errno.EPERM, path)
            parent, name = self._split(path)
            self._link_in(parent, name, self._new(mode))
            return 0

    def open(self, path: str, flags: int) -> int:
        with self._mutex:
            if path == "/" + CONTROL:
                return 0
            self._check()
            return self._ino(path)

    def release(self, path: str, fh: int) -> int:
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        with self._mutex:
            if path == "/" + CONTROL:
                return b""
            self._check()
            n = self.nodes[fh or self._ino(path)]
            return bytes(n.data[offset : offset + size])

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self._mutex:
            if path == "/" + CONTROL:
                self._control(bytes(data))
                return len(data)
            self._check()
            n = self.nodes[fh or self._ino(path)]
            if offset > len(n.data):
                n.data.extend(b"\0" * (offset - len(n.data)))
            n.data[offset : offset + len(data)] = data
            n.mtime = n.ctime = time.time_ns()
            return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self._mutex:
            if path == "/" + CONTROL:
                return 0
            self._check()
            n = self.nodes[fh or self._ino(path)]
            if length < len(n.data):
                del n.data[length:]
            else:
                n.data.extend(b"\0" * (length - len(n.data)))
            n.mtime = n.ctime = time.time_ns()
            return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self._mutex:
            self._check()
            self._sync_node(fh or self._ino(path))
            return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        with self._mutex:
            self._check()
            ino = fh or self._ino(path)
            self._sync_node(ino)
            self._sync_entries(ino)
            return 0

    def unlink(self, path: str) -> int:
        with self._mutex:
            self._check()
            parent, name = self._split(path)
            if name not in self.nodes[parent].entries:
                raise OSError(errno.ENOENT, path)
            self._unlink_from(parent, name)
            return 0

    def rename(self, old: str, new: str) -> int:
        with self._mutex:
            self._check()
            op, oname = self._split(old)
            np, nname = self._split(new)
            if oname not in self.nodes[op].entries:
                raise OSError(errno.ENOENT, old)
            ino = self.nodes[op].entries[oname]
            there = self.nodes[np].entries.get(nname)
            if there == ino:
                return 0
            if there is not None:
                t = self.nodes[there]
                if t.is_dir and t.entries:
                    raise OSError(errno.ENOTEMPTY, new)
                self._unlink_from(np, nname)
            self._unlink_from(op, oname)
            self._link_in(np, nname, ino)
            self.nodes[ino].ctime = time.time_ns()
            return 0

    def link(self, target: str, source: str) -> int:
        with self._mutex:
            self._check()
            ino = self._ino(source)
            if self.nodes[ino].is_dir:
                raise OSError(errno.EPERM, source)
            parent, name = self._split(target)
            self._link_in(parent, name, ino)
            self.nodes[ino].ctime = time.time_ns()
            return 0

    def symlink(self, target: str, source: str) -> int:
        with self._mutex:
            self._check()
            parent, name = self._split(target)
            ino = self._new(stat.S_IFLNK | 0o777)
            self.nodes[ino].target = source
            self._link_in(parent, name, ino)
            return 0

    def readlink(self, path: str) -> str:
        with self._mutex:
            self._check()
            return self.nodes[self._ino(path)].target

    def chmod(self, path: str, mode: int) -> int:
        with self._mutex:
            self._check()
            n = self.nodes[self._ino(path)]
            n.mode = stat.S_IFMT(n.mode) | (mode & 0o7777)
            n.ctime = time.time_ns()
            return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        with self._mutex:
            self._check()
            n = self.nodes[self._ino(path)]
            if uid != -1:
                n.uid = uid
            if gid != -1:
                n.gid = gid
            return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        with self._mutex:
            self._check()
            n = self.nodes[self._ino(path)]
            now = time.time_ns()
            n.atime, n.mtime = times if times else (now, now)
            n.ctime = now
            return 0

    def access(self, path: str, amode: int) -> int:
        with self._mutex:
            self._check()
            self._ino(path)
            return 0

    def statfs(self, path: str) -> dict[str, int]:
        blocks = 16 << 20  # 64 GiB of 4 KiB blocks: the daemon checks the spool's free space
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": blocks,
            "f_bfree": blocks,
            "f_bavail": blocks,
            "f_files": 1 << 20,
            "f_ffree": 1 << 20,
            "f_namemax": 255,
        }


def _fuse_context() -> tuple[int, int]:
    import mfusepy

    uid, gid, _pid = mfusepy.fuse_get_context()
    return uid, gid


# ------------------------------------------------------------------------------ the tests' side


def fuse_missing() -> str | None:
    """Why FUSE cannot be used here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (Debian package fuse3)"
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as e:  # OSError: no libfuse found
        return f"mfusepy cannot load libfuse3: {e}"
    return None


class LazyFS:
    """A lazy file system mounted at ``mountpoint`` by its own process; its durable state is
    kept in ``image`` across power cuts."""

    def __init__(self, mountpoint: Path, image: Path, log: Path) -> None:
        self.mountpoint = mountpoint
        self.image = image
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.crashes = 0

    def mount(self, timeout: float = 20.0) -> LazyFS:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, str(self.mountpoint), str(self.image)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.mountpoint):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.unmount()
                raise AssertionError(f"lazy FS did not mount: {self.log_tail()}")
            time.sleep(0.02)
        return self

    def control(self, word: str) -> None:
        with open(self.mountpoint / CONTROL, "wb", buffering=0) as f:
            f.write(word.encode())

    def sync(self) -> None:
        """Everything written so far is made durable (``sync(2)``)."""
        self.control("sync")

    def crash(self) -> None:
        """Cut the power: all that was not durable is gone; then mount again. Files still
        open on the old mount fail from now on (ENOTCONN), as after a reboot."""
        self.control("crash")  # answered once the durable state is saved in the image
        self.crashes += 1
        self._stop(kill=True)
        self.mount()

    def unmount(self) -> None:
        self._stop(kill=False)

    def _stop(self, *, kill: bool) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if kill:  # its state is in the image; a file still open must not hold it up
            proc.kill()
            proc.wait()
        r = subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True)
        if r.returncode != 0:  # busy (a file still open): detach it, and stop serving it
            proc.kill()
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text("utf-8", "replace")[-3000:]
        return ""


def main(argv: list[str]) -> int:
    import mfusepy

    mountpoint, image = argv[1], Path(argv[2])
    ops = LazyOps(image)
    mfusepy.FUSE(
        ops,
        mountpoint,
        foreground=True,
        nothreads=False,
        use_ino=True,
        hard_remove=True,  # an open file unlinked is gone from its folder, not renamed away
        fsname="lazyfs",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
