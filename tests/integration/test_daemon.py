"""`bwc daemon` as a real process on a temp dock: cameras "dock" by a mount folder appearing
(renamed into the dock root with its files already there, as a USB mount does), filled with
ffmpeg clips named per each built-in recorder profile. What is committed, how it is
attributed and timed, dock sessions and their custody events, re-docks, the ledger, bad files,
a store that goes away, wiping, and a clean SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result, make_clip
from tests.integration.daemon_util import (
    Catalog,
    DaemonProcess,
    Job,
    StartDaemon,
    age_tree,
    set_daemon_config,
    sha256_file,
    tree_snapshot,
    wait_until,
    write_random,
)

pytestmark = pytest.mark.integration

Runner = Callable[..., Result]


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Distinct clips (different tones, so different bytes) of known durations."""
    d = tmp_path_factory.mktemp("daemon-clips")
    spec = {
        "cn1": ("cn1.mp4", 2.0, 300),
        "cn2": ("cn2.mp4", 1.0, 350),
        "dcim": ("dcim.mp4", 1.5, 400),
        "axis1": ("axis1.mkv", 1.0, 450),
        "axis2": ("axis2.mp4", 1.0, 500),
        "ledger1": ("ledger1.mp4", 1.0, 550),
        "ledger2": ("ledger2.mp4", 1.0, 600),
        "unattr": ("unattr.mp4", 1.0, 650),
        "second": ("second.mp4", 1.0, 700),
        "misc1": ("misc1.mp4", 1.0, 750),
        "misc2": ("misc2.mp4", 1.0, 800),
    }
    return {k: make_clip(d / name, seconds=s, tone=t) for k, (name, s, t) in spec.items()}


@pytest.fixture
def dock(tmp_path: Path) -> Path:
    d = tmp_path / "dock"
    d.mkdir()
    return d


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    """Where cameras are built (and go when undocked): same file system as the dock, so a
    camera appears in and leaves the dock by one rename, files and all."""
    d = tmp_path / "staging"
    d.mkdir()
    return d


@pytest.fixture
def daemon_home(home: Path) -> Path:
    set_daemon_config(home, stable_seconds=0.5, rescan_seconds=0.2, retry_max_seconds=1.0)
    return home


# ------------------------------------------------------------------------------ helpers


def put(root: Path, rel: str | bytes, src: Path | bytes) -> Path:
    path = Path(os.fsdecode(os.path.join(os.fsencode(root), os.fsencode(rel))))
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(src, Path):
        shutil.copyfile(src, path)
    else:
        path.write_bytes(src)
    return path


def dock_camera(staging: Path, dock: Path, name: str) -> Path:
    """Move a camera built under staging into the dock (a mount appearing)."""
    target = dock / name
    os.rename(staging / name, target)
    return target


def undock_camera(dock: Path, staging: Path, name: str) -> None:
    os.rename(dock / name, staging / name)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def list_items(bwc: Runner, *args: str) -> dict[str, dict[str, Any]]:
    r = bwc("list", "--json", *args)
    assert r.code == 0, r.err
    return {i["path"]: i for i in json.loads(r.out)}


def events(bwc: Runner, kind: str | None = None) -> list[dict[str, Any]]:
    r = bwc("log", "events", "--json")
    assert r.code == 0, r.err
    evs: list[dict[str, Any]] = json.loads(r.out)
    return [e for e in evs if kind is None or e["kind"] == kind]


def status(bwc: Runner) -> dict[str, Any]:
    r = bwc("status", "--json")
    assert r.code == 0, r.err
    data: dict[str, Any] = json.loads(r.out)
    return data


def assert_verifies(bwc: Runner, record: bool = True) -> None:
    args = ["verify", "--all"] + ([] if record else ["--no-record"])
    r = bwc(*args)
    assert r.code == 0, r.out + r.err
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err


def session_of(cat: Catalog, mount: Path) -> dict[str, Any] | None:
    real = os.fsencode(os.path.realpath(mount))
    open_ = [s for s in cat.sessions() if s["mount"] == real and s["closed_at"] is None]
    return open_[-1] if open_ else None


def settled(cat: Catalog, files: int, session: int | None = None) -> bool:
    """``files`` jobs exist (for the session) and none is still being worked on."""
    jobs = [j for j in cat.jobs() if session is None or j.session_id == session]
    return len(jobs) >= files and cat.active() == 0


def wait_session_settled(
    cat: Catalog, mount: Path, files: int, daemon: DaemonProcess, timeout: float = 30.0
) -> dict[str, Any]:
    sess: dict[str, Any] = wait_until(
        lambda: session_of(cat, mount), 5.0, f"a dock session for {mount}", daemon=daemon
    )
    wait_until(
        lambda: settled(cat, files, sess["id"]),
        timeout,
        f"{files} files of {mount.name} to be taken",
        daemon=daemon,
        detail=lambda: "\n".join(str(j) for j in cat.jobs()),
    )
    return sess


