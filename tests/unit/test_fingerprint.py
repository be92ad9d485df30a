"""copy_and_hash / hash_file / RangeReader: the bytes and digests are right for every size
around the buffer and block boundaries, with direct I/O and without (tmpfs refuses it), from
short reads, and from several threads at once sharing the buffer pool; the source is read
past the page cache, and a late refusal of direct reads is survived."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from bwc.evidence import fingerprint
from bwc.evidence.fingerprint import CHUNK, RangeReader, copy_and_hash, hash_file, set_direct

SIZES = [
    0,
    1,
    511,
    4095,
    4096,
    4097,
    100_000,
    CHUNK - 4097,
    CHUNK - 4096,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    3 * CHUNK + 4096,
    2 * CHUNK + 7,
]
SHM = Path("/dev/shm")


def _data(size: int) -> bytes:
    # distinct per position so a misplaced block changes the digest
    block = hashlib.sha256(str(size).encode()).digest() * 128
    return (block * (size // len(block) + 1))[:size]


def _dirs(tmp_path: Path) -> list[Path]:
    dirs = [tmp_path]
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        d = SHM / f"bwc-test-{os.getpid()}-{tmp_path.name}"
        d.mkdir(exist_ok=True)
        dirs.append(d)
    return dirs


@pytest.fixture
def dirs(tmp_path: Path):  # type: ignore[no-untyped-def]
    ds = _dirs(tmp_path)
    yield ds
    for d in ds[1:]:
        for p in d.iterdir():
            p.unlink()
        d.rmdir()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("direct", [True, False])
def test_copy_and_hash(dirs: list[Path], size: int, direct: bool) -> None:
    data = _data(size)
    for d in dirs:
        src, dst = d / "src", d / "dst"
        src.write_bytes(data)
        s = os.open(src, os.O_RDONLY)
        o = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            digest = copy_and_hash(s, o, direct=direct)
            os.fsync(o)
        finally:
            os.close(s)
            os.close(o)
        assert digest.sha256 == hashlib.sha256(data).hexdigest()
        assert digest.size == size
        assert dst.read_bytes() == data
        for from_disk in (True, False):
            back = hash_file(dst, from_disk=from_disk)
            assert (back.sha256, back.size) == (digest.sha256, size)
        src.unlink()
        dst.unlink()


def test_short_reads_from_a_pipe(tmp_path: Path) -> None:
    """A source that returns odd-sized pieces: the destination still gets every byte in order
    (direct writes need whole blocks, so pieces are gathered before writing)."""
    data = _data(2 * CHUNK + 12345)
    r, w = os.pipe()

    def feed() -> None:
        view = memoryview(data)
        step = 1
        while view:
            n = os.write(w, view[: 7919 * step])
            view = view[n:]
            step = step % 13 + 1
        os.close(w)

    t = threading.Thread(target=feed)
    t.start()
    dst = tmp_path / "dst"
    o = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        digest = copy_and_hash(r, o)
    finally:
        os.close(o)
        os.close(r)
        t.join()
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert dst.read_bytes() == data


def test_verification_sees_a_change_on_the_medium(tmp_path: Path) -> None:
    """A byte changed in the file after it was hashed is seen by the from-disk hash, whether
    the read is direct or goes through dropped cache pages."""
    p = tmp_path / "obj"
    data = _data(CHUNK + 100)
    p.write_bytes(data)
    first = hash_file(p)
    with open(p, "r+b") as f:
        f.seek(CHUNK + 50)
        f.write(b"\x00" if data[CHUNK + 50] else b"\x01")
        f.flush()
        os.fsync(f.fileno())
    assert hash_file(p).sha256 != first.sha256


def test_direct_io_is_used_where_the_file_system_has_it(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        on = set_direct(fd, True)
        if not on:
            pytest.skip("this file system has no direct I/O")
        import fcntl

        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
        assert set_direct(fd, False) is False
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
    finally:
        os.close(fd)


def _cached_pages(path: Path) -> int:
    """How many pages of ``path`` are in the page cache (mincore(2) on a private map of it,
    which asks the cache without reading anything)."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    vec = (ctypes.c_ubyte * pages)()
    with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as m:
        start = ctypes.c_char.from_buffer(m)
        try:
            rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(start)), ctypes.c_size_t(size), vec)
        finally:
            del start
    if rc != 0:
        pytest.skip(f"mincore failed: {os.strerror(ctypes.get_errno())}")
    return sum(b & 1 for b in vec)


