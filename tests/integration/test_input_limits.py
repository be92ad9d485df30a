"""Length and character rules of what bwc stores are bwc's, checked before anything is
stored, the same on SQLite (which enforces no length) and PostgreSQL (which refuses at the
insert, after the object is in the store): issue 12, defect 6.

A camera's id file with a 200-character device id does not stop the daemon's other cameras;
a file whose name carries an over-long id is listed as not ingested, with nothing left in the
store; over-long command-line values are refused naming the option (exit 2), import rows
naming the line (exit 6)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result
from tests.integration import pg
from tests.integration.daemon_util import DaemonProcess, age_tree, set_daemon_config, wait_until

pytestmark = pytest.mark.integration

Runner = Callable[..., Result]
LONG = "X" * 200  # the catalog holds 128 characters


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The home's catalog: the embedded SQLite, or a fresh PostgreSQL database (fails
    loudly when the server is away and BWC_TEST_PG=required)."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with pg.databases() as dbs:
        monkeypatch.setenv("BWC_CATALOG", pg.sqlalchemy_url(dbs.create()))
        yield "postgresql"


@pytest.fixture
def station(bwc: Runner, catalog: str, tmp_path: Path) -> Path:
    r = bwc("init", "--station-id", "st-limits")
    assert r.code == 0, r.err
    return tmp_path / "home"


def _json(bwc: Runner, *args: str) -> Any:
    r = bwc(*args, "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def _clips(clip_cache: Path) -> list[Path]:
    return sorted(clip_cache.iterdir())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _store_names(home: Path) -> str:
    """Every path in the local store, one a line (objects, manifests, signatures)."""
    return "\n".join(str(p) for p in (home / "store").rglob("*"))


def test_daemon_takes_the_other_camera_when_one_has_a_200_character_device_id(
    bwc: Runner,
    station: Path,
    tmp_path: Path,
    clip_cache: Path,
    start_daemon: Callable[..., DaemonProcess],
) -> None:
    set_daemon_config(station, stable_seconds=0.5, rescan_seconds=0.2, retry_max_seconds=1.0)
    first, second, _ = _clips(clip_cache)
    dock = tmp_path / "dock"
    # "cam-a" is scanned first: its id file used to fail every scan on PostgreSQL
    bad = dock / "cam-a"
    (bad / "DCIM" / "100MEDIA").mkdir(parents=True)
    (bad / "ID.TXT").write_text(f"device={LONG}\nofficer=110023\n", "utf-8")
    shutil.copy(second, bad / "DCIM" / "100MEDIA" / "20261015_093012_0003.MP4")
    good = dock / "cam-b"
    good.mkdir()
    shutil.copy(first, good / first.name)
    age_tree(dock)

    d = start_daemon(station, dock)

    def settled() -> Any:
        st = _json(bwc, "status")
        return (
            st
            if len(st["failed"]) == 2 and not set(st["backlog"]) - {"released", "failed"}
            else None
        )

    st = wait_until(settled, 30.0, "one camera taken, one file failed", daemon=d, interval=0.2)
    items = _json(bwc, "list")
    assert [(i["path"], i["device_id"]) for i in items] == [(first.name, "DSJ0042")]
    # every file of the bad camera that would carry the id is listed, with the reason
    failed = {f["path"]: f["reason"] for f in st["failed"]}
    assert set(failed) == {"DCIM/100MEDIA/20261015_093012_0003.MP4", "ID.TXT"}, failed
    for reason in failed.values():
        assert "device id from the id file is 200 characters long (at most 128)" in reason
    assert _sha(second) not in _store_names(station)  # nothing stored for it
    assert "the id file's device id is 200 characters long" in d.this_run_log()
    assert d.terminate() == 0
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err


def test_ingest_of_a_file_whose_name_carries_an_over_long_id(
    bwc: Runner, station: Path, tmp_path: Path, clip_cache: Path
) -> None:
    first, second, _ = _clips(clip_cache)
    cam = tmp_path / "cam"
    cam.mkdir()
    shutil.copy(first, cam / first.name)
    bad_name = f"{LONG}_110023_20261015093001_0001.MP4"  # cn-standard: device id first
    shutil.copy(second, cam / bad_name)

    r = bwc("ingest", str(cam))
    assert r.code == 6, r.out + r.err
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    named = [ln for ln in r.err.splitlines() if bad_name in ln]
    assert named and "device id from its name is 200 characters long" in named[0], r.err
    assert r.err.splitlines()[-1].startswith("bwc: error: 1 file(s) were not ingested"), r.err
    assert [i["path"] for i in _json(bwc, "list")] == [first.name]
    # no orphan: neither the object nor a manifest of the refused file is in the store
    assert _sha(second) not in _store_names(station)
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err


def test_over_long_command_line_values_are_refused_naming_the_option(
    bwc: Runner, station: Path, tmp_path: Path, clip_cache: Path
) -> None:
    first = _clips(clip_cache)[0]
    cam = tmp_path / "cam"
    cam.mkdir()
    shutil.copy(first, cam / first.name)
    assert bwc("ingest", str(cam)).code == 0
    item = _sha(first)[:16]
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(_clips(clip_cache)[1], other / "clip.MP4")
    cases: list[tuple[list[str], str]] = [
        (["ingest", str(other), "--officer", LONG], "--officer"),
        (["ingest", str(other), "--device", LONG], "--device"),
        (["attribute", item, "--officer", LONG, "--reason", "shared camera"], "--officer"),
        (["attribute", item, "--officer", "1100\n23", "--reason", "x"], "control character"),
        (["classify", item, "--class", "evidence", "--case", LONG, "--reason", "x"], "--case"),
        (["devices", "assign", LONG, "DSJ0042", "--from", "2026-10-01"], "OFFICER"),
        (["devices", "assign", "110023", LONG, "--from", "2026-10-01"], "DEVICE"),
        (["devices", "clock", LONG, "--offset", "+1s"], "DEVICE"),
    ]
    before = _json(bwc, "log", "events")
    for args, needle in cases:
        r = bwc(*args)
        assert r.code == 2, f"{args[:2]}: exit {r.code}\n{r.out}{r.err}"
        errors = [ln for ln in r.err.splitlines() if ln.startswith("bwc: error:")]
        assert len(errors) == 1 and needle in errors[0], (args[:2], r.err)
        assert "Traceback" not in r.err, r.err
    assert _json(bwc, "log", "events") == before  # nothing logged, nothing changed
    assert len(_json(bwc, "list")) == 1
    assert _json(bwc, "devices", "list") == {"assignments": [], "clock_checks": []}
    assert _sha(_clips(clip_cache)[1]) not in _store_names(station)


IMPORTS: list[tuple[str, str, str]] = [
    (
        "officers",
        "officer_id,name,unit,county,frontline\n"
        "110023,Li,Unit 1,County A,true\n"
        f"110024,Wang,{LONG},County A,true\n",
        "line 3: unit is 200 characters long",
    ),
    (
        "officers",
        f"officer_id,name,unit,county,frontline\n110023,Li,Unit 1,{LONG},true\n",
        "line 2: county is 200 characters long",
    ),
    (
        "cases",
        "case_id,officers,start,end,unit\n"
        f"C1,110023,2026-10-01T09:00:00,2026-10-01T10:00:00,{LONG}\n",
        "line 2: unit is 200 characters long",
    ),
    (
        "officers",  # PostgreSQL refuses a NUL in any text; SQLite kept it
        "officer_id,name,unit,county,frontline\n110023,Li\x00Wang,Unit 1,County A,true\n",
        "line 2: name contains a NUL character",
    ),
    (
        "assignments",
        f"officer_id,device_id,start,end\n110023,{LONG},2026-10-01T09:00:00,\n",
        "line 2: device_id is longer than 128 characters",
    ),
]


def test_import_row_with_an_over_long_value_is_named_by_line(
    bwc: Runner, station: Path, tmp_path: Path
) -> None:
    for n, (kind, text, needle) in enumerate(IMPORTS):
        path = tmp_path / f"{kind}-{n}.csv"
        path.write_text(text, "utf-8")
        r = bwc("audit", "import", kind, str(path))
        assert r.code == 6, r.out + r.err
        errors = [ln for ln in r.err.splitlines() if ln.startswith("bwc: error:")]
        assert len(errors) == 1 and needle in errors[0], r.err
        assert "nothing was imported" in errors[0]
    verified = _json(bwc, "audit", "verify")["verified"]
    assert not any(verified.values()), verified  # no row of any file was stored


def test_the_migrated_schema_has_the_lengths_bwc_checks(home: Path) -> None:
    """The limits bwc checks are the models' column lengths (bwc.config.limits); the
    migrations that build a real catalog must agree with the models, or a value bwc lets
    through could still be refused by PostgreSQL."""
    import sqlalchemy as sa
    from sqlmodel import SQLModel

    import bwc.evidence.models  # noqa: F401  (the tables)

    engine = sa.create_engine(f"sqlite:///{home / 'catalog.sqlite'}")
    try:
        found = sa.inspect(engine)
        checked = 0
        for table in SQLModel.metadata.sorted_tables:
            migrated = {c["name"]: c["type"] for c in found.get_columns(table.name)}
            for column in table.columns:
                length = getattr(column.type, "length", None)
                if isinstance(column.type, sa.String) and length is not None:
                    got = getattr(migrated[column.name], "length", None)
                    assert got == length, (table.name, column.name, got, length)
                    checked += 1
    finally:
        engine.dispose()
    assert checked > 20


def test_a_mount_that_fails_to_scan_does_not_stop_the_others(home: Path, tmp_path: Path) -> None:
    """Whatever else fails for one camera (here: reading its USB serial), the scan goes on to
    the next mount, and logs the first once; the failing one is tried again next scan."""
    import time

    from bwc.evidence.station import Station
    from bwc.ingest.docks import DockScanner

    dock = tmp_path / "dock"
    for name in ("cam-a", "cam-b"):
        (dock / name).mkdir(parents=True)
        (dock / name / f"{name}.bin").write_bytes(name.encode() * 100)
    age_tree(dock)
    broken = os.fsencode(os.path.realpath(dock / "cam-a"))

    def serial_of(mount: bytes) -> str | None:
        if mount == broken:
            raise OSError(5, "Input/output error")
        return None

    st = Station.open(home, actor="test-clerk", passphrase=None)  # the scan, not the catalog
    try:
        scanner = DockScanner(
            st, [str(dock)], ignore=[], stable_seconds=0.0, profiles=[], serial_of=serial_of
        )
        assert len(scanner.scan(time.time(), time.monotonic())) == 1  # cam-b's file
        assert broken in scanner.failing
        assert [os.path.basename(m) for m in scanner.sessions] == [b"cam-b"]
        # what `bwc status` shows of the daemon's heartbeat
        (shown,) = scanner.not_served()
        assert shown["mount"] == os.fsdecode(broken) and "Input/output error" in shown["why"]
        shutil.rmtree(dock / "cam-a")  # undocked: no longer listed
        scanner.scan(time.time(), time.monotonic() + 60)
        assert scanner.not_served() == []
    finally:
        st.engine.dispose()


def test_a_file_with_a_time_past_2262_is_taken_with_the_others(home: Path, tmp_path: Path) -> None:
    """A file whose mtime (a device clock) is past 2262 has more nanoseconds since 1970 than
    the catalog's BIGINT holds: its job's insert failed, and with it the scan of its camera
    (the daemon itself died of the OverflowError). It is taken, as are the files beside it."""
    import time

    from bwc.evidence.station import Station
    from bwc.ingest.docks import DockScanner
    from bwc.ingest.jobs import JobRunner, RunnerConfig
    from bwc.ingest.steps import ledger_lookup

    cam = tmp_path / "dock" / "cam"
    cam.mkdir(parents=True)
    (cam / "a.bin").write_bytes(b"a" * 100)
    (cam / "future.bin").write_bytes(b"f" * 100)
    age_tree(cam)
    far = 2**63 + 10**18  # about 2294
    os.utime(cam / "future.bin", ns=(far, far))
    assert os.stat(cam / "future.bin").st_mtime_ns > 2**63 - 1, "the file system clamped it"

    class NoMedia:
        def probe(self, path: Path) -> None:
            return None

    st = Station.open(home, actor="test-clerk", passphrase=None)
    try:
        scanner = DockScanner(st, [str(cam.parent)], ignore=[], stable_seconds=0.0, profiles=[])
        runner = JobRunner(st, NoMedia(), [], ledger_lookup(st.engine), RunnerConfig())
        jobs: list[int] = []
        for n in range(3):  # the future file is stable once seen unchanged
            # each scan a minute apart: the mount's next turn has come (docks.SCAN_DUTY)
            jobs += scanner.scan(time.time(), time.monotonic() + 60 * n)
        assert scanner.failing == {}
        assert len(jobs) == 2
        assert [runner.advance(j) for j in jobs] == ["released", "released"]
        # known: not taken again
        assert len(scanner.scan(time.time(), time.monotonic() + 600)) == 0
    finally:
        st.engine.dispose()