def duration_s(item: dict[str, Any]) -> float:
    return (utc(item["recorded_end"]) - utc(item["recorded_start"])).total_seconds()


# ------------------------------------------------------------------------------ profiles


def test_dock_cameras_of_each_profile(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    # cn-standard: DEVICE_OFFICER_YYYYMMDDhhmmss_SEQ anywhere under the mount (Shanghai time)
    put(staging / "cam-cn", "DCIM/100MEDIA/DSJ0042_110023_20261015093012_0001.MP4", clips["cn1"])
    put(staging / "cam-cn", "DSJ0042_110023_20261015094500_0002.MP4", clips["cn2"])
    put(staging / "cam-cn", "GPS/GPS0001.csv", b"time,lat,lon\n2026-10-15T01:31:00Z,31.2,121.4\n")
    # dcim: DCIM/<folder>/YYYYMMDD_hhmmss_SEQ with ID.TXT (Shanghai time)
    put(staging / "cam-dcim", "ID.TXT", b"device=DSJ0100\r\nofficer=220044\r\n")
    put(staging / "cam-dcim", "DCIM/100MEDIA/20261015_101500_0001.MP4", clips["dcim"])
    # axis: <User>_<Serial>_<YYYYMMDDTHHMMSSZ>/<date>_<time>_<id>.mkv|mp4 (UTC)
    axis_dir = "110099_AXW1234_20261015T020000Z"
    put(staging / "cam-axis", f"{axis_dir}/20261015_020000_REC42.mkv", clips["axis1"])
    put(staging / "cam-axis", f"{axis_dir}/20261015_021000_REC43.mp4", clips["axis2"])
    age_tree(staging)
    before = {name: tree_snapshot(staging / name) for name in ("cam-cn", "cam-dcim", "cam-axis")}

    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    wait_until(lambda: (daemon_home / "daemon.json").exists(), 15, "the first heartbeat", daemon=d)
    mounts = {name: dock_camera(staging, dock, name) for name in before}
    sessions = {
        "cam-cn": wait_session_settled(cat, mounts["cam-cn"], 3, d),
        "cam-dcim": wait_session_settled(cat, mounts["cam-dcim"], 2, d),
        "cam-axis": wait_session_settled(cat, mounts["cam-axis"], 2, d),
    }
    assert cat.states() == {"released": 7}, cat.jobs()
    assert cat.item_count() == 7

    items = list_items(bwc)
    expect = {
        # path: device, officer, recorded start (UTC), duration (s)
        "DCIM/100MEDIA/DSJ0042_110023_20261015093012_0001.MP4": (
            "DSJ0042",
            "110023",
            "2026-10-15T01:30:12+00:00",
            2.0,
        ),
        "DSJ0042_110023_20261015094500_0002.MP4": (
            "DSJ0042",
            "110023",
            "2026-10-15T01:45:00+00:00",
            1.0,
        ),
        "DCIM/100MEDIA/20261015_101500_0001.MP4": (
            "DSJ0100",
            "220044",
            "2026-10-15T02:15:00+00:00",
            1.5,
        ),
        f"{axis_dir}/20261015_020000_REC42.mkv": (
            "AXW1234",
            "110099",
            "2026-10-15T02:00:00+00:00",
            1.0,
        ),
        f"{axis_dir}/20261015_021000_REC43.mp4": (
            "AXW1234",
            "110099",
            "2026-10-15T02:10:00+00:00",
            1.0,
        ),
    }
    profiles = {
        "DCIM/100MEDIA/DSJ0042_110023_20261015093012_0001.MP4": "cn-standard",
        "DSJ0042_110023_20261015094500_0002.MP4": "cn-standard",
        "DCIM/100MEDIA/20261015_101500_0001.MP4": "dcim",
        f"{axis_dir}/20261015_020000_REC42.mkv": "axis",
        f"{axis_dir}/20261015_021000_REC43.mp4": "axis",
    }
    for path, (device, officer, start, seconds) in expect.items():
        item = items[path]
        assert (item["device_id"], item["officer_id"]) == (device, officer), item
        assert utc(item["recorded_start"]) == datetime.fromisoformat(start), item
        assert abs(duration_s(item) - seconds) < 0.2, item
        m = cat.manifest(item["sha256"])
        assert m["profile"] == profiles[path], m
        assert m["start_source"] == "profile"
        # end = start + the container's duration, exactly
        assert duration_s(item) * 1000 == pytest.approx(m["media"]["duration_ms"], abs=1)
        assert "unattributed" not in item["flags"] and "not-media" not in item["flags"]
    # the id file and the GPS log are evidence too
    assert items["ID.TXT"]["device_id"] == "DSJ0100"
    assert items["ID.TXT"]["officer_id"] == "220044"
    assert "not-media" in items["ID.TXT"]["flags"]
    assert "not-media" in items["GPS/GPS0001.csv"]["flags"]

    # dock sessions: in the catalog, in `bwc status`, as custody events
    st = status(bwc)
    assert st["daemon_running"] is True
    by_mount = {s["mount"]: s for s in st["sessions"]}
    for mount in mounts.values():
        assert os.path.realpath(mount) in by_mount, st["sessions"]
    assert by_mount[os.path.realpath(mounts["cam-cn"])]["device_id"] == "DSJ0042"
    assert by_mount[os.path.realpath(mounts["cam-dcim"])]["device_id"] == "DSJ0100"
    assert by_mount[os.path.realpath(mounts["cam-axis"])]["device_id"] == "AXW1234"
    assert st["backlog"] == {"released": 7}
    assert st["failed"] == [] and st["last_error"] is None and st["store"]["ok"] is True
    docked = {e["details"]["mount"]: e for e in events(bwc, "docked")}
    for name, mount in mounts.items():
        ev = docked[os.path.realpath(mount)]
        assert ev["details"]["dock_session"] == sessions[name]["id"]

    # undock: an `undocked` event with the session's counts, within a few seconds
    undock_camera(dock, staging, "cam-axis")
    t0 = time.monotonic()
    wait_until(lambda: cat.count_events("undocked") == 1, 5.0, "the undocked event", daemon=d)
    assert time.monotonic() - t0 < 5.0
    (ev,) = events(bwc, "undocked")
    assert ev["details"]["dock_session"] == sessions["cam-axis"]["id"]
    assert ev["details"]["committed"] == 2
    assert ev["details"]["failed"] == 0 and ev["details"]["in_progress"] == 0
    st = status(bwc)
    assert os.path.realpath(mounts["cam-axis"]) not in {s["mount"] for s in st["sessions"]}

    # SIGTERM: exit 0, and a last checkpoint covers the whole log
    rc = d.terminate()
    assert rc == 0, d.log_tail()
    assert "stopped" in d.log()
    assert cat.latest_checkpoint_size() == cat.log_size()
    heartbeat = json.loads((daemon_home / "daemon.json").read_text())
    assert heartbeat["stopped"] is True
    assert status(bwc)["daemon_running"] is False

    # the sources were never touched (wipe_after_verify is off by default)
    assert tree_snapshot(staging / "cam-axis") == before["cam-axis"]
    for name in ("cam-cn", "cam-dcim"):
        assert tree_snapshot(dock / name) == before[name]
    assert_verifies(bwc)


def test_second_camera_noticed_within_5s_with_default_timing(
    bwc: Runner,
    home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    """Default stable_seconds (5) and rescan_seconds (2): a camera docked after its shift
    (files older than the window) is noticed within 5 s and not made to wait for the window."""
    put(staging / "cam-1", "DSJ0001_100001_20261015080000_0001.MP4", clips["misc1"])
    put(staging / "cam-2", "DSJ0002_100002_20261015080000_0001.MP4", clips["second"])
    put(staging / "cam-2", "DSJ0002_100002_20261015081000_0002.MP4", clips["misc2"])
    age_tree(staging)
    d = start_daemon(home, dock)
    cat = Catalog(home)
    wait_until(lambda: (home / "daemon.json").exists(), 15, "the first heartbeat", daemon=d)
    cam1 = dock_camera(staging, dock, "cam-1")
    wait_session_settled(cat, cam1, 1, d)
    time.sleep(1.0)  # well into the rescan period

    cam2 = dock_camera(staging, dock, "cam-2")
    t0 = time.monotonic()
    wait_until(lambda: session_of(cat, cam2), 5.0, "the second camera's dock session", daemon=d)
    noticed = time.monotonic() - t0
    wait_until(lambda: settled(cat, 3), 10.0, "the second camera's files", daemon=d)
    committed = time.monotonic() - t0
    assert noticed < 5.0
    # stable already (old mtimes): no wait for the 5 s window
    assert committed < 5.0, f"noticed after {noticed:.2f}s, committed after {committed:.2f}s"
    assert cat.item_count() == 3
    assert d.terminate() == 0


def test_redock_same_files_is_seen_again(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    put(staging / "cam", "DSJ0042_110023_20261015093012_0001.MP4", clips["cn1"])
    put(staging / "cam", "DSJ0042_110023_20261015094500_0002.MP4", clips["cn2"])
    put(staging / "cam", "notes.txt", b"shift notes\n")
    age_tree(staging)
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    cam = dock_camera(staging, dock, "cam")
    first = wait_session_settled(cat, cam, 3, d)
    items = set(cat.items())
    assert len(items) == 3

    undock_camera(dock, staging, "cam")
    wait_until(lambda: cat.count_events("undocked") == 1, 5.0, "undocked", daemon=d)
    cam = dock_camera(staging, dock, "cam")
    second = wait_until(
        lambda: (s := session_of(cat, cam)) and s["id"] != first["id"] and s,
        5.0,
        "a new dock session",
        daemon=d,
    )
    wait_until(lambda: settled(cat, 3, second["id"]), 30, "the re-docked files", daemon=d)
    assert set(cat.items()) == items, "a re-dock must not create items"
    jobs = [j for j in cat.jobs() if j.session_id == second["id"]]
    assert {(j.state, j.outcome) for j in jobs} == {("released", "seen-again")}
    assert {j.sha256 for j in jobs} == items
    seen = events(bwc, "seen-again")
    assert sorted(e["item"] for e in seen) == sorted(items)
    assert all(e["details"]["dock_session"] == second["id"] for e in seen)
    assert cat.count_events("docked") == 2
    assert d.terminate() == 0
    assert_verifies(bwc)


def test_same_bytes_twice_on_one_camera_at_once(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    start_daemon: StartDaemon,
) -> None:
    """Two files with the same bytes taken by the two workers at the same time: one item
    (the other a sighting), and the item still verifies: the store's manifest must be the
    one the catalog committed."""
    data = os.urandom(30 << 20)
    put(staging / "cam", "DCIM/100MEDIA/A0001.BIN", data)
    put(staging / "cam", "DCIM/101MEDIA/B0001.BIN", data)
    age_tree(staging)
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    wait_session_settled(cat, dock_camera(staging, dock, "cam"), 2, d)
    assert cat.item_count() == 1
    assert sorted(j.outcome or "" for j in cat.jobs()) == ["ingested", "seen-again"]
    assert cat.count_events("ingested") == 1 and cat.count_events("seen-again") == 1
    assert d.terminate() == 0
    assert_verifies(bwc, record=False)


# ------------------------------------------------------------------------------ attribution


def test_ledger_attribution_and_unattributed(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    # DSJ0200 was held by 330055 from 08:00 to 20:00 local time (00:00-12:00 UTC)
    r = bwc(
        "devices",
        "assign",
        "330055",
        "DSJ0200",
        "--from",
        "2026-10-15T08:00:00",
        "--to",
        "2026-10-15T20:00:00",
    )
    assert r.code == 0, r.err
    in_shift = "DCIM/100MEDIA/20261015_120000_0001.MP4"  # 04:00 UTC: held by 330055
    after_shift = "DCIM/100MEDIA/20261015_210000_0002.MP4"  # 13:00 UTC: nobody
    put(staging / "cam-ledger", "ID.TXT", b"device=DSJ0200\n")
    put(staging / "cam-ledger", in_shift, clips["ledger1"])
    put(staging / "cam-ledger", after_shift, clips["ledger2"])
    no_ledger = "DCIM/100MEDIA/20261015_130000_0001.MP4"
    put(staging / "cam-none", "ID.TXT", b"device=DSJ0300\n")
    put(staging / "cam-none", no_ledger, clips["unattr"])
    age_tree(staging)

    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    wait_session_settled(cat, dock_camera(staging, dock, "cam-ledger"), 3, d)
    wait_session_settled(cat, dock_camera(staging, dock, "cam-none"), 2, d)
    assert d.terminate() == 0

    r = bwc("list", "--json")
    items = json.loads(r.out)
    by_path = {(i["device_id"], i["path"]): i for i in items}
    held = by_path[("DSJ0200", in_shift)]
    assert held["officer_id"] == "330055"
    m = cat.manifest(held["sha256"])
    assert m["officer_source"] == "ledger" and m["device_source"] == "id-file"
    assert "unattributed" not in held["flags"]
    late = by_path[("DSJ0200", after_shift)]
    assert late["officer_id"] is None and "unattributed" in late["flags"]
    orphan = by_path[("DSJ0300", no_ledger)]
    assert orphan["officer_id"] is None and "unattributed" in orphan["flags"]

    unattributed = {i["sha256"] for i in json.loads(bwc("list", "--unattributed", "--json").out)}
    assert orphan["sha256"] in unattributed and late["sha256"] in unattributed
    assert held["sha256"] not in unattributed

    r = bwc(
        "attribute",
        orphan["sha256"][:12],
        "--officer",
        "440066",
        "--reason",
        "camera issued to 440066 per the paper ledger",
    )
    assert r.code == 0, r.out + r.err
    unattributed = {i["sha256"] for i in json.loads(bwc("list", "--unattributed", "--json").out)}
    assert orphan["sha256"] not in unattributed
    assert list_items(bwc, "--officer", "440066")[no_ledger]["sha256"] == orphan["sha256"]
    (ev,) = events(bwc, "attributed")
    assert ev["item"] == orphan["sha256"]
    assert ev["details"]["officer_id"] == "440066"
    assert ev["details"]["reason"] == "camera issued to 440066 per the paper ledger"
    assert_verifies(bwc)


# ------------------------------------------------------------------------------ edge cases


def test_growing_file_taken_only_when_stable(
    bwc: Runner,
    home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    set_daemon_config(home, stable_seconds=1.0, rescan_seconds=0.2)
    put(staging / "cam", "DSJ0042_110023_20261015093012_0001.MP4", clips["cn1"])
    age_tree(staging)
    d = start_daemon(home, dock)
    cat = Catalog(home)
    cam = dock_camera(staging, dock, "cam")
    wait_session_settled(cat, cam, 1, d)

    growing = cam / "DCIM" / "GROW0001.BIN"
    growing.parent.mkdir()
    chunks = [os.urandom(4096) for _ in range(20)]
    done = threading.Event()

    def writer() -> None:
        with open(growing, "ab") as f:
            for chunk in chunks:
                f.write(chunk)
                f.flush()
                time.sleep(0.2)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    seen_while_growing = []
    while not done.is_set():
        seen_while_growing += [j for j in cat.jobs() if j.rel == b"DCIM/GROW0001.BIN"]
        time.sleep(0.05)
    t.join()
    assert seen_while_growing == [], "a job was created for a file still being written"
    final = sha256_file(growing)
    wait_until(lambda: settled(cat, 2), 15, "the grown file", daemon=d)
    jobs = [j for j in cat.jobs() if j.rel == b"DCIM/GROW0001.BIN"]
    assert [(j.state, j.sha256, j.size) for j in jobs] == [("released", final, 20 * 4096)]
    assert [sha for sha, i in cat.items().items() if i["path"] == "DCIM/GROW0001.BIN"] == [final]
    assert cat.item_count() == 2
    assert d.terminate() == 0
    assert_verifies(bwc, record=False)


def test_camera_removed_mid_copy_resumes_when_back(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    big = write_random(staging / "cam" / "DCIM" / "100MEDIA" / "BIG00001.MP4", 256 << 20, 7)
    big_sha = sha256_file(big)
    put(staging / "cam", "DSJ0042_110023_20261015093012_0001.MP4", clips["cn1"])
    age_tree(staging)
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    spool = daemon_home / "spool" / "jobs"
    wait_until(lambda: (daemon_home / "daemon.json").exists(), 15, "the first heartbeat", daemon=d)

    cam = dock_camera(staging, dock, "cam")

    def copying() -> int | None:
        for p in spool.glob("*.part") if spool.is_dir() else []:
            try:
                size = p.stat().st_size
            except FileNotFoundError:
                continue
            if 0 < size < (256 << 20) - (32 << 20):
                return size
        return None

    partial = wait_until(copying, 20, "the big file's copy to start", daemon=d, interval=0.005)
    undock_camera(dock, staging, "cam")  # the camera is pulled out mid-copy
    wait_until(lambda: cat.count_events("undocked") == 1, 5.0, "undocked", daemon=d)

    def big_jobs() -> list[Job]:
        return [j for j in cat.jobs() if j.rel == b"DCIM/100MEDIA/BIG00001.MP4"]

    # the interrupted copy is given up (the camera brings it back), never committed
    wait_until(
        lambda: all(j.state == "abandoned" for j in big_jobs()),
        10,
        "the interrupted job to be abandoned",
        daemon=d,
        detail=lambda: str(big_jobs()),
    )
    assert big_sha not in cat.items(), f"committed after the camera left ({partial} B copied)"
    # the other clip's job may still be finishing its commit on a loaded machine: every job
    # must end, none may be left active
    wait_until(
        lambda: cat.active() == 0,
        10,
        "every job to end",
        daemon=d,
        detail=lambda: str(cat.jobs()),
    )
    assert not list(spool.glob("*.part")), "the partial spool copy was left behind"
    assert d.running

    cam = dock_camera(staging, dock, "cam")
    wait_until(
        lambda: big_sha in cat.items() and cat.active() == 0,
        60,
        "the big file after the re-dock",
        daemon=d,
        detail=lambda: str(cat.jobs()),
    )
    assert [j.state for j in big_jobs()] == ["abandoned", "released"]
    assert sha256_file(cam / "DCIM" / "100MEDIA" / "BIG00001.MP4") == big_sha
    assert cat.item_count() == 2
    assert d.terminate() == 0
    assert_verifies(bwc, record=False)


def test_bad_files_on_a_camera(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    tmp_path: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    cam = staging / "cam"
    outside = tmp_path / "outside" / "secret.txt"
    outside.parent.mkdir()
    outside.write_bytes(b"not on the camera\n")
    good = "DCIM/100MEDIA/DSJ0042_110023_20261015110000_0001.MP4"
    corrupt = "DCIM/100MEDIA/DSJ0042_110023_20261015110500_0002.MP4"
    empty = "DCIM/100MEDIA/EMPTY0001.MP4"
    bad_name = b"DCIM/100MEDIA/\xd6\xb4\xb7\xa8_0001.MP4"  # GBK bytes: not UTF-8
    link = "DCIM/100MEDIA/LINK0001.MP4"
    put(cam, good, clips["misc1"])
    put(cam, corrupt, b"\x00\x00\x00\x18ftypmp42" + os.urandom(50_000))
    put(cam, empty, b"")
    put(cam, bad_name, os.urandom(1000))
    os.symlink(outside, cam / link)
    junk = [
        "System Volume Information/IndexerVolumeGuid",
        ".Trashes/501/x.MP4",
        "DCIM/Thumbs.db",
        "DCIM/100MEDIA/._DSJ0042_110023_20261015110000_0001.MP4",
        ".DS_Store",
    ]
    for j in junk:
        put(cam, j, b"junk")
    age_tree(staging)

    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    mount = dock_camera(staging, dock, "cam")
    sess = wait_session_settled(cat, mount, 4 + 1 + len(junk), d)
    assert cat.states() == {"released": 4, "failed": 1, "ignored": 5}, cat.jobs()

    items = {i["path"]: i for i in json.loads(bwc("list", "--json").out)}
    assert len(items) == 4
    assert items[good]["flags"] == []
    c = items[corrupt]
    assert "not-media" in c["flags"]
    assert (c["device_id"], c["officer_id"]) == ("DSJ0042", "110023")
    assert c["recorded_start"] == "2026-10-15T03:05:00Z" and c["recorded_end"] is None
    assert "zero-byte" in items[empty]["flags"] and items[empty]["size"] == 0
    encoded = "DCIM/100MEDIA/%D6%B4%B7%A8_0001.MP4"
    assert "non-utf8-name" in items[encoded]["flags"]
    m = cat.manifest(items[encoded]["sha256"])
    assert m["path_encoding"] == "percent-encoded-bytes"
    assert sha256_file(outside) not in cat.items()

    jobs = cat.jobs()
    (failed,) = [j for j in jobs if j.state == "failed"]
    assert failed.rel == link.encode() and "outside" in (failed.reason or "")
    ignored = sorted(j.rel.decode() for j in jobs if j.state == "ignored")
    assert ignored == sorted(
        [
            "System Volume Information",
            ".Trashes",
            "DCIM/Thumbs.db",
            "DCIM/100MEDIA/._DSJ0042_110023_20261015110000_0001.MP4",
            ".DS_Store",
        ]
    )
    assert all("ignored by pattern" in (j.reason or "") for j in jobs if j.state == "ignored")
    st = status(bwc)
    assert st["backlog"] == {"released": 4, "failed": 1, "ignored": 5}
    assert [(f["path"], "outside" in f["reason"]) for f in st["failed"]] == [(link, True)]

    undock_camera(dock, staging, "cam")
    wait_until(lambda: cat.count_events("undocked") == 1, 5.0, "undocked", daemon=d)
    (ev,) = events(bwc, "undocked")
    assert ev["details"]["dock_session"] == sess["id"]
    assert (ev["details"]["committed"], ev["details"]["failed"], ev["details"]["ignored"]) == (
        4,
        1,
        5,
    )
    assert d.running
    assert d.terminate() == 0
    assert_verifies(bwc, record=False)


def test_camera_mount_with_a_non_utf8_name(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    start_daemon: StartDaemon,
) -> None:
    """A mount folder whose name is not UTF-8 (e.g. a GBK volume label): docked, its files
    taken; the daemon neither crashes nor stalls."""
    name = b"\xd6\xb4\xb7\xa8-cam"  # GBK
    cam = os.path.join(os.fsencode(staging), name)
    os.makedirs(os.path.join(cam, b"DCIM"))
    with open(os.path.join(cam, b"DCIM", b"a.bin"), "wb") as f:
        f.write(os.urandom(1000))
    age_tree(staging)
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    wait_until(lambda: (daemon_home / "daemon.json").exists(), 15, "the first heartbeat", daemon=d)
    os.rename(cam, os.path.join(os.fsencode(dock), name))
    wait_until(lambda: cat.count_events("docked") == 1, 5, "the docked event", daemon=d)
    wait_until(lambda: settled(cat, 1) and cat.item_count() == 1, 15, "its file", daemon=d)
    assert d.terminate() == 0
    assert_verifies(bwc, record=False)


def test_sighting_under_a_non_utf8_name(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    start_daemon: StartDaemon,
) -> None:
    """Bytes already in the store, seen again under a name that is not UTF-8: a `seen-again`
    event (the name recorded losslessly), the job ends, nothing loops."""
    data = os.urandom(1000)
    put(staging / "cam-a", "DCIM/a.bin", data)
    put(staging / "cam-b", b"DCIM/\xc4\xe3.bin", data)
    age_tree(staging)
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    wait_session_settled(cat, dock_camera(staging, dock, "cam-a"), 1, d)
    mount = dock_camera(staging, dock, "cam-b")
    wait_session_settled(cat, mount, 1, d, timeout=10)
    assert [(j.state, j.outcome) for j in cat.jobs()] == [
        ("released", "ingested"),
        ("released", "seen-again"),
    ]
    assert cat.count_events("seen-again") == 1
    assert "unexpected error" not in d.log()
    assert d.terminate() == 0
    assert_verifies(bwc, record=False)


MANY = 5000


def _many_files(cam: Path, n: int = MANY) -> None:
    for i in range(n):
        folder = cam / "DATA" / f"{i // 500:03d}"
        if i % 500 == 0:
            folder.mkdir(parents=True)
        (folder / f"LOG{i:05d}.TXT").write_bytes(f"record {i}\n".encode() * (1 + i % 7))
    age_tree(cam)


def test_dock_with_5000_files_is_listed_within_5s(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    start_daemon: StartDaemon,
) -> None:
    """Noticed and every file listed (a job each) within 5 s; SIGTERM with a backlog of
    thousands parks it promptly, and a restart takes up where it stopped."""
    _many_files(staging / "cam")
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    wait_until(lambda: (daemon_home / "daemon.json").exists(), 15, "the first heartbeat", daemon=d)
    dock_camera(staging, dock, "cam")
    t0 = time.monotonic()
    wait_until(lambda: cat.jobs() or None, 5.0, "the first job", daemon=d, interval=0.02)
    first = time.monotonic() - t0
    wait_until(lambda: len(cat.jobs()) >= MANY, 5.0 - first, "every file listed", daemon=d)
    listed = time.monotonic() - t0
    assert listed < 5.0, f"first job after {first:.2f}s, all listed after {listed:.2f}s"
    jobs = cat.jobs()
    assert len(jobs) == MANY and len({j.rel for j in jobs}) == MANY
    assert sum(status(bwc)["backlog"].values()) == MANY

    t1 = time.monotonic()
    assert d.terminate(timeout=15) == 0, d.log_tail()
    assert time.monotonic() - t1 < 10.0, "SIGTERM must not wait for the backlog"
    done_before = cat.states().get("released", 0)
    assert cat.states().get("failed", 0) == 0
    assert cat.latest_checkpoint_size() == cat.log_size()

    d = start_daemon(daemon_home, dock)
    wait_until(
        lambda: cat.states().get("released", 0) > done_before + 20,
        30,
        "work to resume after the restart",
        daemon=d,
    )
    assert len(cat.jobs()) == MANY, "a restart must not list the files again"
    assert d.terminate(timeout=15) == 0


# 1,500 in `make test`; `make torture` docks 5,000 (BWC_DOCK_FILES), as bench/dock.py does
COMMIT_MANY = int(os.environ.get("BWC_DOCK_FILES", "1500"))


@pytest.mark.slow
@pytest.mark.scale
def test_dock_with_many_files_all_committed_once(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    start_daemon: StartDaemon,
) -> None:
    _many_files(staging / "cam", COMMIT_MANY)
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    wait_until(lambda: (daemon_home / "daemon.json").exists(), 15, "the first heartbeat", daemon=d)
    mount = dock_camera(staging, dock, "cam")
    t0 = time.monotonic()
    wait_until(lambda: cat.jobs() or None, 5.0, "the first job", daemon=d, interval=0.02)
    listed = time.monotonic() - t0
    wait_until(
        lambda: settled(cat, COMMIT_MANY),
        3600,
        f"{COMMIT_MANY} files",
        daemon=d,
        interval=1.0,
        detail=lambda: str(cat.states()),
    )
    took = time.monotonic() - t0
    print(f"{COMMIT_MANY} files: listed after {listed:.2f}s, all committed after {took:.1f}s")
    jobs = cat.jobs()
    assert len(jobs) == COMMIT_MANY and cat.states() == {"released": COMMIT_MANY}
    assert {j.outcome for j in jobs} == {"ingested"}
    assert len({j.rel for j in jobs}) == COMMIT_MANY
    assert len({j.sha256 for j in jobs}) == COMMIT_MANY == cat.item_count()
    assert cat.count_events("ingested") == COMMIT_MANY
    assert session_of(cat, mount) is not None
    assert d.terminate() == 0
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err


# ------------------------------------------------------------------------------ the store


def _dock_during_outage(
    bwc: Runner,
    home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
    break_store: Callable[[], None],
    mend_store: Callable[[], None],
) -> None:
    put(staging / "cam-1", "DSJ0001_100001_20261015080000_0001.MP4", clips["misc1"])
    put(staging / "cam-2", "DSJ0002_100002_20261015080000_0001.MP4", clips["misc2"])
    put(staging / "cam-2", "notes.txt", b"written during the outage\n")
    age_tree(staging)
    d = start_daemon(home, dock)
    cat = Catalog(home)
    wait_session_settled(cat, dock_camera(staging, dock, "cam-1"), 1, d)

    break_store()
    cam2 = dock_camera(staging, dock, "cam-2")
    sess = wait_until(lambda: session_of(cat, cam2), 5.0, "the dock session", daemon=d)

    def waiting() -> bool:
        jobs = [j for j in cat.jobs() if j.session_id == sess["id"]]
        done = [j for j in jobs if j.state in ("committed", "released")]
        assert not done, f"committed while the store was unreachable: {done}"
        return len(jobs) == 2 and all(j.state == "signed" and j.reason for j in jobs)

    wait_until(
        waiting,
        15,
        "files to wait in the spool (signed)",
        daemon=d,
        detail=lambda: str(cat.jobs()),
    )
    time.sleep(2.5)  # a few retries (backoff capped at 1 s)
    assert d.running, d.log_tail()
    assert cat.item_count() == 1, "nothing may be committed while the store is unreachable"
    assert all(j.state == "signed" for j in cat.jobs() if j.session_id == sess["id"])
    st = status(bwc)
    assert st["store"]["ok"] is False
    assert st["last_error"] and "store" in st["last_error"]
    assert st["backlog"].get("signed") == 2

    mend_store()
    wait_until(
        lambda: settled(cat, 3) and cat.item_count() == 3,
        20,
        "commit after the outage",
        daemon=d,
        detail=lambda: str(cat.jobs()),
    )
    assert status(bwc)["store"]["ok"] is True
    assert d.terminate() == 0
    assert not list((home / "spool" / "jobs").iterdir())
    assert_verifies(bwc)


def test_store_unreachable_files_wait_then_commit(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    """The store's mount point is there but unusable (here: a plain file where the folder
    was): nothing can be written; the daemon keeps docking, files wait (signed), retry."""
    store, away = daemon_home / "store", daemon_home / "store.away"

    def break_store() -> None:
        os.rename(store, away)
        store.write_bytes(b"")

    def mend_store() -> None:
        store.unlink()
        os.rename(away, store)

    _dock_during_outage(
        bwc, daemon_home, dock, staging, clips, start_daemon, break_store, mend_store
    )


def test_store_folder_missing_is_not_recreated(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    """The local store's folder goes away (an unmounted disk): the daemon must not write
    evidence into a fresh folder in its place; files wait until the store is back."""
    store, away = daemon_home / "store", daemon_home / "store.away"

    def break_store() -> None:
        os.rename(store, away)

    def mend_store() -> None:
        assert not store.exists(), "the missing store folder was recreated (and written to)"
        os.rename(away, store)

    _dock_during_outage(
        bwc, daemon_home, dock, staging, clips, start_daemon, break_store, mend_store
    )


# ------------------------------------------------------------------------------ wiping


def test_wipe_after_verify_deletes_only_committed_sources(
    bwc: Runner,
    daemon_home: Path,
    dock: Path,
    staging: Path,
    clips: dict[str, Path],
    start_daemon: StartDaemon,
) -> None:
    set_daemon_config(daemon_home, wipe_after_verify=True)
    put(staging / "cam", "DSJ0042_110023_20261015093012_0001.MP4", clips["cn1"])
    put(staging / "cam", "DCIM/100MEDIA/DSJ0042_110023_20261015094500_0002.MP4", clips["cn2"])
    put(staging / "cam", "GPS0001.csv", b"time,lat,lon\n")
    put(staging / "cam", "Thumbs.db", b"junk")  # ignored: never wiped
    age_tree(staging)
    before = tree_snapshot(staging / "cam")
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    mount = dock_camera(staging, dock, "cam")
    wait_session_settled(cat, mount, 4, d)
    wait_until(lambda: cat.count_events("source-wiped") == 3, 10, "source-wiped events", daemon=d)
    assert d.terminate() == 0

    left = tree_snapshot(mount)
    assert left == {b"Thumbs.db": before[b"Thumbs.db"]}
    wiped = events(bwc, "source-wiped")
    ingested = {e["item"]: e["index"] for e in events(bwc, "ingested")}
    items = cat.items()
    assert {e["details"]["path"] for e in wiped} == {
        "DSJ0042_110023_20261015093012_0001.MP4",
        "DCIM/100MEDIA/DSJ0042_110023_20261015094500_0002.MP4",
        "GPS0001.csv",
    }
    for e in wiped:
        assert e["item"] in items
        assert e["index"] > ingested[e["item"]], "wiped before it was committed"
        assert before[e["details"]["path"].encode()][0] == e["item"]
    assert_verifies(bwc)
