"""source.open_source: a camera's file is opened through its folders' descriptors only: no
symlink followed anywhere on the way, no FIFO (or device) opened for reading (issue 12)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bwc.ingest import source
from bwc.ingest.source import UnsafeSource, open_source, opened

pytestmark = pytest.mark.unit


@pytest.fixture
def no_hang() -> Iterator[None]:
    def _alarm(_signum: int, _frame: Any) -> None:
        raise TimeoutError("open blocked")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def cam(tmp_path: Path) -> Path:
    (tmp_path / "cam" / "DCIM" / "100MEDIA").mkdir(parents=True)
    (tmp_path / "cam" / "DCIM" / "100MEDIA" / "A.MP4").write_bytes(b"camera")
    (tmp_path / "secret" / "100MEDIA").mkdir(parents=True)
    (tmp_path / "secret" / "100MEDIA" / "A.MP4").write_bytes(b"secret")
    return tmp_path / "cam"


def b(p: Path) -> bytes:
    return os.fsencode(p)


def test_opens_a_regular_file(cam: Path) -> None:
    with opened(b(cam), b"DCIM/100MEDIA/A.MP4") as src:
        assert os.read(src.fd, 100) == b"camera"
        assert src.name == b"A.MP4"
        assert source.restat(b(cam), b"DCIM/100MEDIA/A.MP4").st_ino == src.stat.st_ino


@pytest.mark.parametrize("which", ["DCIM", "DCIM/100MEDIA"])
def test_a_folder_swapped_for_a_symlink_is_not_followed(
    cam: Path, tmp_path: Path, which: str
) -> None:
    os.rename(cam / which, tmp_path / "away")
    target = tmp_path / "secret" if which == "DCIM" else tmp_path / "secret" / "100MEDIA"
    os.symlink(target, cam / which)
    with pytest.raises(UnsafeSource, match="no longer a folder"):
        open_source(b(cam), b"DCIM/100MEDIA/A.MP4")
    assert not source.lexists(b(cam), b"DCIM/100MEDIA/A.MP4")


def test_the_file_itself_a_symlink(cam: Path, tmp_path: Path) -> None:
    f = cam / "DCIM" / "100MEDIA" / "A.MP4"
    f.unlink()
    f.symlink_to(tmp_path / "secret" / "100MEDIA" / "A.MP4")
    with pytest.raises(UnsafeSource, match="symlink"):
        open_source(b(cam), b"DCIM/100MEDIA/A.MP4")


def test_a_fifo_is_refused_without_blocking(cam: Path, no_hang: None) -> None:
    f = cam / "DCIM" / "100MEDIA" / "A.MP4"
    f.unlink()
    os.mkfifo(f)
    with pytest.raises(UnsafeSource, match="not a regular file"):
        open_source(b(cam), b"DCIM/100MEDIA/A.MP4")


def test_a_folder_replaced_since_it_was_listed(cam: Path, tmp_path: Path) -> None:
    folder = cam / "DCIM" / "100MEDIA"
    listed = (folder.stat().st_dev, folder.stat().st_ino)
    os.rename(folder, tmp_path / "old")
    folder.mkdir()
    (folder / "A.MP4").write_bytes(b"other")
    with pytest.raises(UnsafeSource, match="replaced"):
        open_source(b(cam), b"DCIM/100MEDIA/A.MP4", listed)


@pytest.mark.parametrize("rel", [b"", b"../secret/100MEDIA/A.MP4", b"DCIM/../../x"])
def test_no_path_out_of_the_root(cam: Path, rel: bytes) -> None:
    with pytest.raises(UnsafeSource):
        open_source(b(cam), rel)


def test_missing_is_an_os_error(cam: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_source(b(cam), b"DCIM/GONE.MP4")
