"""Regressions of issue 12 (walking a camera): a folder swapped for a symlink, or a file for a
FIFO, after discovery; folders nested deeper than the walk goes; the station's own home given
as a camera. `bwc ingest` (in-process, with the swap made between discovery and the copy) and
the daemon (a real process: its job is made, then the camera changes before the copy)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bwc.ingest.discover as discover_mod
from bwc.evidence.station import Station
from bwc.ingest.docks import DockScanner
from bwc.ingest.jobs import JobRunner, RunnerConfig
from bwc.ingest.probe import MediaSummary
from bwc.ingest.profiles import station_profiles
from bwc.ingest.steps import ledger_lookup
from tests.conftest import Result
from tests.integration.daemon_util import (
    Catalog,
    DaemonProcess,
    age_tree,
    set_daemon_config,
    wait_until,
)
from tests.integration.test_bad_input import (
    assert_clean_error,
    ingest_json,
    item_shas,
    result_for,
    sha,
    snapshot,
)

pytestmark = pytest.mark.integration

Runner = Callable[..., Result]
DEEP = 1100  # deeper than Python's recursion limit


@pytest.fixture
def no_hang() -> Iterator[None]:
    def _alarm(_signum: int, _frame: Any) -> None:
        raise TimeoutError("bwc ingest did not finish in 30 s (blocked on a FIFO?)")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def put(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def after_discovery(monkeypatch: pytest.MonkeyPatch, change: Callable[[], None]) -> None:
    """Run ``change`` once `bwc ingest` has listed the files, before any is copied."""
    real = discover_mod.discover

    def hooked(*args: Any, **kwargs: Any) -> discover_mod.Discovery:
        found = real(*args, **kwargs)
        change()
        return found

    monkeypatch.setattr(discover_mod, "discover", hooked)


def make_deep(top: Path, levels: int) -> bytes:
    """``levels`` nested folders under ``top`` (built by descriptor: the path outgrows
    PATH_MAX), a file at the bottom; returns the first folder's name."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open("BOTTOM.TXT", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, b"at the bottom\n")
        os.close(out)
    finally:
        os.close(fd)
    return b"d"


def remove_deep(top: Path) -> None:
    """Remove what make_deep made, by descriptor and without recursion (shutil.rmtree
    recurses once a level)."""
    fds = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        while True:
            try:
                fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
            except FileNotFoundError:
                break
        os.unlink("BOTTOM.TXT", dir_fd=fds[-1])
        while len(fds) > 1:
            os.close(fds.pop())
            os.rmdir("d", dir_fd=fds[-1])
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture
def deep(tmp_path: Path) -> Iterator[Path]:
    top = tmp_path / "dock" / "cam" / "DEEP"
    make_deep(top, DEEP)
    yield top
    remove_deep(top)


def key_file(home: Path) -> Path:
    [pem] = (home / "keys").glob("*.pem")
    return pem


def stored_bytes_contain(home: Path, needle: bytes) -> bool:
    return any(p.is_file() and needle in p.read_bytes() for p in (home / "store").rglob("*"))


# ---------------------------------------------------------------------------- bwc ingest


