"""Issue 15 item 6: a failed file stays listed by `bwc status` until `bwc retry` copies it
again or `bwc ack --reason` accepts it; both logged. The docking station's scanner and job
runner run in-process (the daemon's own parts, one step at a time), the commands through the
CLI."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bwc.evidence.models import Event, Item, LogHead
from bwc.evidence.station import Station
from bwc.ingest.docks import DockScanner
from bwc.ingest.jobs import JobRunner, RunnerConfig
from bwc.ingest.profiles import station_profiles
from bwc.ingest.steps import ledger_lookup
from tests.conftest import Result
from tests.integration.daemon_util import Catalog, DaemonProcess, set_daemon_config, wait_until
from tests.integration.test_bad_input import assert_clean_error, item_shas, sha
from tests.integration.test_postgres import pg_databases, pg_db, pg_home  # noqa: F401
from tests.integration.test_walk import NoMedia, Runner, _job_made_then_stopped, put

pytestmark = pytest.mark.integration

CLIP = "DCIM/CLIP0001.MP4"


class Dock:
    """One camera docked at a station: scan it and advance its jobs, as the daemon does."""

    def __init__(self, home: Path, dock: Path) -> None:
        self.st = Station.open(home, actor="daemon", passphrase=None)
        profiles = station_profiles(self.st.settings)
        self.scanner = DockScanner(
            self.st, [str(dock)], ignore=[], stable_seconds=0.0, profiles=profiles
        )
        self.runner = JobRunner(
            self.st, NoMedia(), profiles, ledger_lookup(self.st.engine), RunnerConfig()
        )

    def scan(self) -> list[int]:
        return self.scanner.scan(time.time(), time.monotonic())

    def advance(self, job: int) -> str:
        return self.runner.advance(job)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_home(request: pytest.FixtureRequest) -> Path:
    """A station's home with its catalog in SQLite, or in a fresh PostgreSQL database."""
    home: Path = request.getfixturevalue("home" if request.param == "sqlite" else "pg_home")
    return home


@pytest.fixture
def docked(any_home: Path, tmp_path: Path) -> Iterator[Dock]:
    d = Dock(any_home, tmp_path / "dock")
    yield d
    d.st.engine.dispose()


def status(bwc: Runner) -> dict[str, Any]:
    r = bwc("status", "--json")
    assert r.code == 0, r.err
    data: dict[str, Any] = json.loads(r.out)
    return data


def events(st: Station, kind: str) -> list[dict[str, Any]]:
    with st.session(snapshot=True) as s:
        rows = s.exec(select(Event.leaf).where(Event.kind == kind).order_by(col(Event.idx)))
        return [json.loads(bytes(leaf)) for leaf in rows]


def log_size(st: Station) -> int:
    with st.session(snapshot=True) as s:
        head = s.get(LogHead, 1)
        return head.size if head else 0


def items(st: Station) -> set[str]:
    with st.session(snapshot=True) as s:
        return set(s.exec(select(Item.sha256)))


def refused(r: Result, code: int, *needles: str) -> None:
    """The command failed with ``code`` and one clear line (the log size is checked by the
    caller: nothing was changed)."""
    assert_clean_error(r, code, *needles)


