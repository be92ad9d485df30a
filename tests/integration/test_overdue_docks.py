"""Issue 15 item 8: cameras checked out in the ledger and not docked for longer than
``[daemon] dock_overdue_hours`` are listed by `bwc status` and by the monthly audit. Docks
are made by the daemon's own scanner on a station whose clock the test sets."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bwc.evidence.station import Station
from bwc.ingest.docks import DockScanner
from bwc.ingest.pipeline import Attribution, Ingester
from bwc.ingest.profiles import station_profiles
from bwc.ingest.status import station_status
from tests.clocks import FixedClock
from tests.integration.test_postgres import pg_databases, pg_db, pg_home  # noqa: F401
from tests.integration.test_walk import NoMedia, Runner, put

pytestmark = pytest.mark.integration

# the default profile reads the device (DSJ0042) and officer from the file name
CLIP = "DSJ0042_110023_20261015093000_0000.MP4"


def local(text: str) -> datetime:
    """Shanghai wall time (the default zone) -> UTC."""
    return datetime.fromisoformat(text + "+08:00").astimezone(UTC)


def dock_once(home: Path, tmp_path: Path, docked: datetime, undocked: datetime) -> None:
    """Camera DSJ0042 docked at ``docked`` and taken out at ``undocked`` (station time)."""
    dock = tmp_path / "dock"
    put(dock / "DSJ0042" / CLIP, b"clip")
    for when in (docked, undocked):
        st = Station.open(home, actor="daemon", passphrase=None, clock=FixedClock(when))
        try:
            profiles = station_profiles(st.settings)
            scanner = DockScanner(st, [str(dock)], ignore=[], stable_seconds=0.0, profiles=profiles)
            scanner.scan(time.time(), time.monotonic())
        finally:
            st.engine.dispose()
        shutil.rmtree(dock / "DSJ0042", ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_home(request: pytest.FixtureRequest) -> Path:
    """A station's home with its catalog in SQLite, or in a fresh PostgreSQL database."""
    home: Path = request.getfixturevalue("home" if request.param == "sqlite" else "pg_home")
    return home


def ingest(home: Path, tmp_path: Path, device: str, when: datetime) -> None:
    """`bwc ingest` of a file of ``device`` at ``when`` (station time): no dock session."""
    f = put(tmp_path / "loose" / f"{device}-{when:%H%M}.bin", when.isoformat().encode())
    st = Station.open(home, actor="clerk", passphrase=None, clock=FixedClock(when))
    try:
        report = Ingester(st, NoMedia(), Attribution(None, device)).run([f])
        assert report.count("ingested") == 1, report.results
    finally:
        st.engine.dispose()


def import_ledger(bwc: Runner, tmp_path: Path, rows: str) -> None:
    f = tmp_path / "ledger.csv"
    f.write_text("officer_id,device_id,start,end\n" + rows, "utf-8")
    r = bwc("audit", "import", "assignments", f)
    assert r.code == 0, r.err


def overdue_at(home: Path, when: datetime) -> list[tuple[str, str, float, bool]]:
    st = Station.open(home, actor="test", passphrase=None, clock=FixedClock(when))
    try:
        found = station_status(st, clock_check=lambda: True).overdue
    finally:
        st.engine.dispose()
    return [(x["device_id"], x["officer_id"], x["hours"], x["since_checkout"]) for x in found]


def test_status_lists_cameras_not_docked_within_the_limit(
    bwc: Runner, any_home: Path, tmp_path: Path
) -> None:
    import_ledger(
        bwc,
        tmp_path,
        "1001,D-1,2026-10-10T08:00:00,\n"  # held, never docked
        "1002,D-2,2026-10-10T08:00:00,2026-10-10T18:00:00\n"  # returned
        "110023,DSJ0042,2026-10-10T08:00:00,\n",  # held, docked 20:00-20:30
    )
    dock_once(any_home, tmp_path, local("2026-10-10T20:00:00"), local("2026-10-10T20:30:00"))
    # exactly 24 h after the checkout: not yet
    assert overdue_at(any_home, local("2026-10-11T08:00:00")) == []
    assert overdue_at(any_home, local("2026-10-11T09:00:00")) == [("D-1", "1001", 25.0, True)]
    # 24 h after the end of DSJ0042's dock: not yet; an hour later it is
    assert overdue_at(any_home, local("2026-10-11T20:30:00")) == [("D-1", "1001", 36.5, True)]
    assert overdue_at(any_home, local("2026-10-11T21:30:00")) == [
        ("D-1", "1001", 37.5, True),
        ("DSJ0042", "110023", 25.0, False),
    ]
    # footage of D-1 taken in by `bwc ingest` (no dock session) is a dock too
    ingest(any_home, tmp_path, "D-1", local("2026-10-11T22:00:00"))
    assert overdue_at(any_home, local("2026-10-12T21:00:00")) == [
        ("DSJ0042", "110023", 48.5, False)
    ]
    assert overdue_at(any_home, local("2026-10-12T23:00:00"))[0] == ("D-1", "1001", 25.0, False)
    # a limit of 48 h
    (any_home / "bwc.toml").write_text(
        (any_home / "bwc.toml")
        .read_text("utf-8")
        .replace("dock_overdue_hours = 24.0", "dock_overdue_hours = 48.0"),
        "utf-8",
    )
    assert overdue_at(any_home, local("2026-10-11T21:30:00")) == []


