"""SHA-256 fingerprints, computed while the bytes stream past (one read of each byte).

``copy_and_hash`` copies a source into an open destination and hashes in the same pass; the
hash runs on its own thread (hashlib releases the GIL for large buffers), so copying is bound
by the disk, not the hash. ``hash_file`` re-reads a stored file for verification after dropping
its cached pages, so the check reads the disk rather than the page cache.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 20  # 1 MiB: large enough for full hashlib speed, small enough for flat memory
_QUEUE_DEPTH = 8  # at most ~8 MiB in flight per copy


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


class _HashThread:
    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._t = threading.Thread(target=self._run, name="bwc-hash", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (chunk := self._q.get()) is not None:
            self._h.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._q.put(chunk)

    def hexdigest(self) -> str:
        self._q.put(None)
        self._t.join()
        return self._h.hexdigest()

    def abort(self) -> None:
        self._q.put(None)
        self._t.join()


def copy_and_hash(src: BinaryIO, dst_fd: int) -> Digest:
    """Copy ``src`` to the file descriptor ``dst_fd`` while hashing; one read of the source."""
    hasher = _HashThread()
    size = 0
    try:
        while chunk := src.read(CHUNK):
            hasher.update(chunk)
            view = memoryview(chunk)
            while view:
                n = os.write(dst_fd, view)
                view = view[n:]
            size += len(chunk)
    except BaseException:
        hasher.abort()
        raise
    return Digest(hasher.hexdigest(), size)


def drop_cache(fd: int) -> None:
    """Ask the kernel to drop this file's clean cached pages (after fsync they are clean)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def hash_fd(fd: int) -> Digest:
    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := os.readv(fd, [buf]):
        h.update(view[:n])
        size += n
    return Digest(h.hexdigest(), size)


def hash_file(path: os.PathLike[str] | str, *, from_disk: bool = True) -> Digest:
    """Hash a file with a fixed buffer; with ``from_disk`` its cached pages are dropped first."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if from_disk:
            drop_cache(fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        digest = hash_fd(fd)
        if from_disk:
            drop_cache(fd)  # verification reads should not evict the working set
        return digest
    finally:
        os.close(fd)
