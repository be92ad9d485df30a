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

CHUNK = 4 << 20  # 4 MiB: full hashlib and disk speed; with 4 buffers, 16 MiB in flight
_BUFFERS = 4  # buffers rotating between read, write and hash


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


class _HashThread:
    """Hashes buffers handed to it, in order, on its own thread. Buffers are reused by the
    copier only after ``wait`` says the hash of that buffer is done."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self._q: queue.Queue[tuple[int, memoryview] | None] = queue.Queue()
        self._done = [threading.Event() for _ in range(_BUFFERS)]
        for ev in self._done:
            ev.set()
        self._t = threading.Thread(target=self._run, name="bwc-hash", daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (job := self._q.get()) is not None:
            slot, view = job
            self._h.update(view)
            self._done[slot].set()

    def submit(self, slot: int, view: memoryview) -> None:
        self._done[slot].clear()
        self._q.put((slot, view))

    def wait(self, slot: int) -> None:
        self._done[slot].wait()

    def hexdigest(self) -> str:
        self._q.put(None)
        self._t.join()
        return self._h.hexdigest()

    def abort(self) -> None:
        self._q.put(None)
        self._t.join()


def copy_and_hash(src_fd: int, dst_fd: int) -> Digest:
    """Copy ``src_fd`` to ``dst_fd`` while hashing; one read of the source.

    A few fixed buffers rotate between reading, writing and hashing, so memory stays flat
    and no buffer is allocated (and page-faulted) per chunk."""
    bufs = [bytearray(CHUNK) for _ in range(_BUFFERS)]
    views = [memoryview(b) for b in bufs]
    hasher = _HashThread()
    size = 0
    slot = 0
    try:
        while True:
            hasher.wait(slot)  # the hash of what this buffer held last time is done
            n = os.readv(src_fd, [bufs[slot]])
            if n == 0:
                break
            chunk = views[slot][:n]
            hasher.submit(slot, chunk)
            while chunk:
                w = os.write(dst_fd, chunk)
                chunk = chunk[w:]
            size += n
            slot = (slot + 1) % _BUFFERS
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
