"""Docks: when a file is complete (StabilityTracker, with injected times) and which folders
of a dock are camera mounts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bwc.ingest.docks import StabilityTracker, is_camera_mount, list_mounts, usb_serial

pytestmark = pytest.mark.unit

WALL = 1_800_000_000.0  # "now" on the wall clock (seconds)
MONO = 5_000.0  # "now" on the monotonic clock
KEY = (1, b"DCIM/100MEDIA/CLIP0001.MP4")


def ns(seconds: float) -> int:
    return int(seconds * 1e9)


# ------------------------------------------------------------------------------ stability


def test_old_mtime_is_ready_at_once() -> None:
    t = StabilityTracker(5.0)
    assert t.ready(KEY, 1000, ns(WALL - 3600), WALL, MONO)
    assert t.ready((1, b"b"), 1000, ns(WALL - 5.0), WALL, MONO)  # exactly the window


def test_recent_file_waits_for_the_window() -> None:
    t = StabilityTracker(5.0)
    mtime = ns(WALL - 1)
    assert not t.ready(KEY, 1000, mtime, WALL, MONO)
    # unchanged, but not for long enough (wall stays put: only the monotonic window counts)
    assert not t.ready(KEY, 1000, mtime, WALL - 1 + 1.0, MONO + 3.0)
    assert not t.ready(KEY, 1000, mtime, WALL - 1 + 1.0, MONO + 4.9)
    assert t.ready(KEY, 1000, mtime, WALL - 1 + 1.0, MONO + 5.0)


def test_wall_clock_catching_up_makes_it_ready() -> None:
    t = StabilityTracker(5.0)
    mtime = ns(WALL)
    assert not t.ready(KEY, 1000, mtime, WALL, MONO)
    assert not t.ready(KEY, 1000, mtime, WALL + 4.0, MONO + 4.0)
    assert t.ready(KEY, 1000, mtime, WALL + 5.0, MONO + 5.0)


def test_changing_size_is_not_ready() -> None:
    t = StabilityTracker(2.0)
    for i in range(20):  # written to every 0.5 s; its mtime always "now"
        now = i * 0.5
        assert not t.ready(KEY, 1000 + 100 * i, ns(WALL + now), WALL + now, MONO + now)
    # then it stops growing
    last = ns(WALL + 9.5)
    assert not t.ready(KEY, 2900, last, WALL + 10.0, MONO + 10.0)
    assert not t.ready(KEY, 2900, last, WALL + 11.0, MONO + 11.0)
    assert t.ready(KEY, 2900, last, WALL + 11.5, MONO + 11.5)


def test_changing_mtime_with_same_size_restarts_the_window() -> None:
    t = StabilityTracker(3.0)
    future = WALL + 8 * 3600  # a FAT camera's local time read as UTC: mtime in the future
    assert not t.ready(KEY, 1000, ns(future), WALL, MONO)
    assert not t.ready(KEY, 1000, ns(future + 1), WALL + 2, MONO + 2)  # rewritten in place
    assert not t.ready(KEY, 1000, ns(future + 1), WALL + 4, MONO + 4)
    assert t.ready(KEY, 1000, ns(future + 1), WALL + 5, MONO + 5)


def test_future_mtime_is_ready_once_unchanged_for_the_window() -> None:
    t = StabilityTracker(5.0)
    mtime = ns(WALL + 3600)
    assert not t.ready(KEY, 10, mtime, WALL, MONO)
    assert not t.ready(KEY, 10, mtime, WALL + 4.99, MONO + 4.99)
    assert t.ready(KEY, 10, mtime, WALL + 5, MONO + 5)


def test_files_are_tracked_separately() -> None:
    t = StabilityTracker(5.0)
    a, b = (1, b"a"), (1, b"b")
    assert not t.ready(a, 1, ns(WALL), WALL, MONO)
    assert not t.ready(b, 1, ns(WALL), WALL, MONO + 4)
    assert t.ready(a, 1, ns(WALL), WALL, MONO + 5)
    assert not t.ready(b, 1, ns(WALL), WALL, MONO + 5)
    assert t.ready(b, 1, ns(WALL), WALL, MONO + 9)


def test_forget_session_restarts_its_windows() -> None:
    t = StabilityTracker(5.0)
    s1, s2 = (1, b"x"), (2, b"x")
    assert not t.ready(s1, 1, ns(WALL), WALL, MONO)
    assert not t.ready(s2, 1, ns(WALL), WALL, MONO)
    t.forget_session(1)
    assert not t.ready(s1, 1, ns(WALL), WALL, MONO + 5)  # seen afresh: a new window
    assert t.ready(s2, 1, ns(WALL), WALL, MONO + 5)
    assert t.ready(s1, 1, ns(WALL), WALL, MONO + 10)


def test_zero_window_is_ready_at_once() -> None:
    t = StabilityTracker(0.0)
    assert t.ready(KEY, 0, ns(WALL), WALL, MONO)


# ------------------------------------------------------------------------------ mounts


def mkcam(path: Path, *files: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for f in files:
        p = path / f
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return path


def test_is_camera_mount(tmp_path: Path) -> None:
    b = os.fsencode
    assert is_camera_mount(b(mkcam(tmp_path / "a", "CLIP0001.MP4")))
    assert is_camera_mount(b(mkcam(tmp_path / "b", "DCIM/100MEDIA/x.MP4")))
    assert is_camera_mount(b(mkcam(tmp_path / "c", "ID.TXT")))
    (tmp_path / "d" / "DCIM").mkdir(parents=True)  # an empty DCIM folder is a marker too
    assert is_camera_mount(b(tmp_path / "d"))
    # a dock root: only folders, none of them DCIM
    assert not is_camera_mount(b(mkcam(tmp_path / "dock", "cam1/CLIP.MP4", "cam2/DCIM/x.MP4")))
    (tmp_path / "empty").mkdir()
    assert not is_camera_mount(b(tmp_path / "empty"))
    assert not is_camera_mount(b(tmp_path / "missing"))


def test_list_mounts_of_a_dock_root(tmp_path: Path) -> None:
    dock = tmp_path / "dock"
    mkcam(dock / "SERIAL-B", "DCIM/100MEDIA/x.MP4")
    mkcam(dock / "SERIAL-A", "CLIP0001.MP4")
    (dock / "SERIAL-C").mkdir()  # mounted, nothing on it yet: still a camera
    mkcam(dock / ".hidden", "x")  # dot folders are not cameras
    got = list_mounts(os.fsencode(dock))
    assert got == [
        os.fsencode(os.path.realpath(dock / n)) for n in ("SERIAL-A", "SERIAL-B", "SERIAL-C")
    ]


def test_list_mounts_of_a_dock_that_is_a_camera(tmp_path: Path) -> None:
    cam = mkcam(tmp_path / "cam", "DCIM/100MEDIA/x.MP4", "ID.TXT")
    assert list_mounts(os.fsencode(cam)) == [os.fsencode(os.path.realpath(cam))]


def test_list_mounts_through_a_symlinked_dock(tmp_path: Path) -> None:
    real = tmp_path / "media" / "bwc"
    mkcam(real / "cam1", "x.MP4")
    link = tmp_path / "dock-link"
    link.symlink_to(real)
    assert list_mounts(os.fsencode(link)) == [os.fsencode(os.path.realpath(real / "cam1"))]


def test_list_mounts_of_nothing(tmp_path: Path) -> None:
    assert list_mounts(os.fsencode(tmp_path / "missing")) == []
    (tmp_path / "empty").mkdir()
    assert list_mounts(os.fsencode(tmp_path / "empty")) == []
    f = tmp_path / "file"
    f.write_bytes(b"x")
    assert list_mounts(os.fsencode(f)) == []


def test_non_utf8_mount_names(tmp_path: Path) -> None:
    dock = tmp_path / "dock"
    dock.mkdir()
    cam = os.path.join(os.fsencode(dock), b"\xb7\xa8-cam")
    os.mkdir(cam)
    with open(os.path.join(cam, b"x.MP4"), "wb") as f:
        f.write(b"x")
    assert list_mounts(os.fsencode(dock)) == [os.path.realpath(cam)]


def test_usb_serial_of_a_plain_folder(tmp_path: Path) -> None:
    assert usb_serial(os.fsencode(tmp_path)) is None
    assert usb_serial(os.fsencode(tmp_path / "missing")) is None