def test_status_says_it_in_local_time_at_80_columns(
    bwc: Runner, home: Path, tmp_path: Path
) -> None:
    out = (datetime.now(UTC) - timedelta(hours=30, minutes=10)).replace(microsecond=0)
    import_ledger(bwc, tmp_path, f"1001,D-1,{out.isoformat()},\n")
    r = bwc("status")
    assert r.code == 0, r.err
    since = out.astimezone(Station.open(home, actor="t", passphrase=None).settings.tz)
    lines = r.out.splitlines()
    i = next(i for i, x in enumerate(lines) if "overdue" in x)
    assert lines[i] == "overdue: camera D-1 (officer 1001) not docked for 30 h", r.out
    zoned = since.strftime("%Y-%m-%d %H:%M:%S %z")
    assert lines[i + 1] == f"  since its checkout {zoned[:-2]}:{zoned[-2:]}", r.out
    assert max(len(x) for x in r.out.splitlines()) <= 80, r.out
    r = bwc("status", "--json")
    (x,) = json.loads(r.out)["overdue"]
    assert x["since"] == out.strftime("%Y-%m-%dT%H:%M:%SZ") and x["since_checkout"] is True


def test_the_monthly_audit_lists_the_months_stretches(
    bwc: Runner, any_home: Path, tmp_path: Path
) -> None:
    import_ledger(
        bwc,
        tmp_path,
        "1001,D-1,2026-10-10T08:00:00,2026-10-12T08:00:00\n"  # 48 h, returned undocked
        "110023,DSJ0042,2026-10-10T08:00:00,2026-10-11T08:00:00\n"  # docked in time
        "1003,D-3,2026-09-01T08:00:00,2026-09-03T08:00:00\n",  # another month
    )
    dock_once(any_home, tmp_path, local("2026-10-10T20:00:00"), local("2026-10-10T20:30:00"))
    # D-1's footage taken in by `bwc ingest` 26 h after its checkout, 22 h before its return
    ingest(any_home, tmp_path, "D-1", local("2026-10-11T10:00:00"))
    r = bwc("audit", "report", "--month", "2026-10", "--format", "json")
    assert r.code == 0, r.err
    data = json.loads(r.out)["cameras_not_docked"]
    assert data == {
        "limit_h": 24.0,
        "stretches": [
            {
                "device_id": "D-1",
                "officer_id": "1001",
                "since": "2026-10-10T00:00:00Z",
                "since_checkout": True,
                "until": "2026-10-11T02:00:00Z",
                "hours": 26.0,
            }
        ],
    }
    r = bwc("audit", "report", "--month", "2026-10")
    assert r.code == 0, r.err
    assert (
        "went longer than 24 h without docking" in r.err
        and "D-1 (officer 1001) 26 h, checked out 2026-10-10 08:00:00 +08:00, until "
        "2026-10-11 10:00:00 +08:00"
        in " ".join(r.err.split())
    ), r.err
    r = bwc("audit", "report", "--month", "2026-10", "--format", "html", "--lang", "zh")
    assert r.code == 0, r.err
    assert "已领用的记录仪 1 次超过 24 小时未接入" in r.out
    assert "D-1（警号 1001）26 小时，领用于 2026-10-10 08:00:00 +08:00" in r.out
    r = bwc("audit", "report", "--month", "2026-09", "--format", "json")
    assert [x["device_id"] for x in json.loads(r.out)["cameras_not_docked"]["stretches"]] == ["D-3"]


def test_migration_0014_indexes_up_and_down(bwc: Runner, any_home: Path) -> None:
    """0014 adds the (device_id, time) indexes the latest-dock look-ups use; its downgrade
    drops them; upgraded again, the station works."""
    from alembic import command
    from sqlalchemy import inspect

    from bwc.evidence import db

    def indexes(conn: Any) -> set[str]:
        found: set[str] = set()
        for table in ("dock_session", "item"):
            found |= {str(ix["name"]) for ix in inspect(conn).get_indexes(table)}
        return found & {"ix_dock_session_device", "ix_item_device_ingested"}

    st = Station.open(any_home, actor="test", passphrase=None)
    cfg = db._alembic_config()
    try:
        with st.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            assert indexes(conn) == {"ix_dock_session_device", "ix_item_device_ingested"}
            command.downgrade(cfg, "0014-1")
            assert indexes(conn) == set()
            command.upgrade(cfg, "heads")
            assert len(indexes(conn)) == 2
    finally:
        st.engine.dispose()
    r = bwc("status", "--json")
    assert r.code == 0 and json.loads(r.out)["overdue"] == [], r.err