def test_folder_swapped_for_a_symlink_after_discovery_is_not_followed(
    bwc: Runner, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 4: DCIM is swapped for a symlink to the station's key folder between discovery
    and the copy; the file under it is an error, the key is never stored."""
    key = key_file(home)
    cam = tmp_path / "dock" / "CAM01"
    put(cam / "DCIM" / key.name, b"camera bytes under the key's name\n")
    put(cam / "GPS0001.csv", b"time,lat,lon\n")

    def swap() -> None:
        os.rename(cam / "DCIM", tmp_path / "DCIM.away")
        os.symlink(home / "keys", cam / "DCIM")

    after_discovery(monkeypatch, swap)
    r, data = ingest_json(bwc, cam)
    assert r.code == 6, r.err
    res = result_for(data, key.name)
    assert res["status"] == "error"
    assert "no longer a folder" in res["reason"] and "not followed" in res["reason"]
    assert data["ingested"] == 1
    secret = key.read_bytes()
    assert sha(secret) not in item_shas(home)
    assert not stored_bytes_contain(home, secret[:40])


def test_file_swapped_for_a_fifo_after_discovery_is_an_error(
    bwc: Runner, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_hang: None
) -> None:
    """Defect 9: a FIFO in place of a listed file neither blocks the ingest nor is dropped."""
    cam = tmp_path / "dock" / "CAM01"
    fifo = put(cam / "DCIM" / "CLIP0001.MP4", b"soon a FIFO")
    put(cam / "GPS0001.csv", b"time,lat,lon\n")

    def swap() -> None:
        fifo.unlink()
        os.mkfifo(fifo)

    after_discovery(monkeypatch, swap)
    r, data = ingest_json(bwc, cam)
    assert r.code == 6, r.err
    res = result_for(data, "CLIP0001.MP4")
    assert res["status"] == "error" and "not a regular file" in res["reason"]
    assert data["ingested"] == 1 and data["errors"] == 1


def test_folder_deeper_than_the_walk_is_listed_the_rest_ingested(
    bwc: Runner, home: Path, deep: Path, no_hang: None
) -> None:
    """Defect 10: 1,100 levels deep: no RecursionError (exit 10); the deep folder is one
    listed error, the other files are ingested."""
    cam = deep.parent
    put(cam / "GPS0001.csv", b"time,lat,lon\n")
    r, data = ingest_json(bwc, cam)
    assert r.code == 6, r.err
    assert data["ingested"] == 1 and data["errors"] == 1, data
    [err] = [x for x in data["results"] if x["status"] == "error"]
    assert "deeper than 64 levels" in err["reason"]
    assert err["path"].startswith(str(deep / "d"))


@pytest.mark.parametrize("what", ["home", "parent", "keys", "key-file", "store", "spool"])
def test_the_home_is_never_ingested(bwc: Runner, home: Path, what: str) -> None:
    """Defect 5: the home, anything in it, or a folder holding it: exit 6, nothing stored."""
    target = {
        "home": home,
        "parent": home.parent,
        "keys": home / "keys",
        "key-file": key_file(home),
        "store": home / "store",
        "spool": home / "spool",
    }[what]
    before = snapshot(home)
    r = bwc("ingest", target)
    assert_clean_error(r, 6, "the station's", "nothing was ingested", only_line=True)
    assert snapshot(home) == before


def test_the_default_home_under_the_users_home_is_never_ingested(
    bwc: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 5 as reported: `bwc ingest ~` with the default home (~/.bwc)."""
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.delenv("BWC_HOME")
    assert bwc("init", "--station-id", "st-home").code == 0
    put(user / "Videos" / "CLIP0001.MP4", b"x")
    before = snapshot(user / ".bwc")
    r = bwc("ingest", user)
    assert_clean_error(r, 6, "contains the station's home", only_line=True)
    assert snapshot(user / ".bwc") == before


def test_a_store_outside_the_home_is_never_ingested(
    bwc: Runner, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "evidence" / "store"
    store.mkdir(parents=True)
    monkeypatch.setenv("BWC_STORE", store.as_uri())
    r = bwc("ingest", tmp_path / "evidence")
    assert_clean_error(r, 6, "contains the station's local store", only_line=True)


# ---------------------------------------------------------------------------- the daemon


@pytest.fixture
def daemon_home(home: Path) -> Path:
    set_daemon_config(home, stable_seconds=0.5, rescan_seconds=0.2, retry_max_seconds=1.0)
    return home


def _job_made_then_stopped(
    home: Path, dock: Path, start: Callable[..., DaemonProcess], rel: bytes
) -> None:
    """Run the daemon with no spool room, so the file's job is made but not copied; stop it."""
    set_daemon_config(home, spool_min_free_mb=1 << 40)
    d = start(home, dock)
    cat = Catalog(home)
    wait_until(
        lambda: any(j.rel == rel and j.reason and "spool" in j.reason for j in cat.jobs()),
        30,
        "a job waiting for spool room",
        daemon=d,
    )
    assert d.terminate() == 0
    set_daemon_config(home, spool_min_free_mb=0)


def test_daemon_folder_swapped_for_a_symlink_before_the_copy(
    daemon_home: Path, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """Defect 4, daemon: the job's folder becomes a symlink to the key folder before its copy:
    the job fails with the reason, the key is never stored."""
    key = key_file(daemon_home)
    dock = tmp_path / "dock"
    cam = dock / "cam"
    put(cam / "DCIM" / key.name, b"camera bytes under the key's name\n")
    age_tree(cam)
    rel = os.fsencode(f"DCIM/{key.name}")
    _job_made_then_stopped(daemon_home, dock, start_daemon, rel)
    os.rename(cam / "DCIM", tmp_path / "DCIM.away")
    os.symlink(daemon_home / "keys", cam / "DCIM")
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    job = wait_until(
        lambda: next((j for j in cat.jobs() if j.rel == rel and j.state == "failed"), None),
        30,
        "the job failed",
        daemon=d,
        detail=lambda: str(cat.jobs()),
    )
    assert "no longer a folder" in (job.reason or "")
    assert d.terminate() == 0
    secret = key.read_bytes()
    assert sha(secret) not in cat.items()
    assert not stored_bytes_contain(daemon_home, secret[:40])


def test_daemon_file_swapped_for_a_fifo_before_the_copy(
    daemon_home: Path, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """Defect 9, daemon: the copy does not block on the FIFO; the job fails with the reason;
    SIGTERM stops the daemon promptly."""
    dock = tmp_path / "dock"
    cam = dock / "cam"
    fifo = put(cam / "DCIM" / "CLIP0001.MP4", b"soon a FIFO")
    put(cam / "GPS0001.csv", b"time,lat,lon\n")
    age_tree(cam)
    _job_made_then_stopped(daemon_home, dock, start_daemon, b"DCIM/CLIP0001.MP4")
    fifo.unlink()
    os.mkfifo(fifo)
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    job = wait_until(
        lambda: next(
            (j for j in cat.jobs() if j.rel == b"DCIM/CLIP0001.MP4" and j.state == "failed"), None
        ),
        30,
        "the FIFO's job failed",
        daemon=d,
        detail=lambda: str(cat.jobs()),
    )
    assert "not a regular file" in (job.reason or "")
    wait_until(lambda: cat.states().get("released") == 1, 30, "the other file", daemon=d)
    t0 = time.monotonic()
    assert d.terminate(timeout=10) == 0
    assert time.monotonic() - t0 < 10


def test_daemon_takes_a_camera_with_a_folder_too_deep(
    daemon_home: Path, deep: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """Defect 10, daemon: the scan does not crash; the deep folder is a failed job, the rest
    is committed."""
    cam = deep.parent
    dock = cam.parent
    put(cam / "GPS0001.csv", b"time,lat,lon\n")
    old = time.time() - 3600
    os.utime(cam / "GPS0001.csv", (old, old))
    d = start_daemon(daemon_home, dock)
    cat = Catalog(daemon_home)
    wait_until(
        lambda: cat.states() == {"released": 1, "failed": 1},
        30,
        "one file committed, the deep folder failed",
        daemon=d,
        detail=lambda: str(cat.jobs()),
    )
    [failed] = [j for j in cat.jobs() if j.state == "failed"]
    assert failed.rel.startswith(b"DEEP/d/") and "deeper than 64 levels" in (failed.reason or "")
    assert d.terminate() == 0


def test_daemon_refuses_a_mount_holding_its_home_and_serves_the_others(
    bwc: Runner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    """Defect 5, daemon: a mount that holds the home is refused with a logged error, never
    ingested; the other camera is taken."""
    dock = tmp_path / "dock"
    home = dock / "station" / ".bwc"
    monkeypatch.setenv("BWC_HOME", str(home))
    assert bwc("init", "--station-id", "st-dock").code == 0
    set_daemon_config(home, stable_seconds=0.5, rescan_seconds=0.2, retry_max_seconds=1.0)
    put(dock / "station" / "NOTES.TXT", b"the station's own notes\n")
    cam = dock / "cam"
    put(cam / "GPS0001.csv", b"time,lat,lon\n")
    age_tree(dock)
    d = start_daemon(home, dock)
    cat = Catalog(home)
    wait_until(lambda: cat.states() == {"released": 1}, 30, "the camera's file", daemon=d)
    wait_until(lambda: "refusing dock mount" in d.this_run_log(), 10, "the refusal", daemon=d)
    line = next(ln for ln in d.this_run_log().splitlines() if "refusing dock mount" in ln)
    assert "ERROR" in line and str(dock / "station") in line and "home" in line
    assert [s["mount"] for s in cat.sessions()] == [os.fsencode(cam)]
    assert [j.rel for j in cat.jobs()] == [b"GPS0001.csv"]
    assert d.running

    def said() -> str | None:  # `bwc status` names it too, not only the daemon's log
        r = bwc("status")
        return r.out if "NOT TAKEN" in r.out else None

    text = wait_until(said, 10, "the refused mount in bwc status", daemon=d, interval=0.5)
    line = next(ln for ln in text.splitlines() if "NOT TAKEN" in ln)
    assert str(dock / "station") in line and "home" in line, text
    r = bwc("status", "--json")
    (shown,) = json.loads(r.out)["not_served"]
    assert shown["mount"] == str(dock / "station") and "home" in shown["why"]
    assert d.terminate() == 0
    shutil.rmtree(dock / "station", ignore_errors=True)


# ---------------------------------------------------------------------------- in-process daemon


class NoMedia:
    def probe(self, path: Path) -> MediaSummary | None:
        return None


def test_wipe_never_follows_a_folder_swapped_for_a_symlink(home: Path, tmp_path: Path) -> None:
    """Same class as defect 4, in the wipe (wipe_after_verify): the camera's folder is swapped
    for a symlink to a folder holding a file of the same name, size and mtime after the
    commit; the wipe must not delete that file (it looked the path up again, following the
    symlink, and unlinked what it found)."""
    dock = tmp_path / "dock"
    clip = put(dock / "DSJ0042" / "DCIM" / "CLIP0001.MP4", os.urandom(5000))
    past = time.time() - 3600
    os.utime(clip, (past, past))
    outside = tmp_path / "outside" / "CLIP0001.MP4"
    outside.parent.mkdir()
    shutil.copy2(clip, outside)
    st = Station.open(home, actor="test-clerk", passphrase=None)
    try:
        profiles = station_profiles(st.settings)
        scanner = DockScanner(st, [str(dock)], ignore=[], stable_seconds=0.0, profiles=profiles)

        def swap(kind: str, _details: dict[str, Any]) -> None:
            if kind == "ingested":  # committed; the release (and its wipe) comes next
                os.rename(clip.parent, tmp_path / "DCIM.away")
                os.symlink(outside.parent, clip.parent)

        runner = JobRunner(
            st,
            NoMedia(),
            profiles,
            ledger_lookup(st.engine),
            RunnerConfig(wipe_after_verify=True),
            on_event=swap,
        )
        (job,) = scanner.scan(time.time(), time.monotonic())
        assert runner.advance(job) == "released"
        assert outside.exists(), "the wipe deleted a file outside the camera"
        assert (tmp_path / "DCIM.away" / "CLIP0001.MP4").exists()  # not wiped either: moved
    finally:
        st.engine.dispose()


def test_a_dock_inside_the_home_is_refused(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Defect 5, the other way round: a dock root (or mount) inside the home."""
    dock = home / "dock"
    put(dock / "DSJ0042" / "GPS0001.csv", b"time,lat,lon\n")
    st = Station.open(home, actor="test-clerk", passphrase=None)
    try:
        scanner = DockScanner(st, [str(dock)], ignore=[], stable_seconds=0.0, profiles=[])
        with caplog.at_level(logging.ERROR, logger="bwc"):
            assert scanner.scan(time.time(), time.monotonic()) == []
            assert scanner.scan(time.time(), time.monotonic()) == []
        refusals = [r for r in caplog.records if "refusing dock mount" in r.getMessage()]
        assert len(refusals) == 1, "logged once, not at every scan"
        assert "is inside the station's home" in refusals[0].getMessage()
        assert scanner.sessions == {}
    finally:
        st.engine.dispose()
