"""The upload body of the S3 store: a window of the spool copy, read whole whichever way the
HTTP client asks for it (large reads, small readinto buffers, seeks back for a retry)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from bwc.errors import StoreError
from bwc.evidence.fingerprint import RangeReader
from bwc.evidence.stores.s3 import _Window

pytestmark = pytest.mark.unit


def _data(size: int) -> bytes:
    block = hashlib.sha256(str(size).encode()).digest() * 128
    return (block * (size // len(block) + 1))[:size]


@pytest.mark.parametrize("offset,length", [(0, 3_000_001), (1 << 20, 1_500_000), (7, 4096)])
def test_window_reads_its_range_every_way(tmp_path: Path, offset: int, length: int) -> None:
    data = _data(4 << 20)
    p = tmp_path / "staged"
    p.write_bytes(data)
    want = data[offset : offset + length]
    with RangeReader(p) as reader:
        w = _Window(reader, offset, length)
        assert len(w) == length
        got = bytearray()
        while chunk := w.read(16384):  # as the HTTP client asks
            got += chunk
        assert bytes(got) == want
        w.seek(0)  # a retry starts again
        buf = bytearray(10_000)  # smaller than one read: never overfilled
        got = bytearray()
        while n := w.readinto(buf):
            assert n <= len(buf)
            got += buf[:n]
        assert bytes(got) == want
        w.seek(-5, io.SEEK_END)
        assert w.read() == want[-5:]


def test_a_staged_file_that_shrank_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "staged"
    p.write_bytes(_data(10_000))
    with RangeReader(p) as reader:
        w = _Window(reader, 0, 20_000)
        assert len(w.read(16384)) == 10_000
        with pytest.raises(StoreError, match="shrank"):
            w.read(16384)