def test_failed_files_retried_or_acknowledged(
    bwc: Runner,
    any_home: Path,
    tmp_path: Path,
    docked: Dock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = docked.st
    cam = tmp_path / "dock" / "cam"
    data = os.urandom(3000)
    clip = put(cam / CLIP, data)
    put(cam / "GPS0001.csv", b"time,lat,lon\n")
    outside = put(tmp_path / "outside.txt", b"not on the camera\n")
    os.symlink(outside, cam / "LINK.MP4")  # refused at discovery: failed, with the reason
    os.symlink(outside, cam / "LINK2.MP4")
    past = time.time() - 3600
    for p in (clip, cam / "GPS0001.csv"):
        os.utime(p, (past, past))
    with caplog.at_level(logging.INFO, logger="bwc"):
        jobs = docked.scan()
    assert len(jobs) == 2
    # refused at discovery: in the daemon's log too, not only in `bwc status`
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert sorted(m.split(":")[1].strip() for m in said) == ["LINK.MP4", "LINK2.MP4"], said
    # the clip becomes a FIFO before its copy: its job fails
    clip.unlink()
    os.mkfifo(clip)
    assert sorted(docked.advance(j) for j in jobs) == ["failed", "released"]

    st = status(bwc)
    failed = {f["path"]: f for f in st["failed"]}
    assert set(failed) == {CLIP, "LINK.MP4", "LINK2.MP4"}
    assert "not a regular file" in failed[CLIP]["reason"]
    clip_job, link_job = failed[CLIP]["job"], failed["LINK.MP4"]["job"]
    r = bwc("status")
    assert f"failed {CLIP} (job {clip_job})" in r.out and "bwc retry" in r.out

    # bad input: said in one line, nothing changed
    size = log_size(station)
    refused(bwc("retry", "GPS0001.csv"), 2, "is released, not failed")
    refused(bwc("retry", "DCIM/NOPE.MP4"), 3, "no file DCIM/NOPE.MP4")
    refused(bwc("retry", "999999"), 3, "no file 999999")
    r = bwc("ack", CLIP)
    assert r.code == 2 and "--reason" in r.err, r.err
    refused(bwc("ack", CLIP, "--reason", ""), 2, "--reason")
    refused(bwc("retry"), 2, "--all")
    assert log_size(station) == size
    assert len(status(bwc)["failed"]) == 3

    # retried while still a FIFO: it fails again and is listed again
    r = bwc("retry", CLIP)
    assert r.code == 0, r.err
    assert f"retry {CLIP} (job {clip_job})" in r.out
    assert {f["path"] for f in status(bwc)["failed"]} == {"LINK.MP4", "LINK2.MP4"}
    (ev,) = events(station, "ingest-retried")
    assert ev["actor"] == "test-clerk" and ev["item"] is None
    assert ev["details"]["job"] == clip_job and ev["details"]["path"] == CLIP
    assert "not a regular file" in ev["details"]["failure"]
    assert ev["details"]["dock_session"] == docked.scanner.sessions[os.fsencode(cam)].id
    assert docked.advance(clip_job) == "failed"
    assert {f["path"] for f in status(bwc)["failed"]} == {CLIP, "LINK.MP4", "LINK2.MP4"}

    # the file is back as it was: retried (by job id), it is committed
    clip.unlink()
    put(clip, data)
    os.utime(clip, (past, past))
    assert docked.scan() == []  # the scan alone does not take it again
    r = bwc("retry", str(clip_job), CLIP, "--json")  # one file, named twice
    assert r.code == 0, r.err
    assert [(f["job"], f["ok"]) for f in json.loads(r.out)["files"]] == [(clip_job, True)]
    assert docked.advance(clip_job) == "released"
    assert sha(data) in items(station)
    assert len(events(station, "ingest-retried")) == 2
    refused(bwc("retry", CLIP), 2, "is released, not failed")

    # the dock receipt follows: one logged when the files were first all in (3 failed),
    # another now that the retried clip is in (a new fact for the clerk); scans with
    # nothing new log none
    def receipts() -> list[tuple[int, int, int]]:
        logged = (e["details"] for e in events(station, "receipt"))
        return [(r["committed"], r["failed"], r["acknowledged"]) for r in logged]

    assert receipts() == [(1, 3, 0)]
    docked.scan()
    docked.scan()
    assert receipts() == [(1, 3, 0), (2, 2, 0)]

    # one failure acknowledged while docked: counted as such when the camera leaves
    link2_job = failed["LINK2.MP4"]["job"]
    assert bwc("ack", "LINK2.MP4", "--reason", "a second link").code == 0
    docked.scan()
    assert receipts() == [(1, 3, 0), (2, 2, 0), (2, 1, 1)]

    # undocked: the link cannot be retried, said, nothing changed
    shutil.move(cam, tmp_path / "away")
    docked.scan()
    (ev,) = events(station, "undocked")
    counts = {k: ev["details"][k] for k in ("committed", "failed", "acknowledged", "in_progress")}
    assert counts == {"committed": 2, "failed": 1, "acknowledged": 1, "in_progress": 0}
    size = log_size(station)
    refused(bwc("retry", "LINK.MP4"), 6, "undocked")
    r = bwc("retry", "--all")
    assert r.code == 6 and "not retried LINK.MP4" in r.out, (r.out, r.err)
    assert log_size(station) == size
    assert [f["job"] for f in status(bwc)["failed"]] == [link_job]

    # acknowledged: no longer failed; counted and listed as acknowledged; logged
    r = bwc("ack", "LINK.MP4", "--reason", "a link the officer's phone made; not footage")
    assert r.code == 0, r.err
    st = status(bwc)
    assert st["failed"] == [] and st["acknowledged_count"] == 2
    assert [a["job"] for a in st["acknowledged"]] == [link_job, link2_job]  # latest first
    assert "outside" in st["acknowledged"][0]["reason"]  # the failure's reason kept
    _, ev = events(station, "failure-acknowledged")
    assert ev["actor"] == "test-clerk"
    assert ev["details"]["reason"] == "a link the officer's phone made; not footage"
    assert ev["details"]["job"] == link_job and ev["details"]["path"] == "LINK.MP4"
    r = bwc("status")
    assert "acknowledged failures: 2" in r.out and "failed LINK" not in r.out
    refused(bwc("ack", "LINK.MP4", "--reason", "again"), 2, "acknowledged, not")
    # the dock receipt: an acknowledged failure is still not safe (the card holds the only
    # copy), counted apart and named with the failure; the receipt logged at undock counted
    # one acknowledged, which `bwc receipt` says differs from now
    session = events(station, "undocked")[0]["details"]["dock_session"]
    r = bwc("receipt", str(session), "--json")
    rec = json.loads(r.out)
    now = rec["receipt"]
    assert (now["acknowledged"], now["failed"], now["safe"]) == (2, 0, False), r.out
    assert all("acknowledged (bwc ack)" in x["why"] for x in now["not_safe"]), r.out
    assert rec["logged"]["receipt"]["acknowledged"] == 1  # at undock, before the second ack
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err


def test_the_running_daemon_takes_a_retried_file(
    bwc: Runner, home: Path, tmp_path: Path, start_daemon: Callable[..., DaemonProcess]
) -> None:
    """A retry while the daemon runs: its rescan takes the file again, and commits it."""
    set_daemon_config(home, stable_seconds=0.5, rescan_seconds=0.2, retry_max_seconds=1.0)
    dock = tmp_path / "dock"
    data = os.urandom(3000)
    clip = put(dock / "cam" / CLIP, data)
    past = time.time() - 3600
    os.utime(clip, (past, past))
    _job_made_then_stopped(home, dock, start_daemon, os.fsencode(CLIP))
    clip.unlink()
    os.mkfifo(clip)
    d = start_daemon(home, dock)
    cat = Catalog(home)
    wait_until(lambda: cat.states() == {"failed": 1}, 30, "the job failed", daemon=d)
    clip.unlink()
    put(clip, data)
    os.utime(clip, (past, past))
    r = bwc("retry", "--all")
    assert r.code == 0, r.err
    wait_until(lambda: cat.states() == {"released": 1}, 30, "the retried file", daemon=d)
    assert sha(data) in item_shas(home)
    assert status(bwc)["failed"] == []
    assert d.terminate() == 0


def test_every_failure_stays_listed(
    bwc: Runner, any_home: Path, tmp_path: Path, docked: Dock
) -> None:
    """Not only the latest 20: a failure never drops off the list by age."""
    cam = tmp_path / "dock" / "cam"
    outside = put(tmp_path / "outside.txt", b"not on the camera\n")
    cam.mkdir(parents=True)
    for i in range(25):
        os.symlink(outside, cam / f"LINK{i:02d}.MP4")
    docked.scan()
    st = status(bwc)
    assert sorted(f["path"] for f in st["failed"]) == [f"LINK{i:02d}.MP4" for i in range(25)]
    r = bwc("status")
    assert "LINK00.MP4" in r.out and "and 5 more failed (--json lists all)" in r.out
