"""SHA-256 fingerprints, computed while the bytes stream past (one read of each byte).

``copy_and_hash`` copies a source into an open destination and hashes in the same pass; the
hash runs on its own thread (hashlib releases the GIL for large buffers), so copying is bound
by the disk, not the hash. ``hash_file`` re-reads a stored file for verification from the
medium rather than the page cache.

Both use direct I/O (``O_DIRECT``) where the file system offers it: the source is read and
the copy written without passing through the page cache (no second copy in memory, far less
kernel time, nothing left dirty for a later flush, and a camera's footage, read once, does
not evict the station's working set), and a verification read cannot be served from cached
pages, so it really reads what the medium holds. Where direct I/O is refused
(tmpfs, some FUSE and network file systems) they fall back to buffered I/O, and verification
drops the file's cached pages first (``posix_fadvise(DONTNEED)``, after fsync they are clean).
Buffers are page-aligned anonymous maps, as direct I/O requires, and are reused from a small
pool: memory touched for the first time is far dearer than memory reused (page faults, and
in a virtual machine the host's as well), and a station copies thousands of files a day.

``RangeReader`` reads ranges of a copy the same way, from the medium into pooled buffers: the
S3 upload reads the spool copy once, and reading it through the page cache would fill memory
with pages used once and dropped.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import queue
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

CHUNK = 4 << 20  # 4 MiB: full hashlib and disk speed
_COPY_BUFFERS = 4  # rotating between read, write and hash: 16 MiB in flight
_READ_BUFFERS = 2  # verification: read one while the other is hashed
_ALIGN = 4096  # direct I/O needs offsets and lengths aligned to the logical block size
_POOL_MAX = 6  # CHUNK buffers kept for reuse (24 MiB): one copy (4) and one read-back (2)
_AHEAD = 2  # direct reads in flight while copying

try:
    import fcntl

    _O_DIRECT: int = getattr(os, "O_DIRECT", 0)
except ImportError:  # pragma: no cover - not POSIX
    _O_DIRECT = 0


class Cancelled(Exception):
    """A copy was stopped on request (see ``copy_and_hash``'s ``cancel``)."""


class WriteFailed(Exception):
    """Writing the copy failed (its ``__cause__`` is the OSError): the destination's fault,
    not the source's."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


def set_direct(fd: int, on: bool) -> bool:
    """Turn direct I/O on or off for an open file; False where the file system refuses it."""
    if not _O_DIRECT:
        return False
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | _O_DIRECT) if on else (flags & ~_O_DIRECT))
    except OSError:
        return False
    return on


def _aligned_buffers(count: int, length: int = CHUNK) -> list[mmap.mmap]:
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
    return [mmap.mmap(-1, length, flags=flags) for _ in range(count)]


_pool: list[mmap.mmap] = []
_pool_lock = threading.Lock()


def _take(count: int) -> list[mmap.mmap]:
    """``count`` CHUNK-sized aligned buffers, reused where the pool has them. Hand them back
    with ``_give`` once no thread uses them any more."""
    with _pool_lock:
        got = [_pool.pop() for _ in range(min(count, len(_pool)))]
    return got + _aligned_buffers(count - len(got))


def _give(bufs: list[mmap.mmap]) -> None:
    with _pool_lock:
        _pool.extend(bufs[: max(0, _POOL_MAX - len(_pool))])


def _small(fd: int) -> int | None:
    """A buffer length that holds all of a regular file smaller than one chunk (with room to
    notice it grew), else None. Small files are copied and hashed on the calling thread: for
    them, threads and 16 MiB of buffers would cost more than the copy."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size >= CHUNK - _ALIGN:
        return None
    return (st.st_size // _ALIGN + 1) * _ALIGN


def _copy_inline(src_fd: int, dst_fd: int, length: int, direct: bool) -> Digest:
    bufs = _take(1)
    view = memoryview(bufs[0])[:length]
    h = hashlib.sha256()
    size = 0
    reading = set_direct(src_fd, True)
    try:
        while True:
            n, reading = _fill(src_fd, view, reading)
            if n == 0:
                break
            h.update(view[:n])
            direct = _write_all(dst_fd, view[:n], direct)
            size += n
    finally:
        if direct:
            set_direct(dst_fd, False)
        if reading:
            set_direct(src_fd, False)
    _give(bufs)
    return Digest(h.hexdigest(), size)


class _BufferWorker:
    """Applies ``fn`` to the buffers handed to it, in order, on a thread of its own. A buffer
    is reused only after ``wait`` says this worker is done with what it held. The first
    exception from ``fn`` stops the work and is raised by the next ``wait`` or ``finish``."""

    def __init__(self, slots: int, fn: Callable[[memoryview], None], name: str) -> None:
        self._fn = fn
        self._q: queue.SimpleQueue[tuple[int, memoryview] | None] = queue.SimpleQueue()
        self._done = [threading.Event() for _ in range(slots)]
        for ev in self._done:
            ev.set()
        self.error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name=name, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while (job := self._q.get()) is not None:
            slot, view = job
            try:
                if self.error is None:
                    self._fn(view)
            except BaseException as e:
                self.error = e
            finally:
                del view, job
                self._done[slot].set()

    def submit(self, slot: int, view: memoryview) -> None:
        self._done[slot].clear()
        self._q.put((slot, view))

    def wait(self, slot: int) -> None:
        self._done[slot].wait()
        if self.error is not None:
            raise self.error

    def finish(self) -> None:
        self._q.put(None)
        self._t.join()
        if self.error is not None:
            raise self.error


def _hasher(slots: int) -> tuple[_BufferWorker, Any]:
    h = hashlib.sha256()
    return _BufferWorker(slots, h.update, "bwc-hash"), h


def _fill(fd: int, view: memoryview, direct: bool, offset: int | None = None) -> tuple[int, bool]:
    """Read until ``view`` is full or the file ends; returns (bytes read, still direct).
    ``offset``: read there (positional reads, several threads at once) instead of at the
    file's position.

    A short direct read is taken as the end of the file, but confirmed with a plain read:
    direct reads must start at aligned offsets, which the file's end is not. A late refusal
    of direct reads (EINVAL) turns direct mode off and reads plainly."""
    got = 0
    while got < len(view):
        try:
            if offset is None:
                n = os.readv(fd, [view[got:]])
            else:
                n = os.preadv(fd, [view[got:]], offset + got)
        except OSError as e:
            if not (direct and e.errno == errno.EINVAL):
                raise
            direct = set_direct(fd, False)
            continue
        if n == 0:
            break
        got += n
        if direct and got % _ALIGN:
            direct = set_direct(fd, False)
    return got, direct


def _sequential(
    fd: int, views: list[memoryview], free: Callable[[int], None], direct: bool = False
) -> Iterator[tuple[int, int]]:
    """(buffer index, bytes read) of sequential reads into rotating buffers, one at a time:
    for what ``_Prefetch`` does not read (pipes, files where direct I/O is refused: the
    kernel reads ahead for these) and for verification reads. ``direct``: the file is in
    direct-I/O mode (see ``_fill``)."""
    slot = 0
    while True:
        free(slot)
        n, direct = _fill(fd, views[slot], direct)
        if n == 0:
            return
        yield slot, n
        slot = (slot + 1) % len(views)


class _Prefetch:
    """Reads a regular file in direct mode into rotating buffers, ``_AHEAD`` reads in flight.

    One direct read at a time leaves the device idle between reads (the page cache's
    read-ahead, which direct I/O bypasses, would have kept it busy): ~25% slower on the bench
    disk. Iterating yields (buffer index, bytes read) in file order and stops after the first
    short buffer, the end of the file as it was then: a read beyond it that found data because
    the file grew is dropped (the caller's size check sees the growth). ``free(i)`` is called
    before a buffer is read into again, and must return once nobody uses what it holds.
    ``close`` waits for every read in flight, so no read fills a buffer after it."""

    def __init__(self, fd: int, views: list[memoryview], free: Callable[[int], None]) -> None:
        self._fd = fd
        self._views = views
        self._free = free
        self.start = self._offset = os.lseek(fd, 0, os.SEEK_CUR)
        self._next = 0  # the buffer the next read goes into
        self._pending: deque[tuple[int, Future[tuple[int, bool]]]] = deque()
        self._pool = ThreadPoolExecutor(_AHEAD, thread_name_prefix="bwc-read")

    def _issue(self) -> None:
        i = self._next
        self._free(i)
        reading = self._pool.submit(_fill, self._fd, self._views[i], True, self._offset)
        self._pending.append((i, reading))
        self._offset += len(self._views[i])
        self._next = (i + 1) % len(self._views)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for _ in range(_AHEAD):
            self._issue()
        while self._pending:
            i, done = self._pending.popleft()
            n, _ = done.result()
            if n < len(self._views[i]):
                if n:
                    yield i, n
                return
            yield i, n
            self._issue()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _write_all(fd: int, view: memoryview, direct: bool) -> bool:
    """Write all of ``view``; returns whether the file is still in direct mode. The tail of a
    file (not a multiple of the block size) is written through the page cache. A failure is
    raised as ``WriteFailed``: the destination's fault, not the source's."""
    if direct and len(view) % _ALIGN:
        direct = set_direct(fd, False)
    try:
        while view:
            w = os.write(fd, view)
            view = view[w:]
            if direct and view:  # a short write leaves the rest unaligned
                direct = set_direct(fd, False)
    except OSError as e:
        raise WriteFailed(e) from e
    return direct


def copy_and_hash(
    src_fd: int, dst_fd: int, *, direct: bool = True, cancel: threading.Event | None = None
) -> Digest:
    """Copy ``src_fd`` to ``dst_fd`` (a new, empty file) while hashing; one read of the source.

    The source is read with direct I/O where its file system allows, two reads in flight
    (``_Prefetch``): footage is read once, so caching it would only cost memory (and, in a
    virtual machine, the kernel time of filling fresh pages) and evict the station's working
    set. With ``direct``, the destination is written with direct I/O too. A few fixed buffers
    rotate between reading, hashing and writing (a thread each), so memory stays flat. When
    ``cancel`` is set, the copy stops at the next buffer (``Cancelled``)."""
    if cancel is not None and cancel.is_set():
        raise Cancelled
    out_direct = [direct and set_direct(dst_fd, True)]
    small = _small(src_fd)
    if small is not None:
        return _copy_inline(src_fd, dst_fd, small, out_direct[0])
    bufs = _take(_COPY_BUFFERS)
    views = [memoryview(b) for b in bufs]

    def write(view: memoryview) -> None:
        out_direct[0] = _write_all(dst_fd, view, out_direct[0])

    hasher, h = _hasher(len(bufs))
    writer = _BufferWorker(len(bufs), write, "bwc-write")

    def free(slot: int) -> None:
        hasher.wait(slot)  # both are done with what this buffer held last time
        writer.wait(slot)
        if cancel is not None and cancel.is_set():
            raise Cancelled

    size = 0
    reads: _Prefetch | None = None
    try:
        if stat.S_ISREG(os.fstat(src_fd).st_mode) and set_direct(src_fd, True):
            reads = _Prefetch(src_fd, views, free)
            pieces: Iterator[tuple[int, int]] = iter(reads)
        else:
            pieces = _sequential(src_fd, views, free)
        for slot, n in pieces:
            hasher.submit(slot, views[slot][:n])
            writer.submit(slot, views[slot][:n])
            size += n
    finally:
        try:
            if reads is not None:
                reads.close()
                set_direct(src_fd, False)
                os.lseek(src_fd, reads.start + size, os.SEEK_SET)
        finally:
            try:
                writer.finish()
            finally:
                hasher.finish()
                if out_direct[0]:
                    set_direct(dst_fd, False)
    # Both threads have ended: the buffers are free again. (After a failure they are left to
    # be unmapped when the last view of them goes: a slice still held by a traceback.)
    _give(bufs)
    return Digest(h.hexdigest(), size)


def drop_cache(fd: int) -> None:
    """Ask the kernel to drop this file's clean cached pages (after fsync they are clean)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def hash_fd(fd: int, *, direct: bool = False) -> Digest:
    """Hash an open file from its current position, reading one buffer while hashing the
    other. With ``direct``, the file is in direct-I/O mode (see ``set_direct``)."""
    small = _small(fd)
    if small is not None:
        bufs = _take(1)
        view = memoryview(bufs[0])[:small]
        h = hashlib.sha256()
        size = 0
        while True:
            n, direct = _fill(fd, view, direct)
            if n == 0:
                _give(bufs)
                return Digest(h.hexdigest(), size)
            h.update(view[:n])
            size += n
    bufs = _take(_READ_BUFFERS)
    views = [memoryview(b) for b in bufs]
    hasher, h = _hasher(len(bufs))
    size = 0
    try:
        for slot, n in _sequential(fd, views, hasher.wait, direct):
            hasher.submit(slot, views[slot][:n])
            size += n
    finally:
        hasher.finish()
    _give(bufs)
    return Digest(h.hexdigest(), size)


def hash_file(path: os.PathLike[str] | str, *, from_disk: bool = True) -> Digest:
    """Hash a file. With ``from_disk`` the bytes come from the medium: direct I/O where the
    file system has it, else after dropping the file's cached pages."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        direct = from_disk and set_direct(fd, True)
        if from_disk and not direct:
            drop_cache(fd)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        digest = hash_fd(fd, direct=direct)
        if from_disk:
            drop_cache(fd)  # verification reads should not evict the working set
        return digest
    finally:
        os.close(fd)


class RangeReader:
    """Reads byte ranges of one file from the medium: direct I/O into pooled buffers where the
    file system allows it, plain reads elsewhere (tmpfs) and at unaligned offsets. Safe to
    share between threads (every read names its offset)."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._direct_fd = -1
        if _O_DIRECT:
            with contextlib.suppress(OSError):  # no direct I/O here (tmpfs): plain reads
                self._direct_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | _O_DIRECT)
        self._direct = self._direct_fd >= 0

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self._fd, self._direct_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._direct_fd = -1

    def pread(self, length: int, offset: int) -> bytes:
        """Up to ``length`` bytes (at most one CHUNK) at ``offset``; fewer only at the end of
        the file."""
        length = min(length, CHUNK)
        if self._direct and offset % _ALIGN == 0 and length > 0:
            bufs = _take(1)
            view = memoryview(bufs[0])
            try:
                want = -(-length // _ALIGN) * _ALIGN  # direct reads take whole blocks
                n = os.preadv(self._direct_fd, [view[:want]], offset)
                data = bytes(view[: min(n, length)])
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                self._direct = False  # refused after all (accepted at open): read plainly
            else:
                _give(bufs)
                return data
            finally:
                view.release()
        return os.pread(self._fd, length, offset)