@pytest.mark.parametrize("size", [100_000, 3 * CHUNK + 5])
def test_the_source_is_not_left_in_the_page_cache(tmp_path: Path, size: int) -> None:
    """Footage is read once: the copy reads the source with direct I/O, so a docked camera's
    files do not fill the station's memory."""
    src = tmp_path / "src"
    data = _data(size)
    src.write_bytes(data)
    fd = os.open(src, os.O_RDONLY)
    try:
        if not set_direct(fd, True):
            pytest.skip("this file system has no direct I/O")
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if _cached_pages(src):
        pytest.skip("cannot drop this file's cached pages here")
    assert _copy(src, tmp_path / "dst") == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "dst").read_bytes() == data
    # at most the last page: the end of the file is confirmed with a plain read there
    assert _cached_pages(src) <= 1


def test_a_late_refusal_of_direct_reads_falls_back_to_plain_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems accept O_DIRECT from fcntl and then refuse the read itself (EINVAL):
    the copy goes on with plain reads instead of failing the file."""
    import errno
    import fcntl

    real = os.readv
    refused: list[int] = []

    def readv(fd: int, buffers: list[memoryview]) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0):
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, buffers)

    monkeypatch.setattr(fingerprint.os, "readv", readv)
    for size in (100, 2 * CHUNK + 7):
        src = tmp_path / f"src{size}"
        data = _data(size)
        src.write_bytes(data)
        assert _copy(src, tmp_path / f"dst{size}") == hashlib.sha256(data).hexdigest()
        assert (tmp_path / f"dst{size}").read_bytes() == data
    probe = os.open(tmp_path / "src100", os.O_RDONLY)
    try:
        direct_here = set_direct(probe, True)
    finally:
        os.close(probe)
    assert bool(refused) == direct_here  # the refusal was met (where direct I/O exists)


def _copy(src: Path, dst: Path) -> str:
    s = os.open(src, os.O_RDONLY)
    o = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        return copy_and_hash(s, o).sha256
    finally:
        os.close(s)
        os.close(o)


def test_copies_on_several_threads_at_once(tmp_path: Path) -> None:
    """The daemon copies several cameras at once: the shared buffer pool never hands one
    buffer to two copies."""
    sizes = [3 * CHUNK + 11, 2 * CHUNK, 100_000, CHUNK + 4096, 5 * CHUNK - 1, 7]
    datas = [_data(n) for n in sizes]
    for i, data in enumerate(datas):
        (tmp_path / f"src{i}").write_bytes(data)
    results: dict[int, str] = {}

    def run(i: int) -> None:
        for round_ in range(3):
            results[i * 10 + round_] = _copy(tmp_path / f"src{i}", tmp_path / f"dst{i}-{round_}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sizes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, data in enumerate(datas):
        for round_ in range(3):
            assert results[i * 10 + round_] == hashlib.sha256(data).hexdigest()
            assert (tmp_path / f"dst{i}-{round_}").read_bytes() == data


def test_buffers_are_reused_and_the_pool_is_bounded() -> None:
    first = fingerprint._take(2)
    fingerprint._give(first)
    again = fingerprint._take(2)
    assert {id(b) for b in again} == {id(b) for b in first}
    many = fingerprint._take(fingerprint._POOL_MAX + 3)
    fingerprint._give(many + again)
    assert len(fingerprint._pool) == fingerprint._POOL_MAX
    assert all(len(b) == CHUNK for b in fingerprint._pool)


RANGES = [
    (0, 1),
    (0, 4096),
    (0, CHUNK),
    (0, CHUNK + 1),  # capped at one CHUNK
    (1, 4096),  # unaligned: a plain read
    (4095, 2),
    (4096, 4096),
    (4096, 100_000),
    (CHUNK, CHUNK),
    (CHUNK - 1, 3),
]


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, CHUNK - 1, CHUNK + 1, 2 * CHUNK + 5])
def test_range_reader(dirs: list[Path], size: int) -> None:
    data = _data(size)
    for d in dirs:
        p = d / "staged"
        p.write_bytes(data)
        with RangeReader(p) as r:
            for off, length in [*RANGES, (size, 10), (size + 4096, 10), (max(0, size - 3), 4096)]:
                want = data[off : off + min(length, CHUNK)]
                assert r.pread(length, off) == want, (d, off, length)
            # read whole, as an upload does: from wherever the last read ended
            got, off = bytearray(), 0
            while chunk := r.pread(CHUNK, off):
                got += chunk
                off += len(chunk)
            assert bytes(got) == data
        p.unlink()


def test_range_reader_reads_what_the_medium_holds(tmp_path: Path) -> None:
    """A change written to the file after the reader opened it is what the reader returns
    (direct reads and cached pages agree)."""
    p = tmp_path / "staged"
    data = _data(2 * CHUNK)
    p.write_bytes(data)
    with RangeReader(p) as r:
        assert r.pread(4096, CHUNK) == data[CHUNK : CHUNK + 4096]
        with open(p, "r+b") as f:
            f.seek(CHUNK + 10)
            f.write(b"changed")
        assert r.pread(4096, CHUNK)[10:17] == b"changed"
