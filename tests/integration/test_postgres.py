"""The catalog on PostgreSQL: schema by Alembic migration, the whole ingest/verify/show cycle,
UTC times, idempotent init, and tampering with catalog rows detected.

Every test gets a fresh database ``bwc_test_<hex>`` (its session time zone deliberately not
UTC), dropped WITH (FORCE) afterwards; the session fixture drops any left over.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bwc.evidence.manifest import parse_manifest
from bwc.evidence.models import Checkpoint, Event, Item, SigningKey
from bwc.evidence.station import Station
from tests.integration import pg

pytestmark = pytest.mark.integration

TABLES = {"item", "event", "log_head", "checkpoint", "signing_key", "alembic_version"}


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[pg.Databases]:
    with pg.databases() as dbs:
        yield dbs


@pytest.fixture
def pg_db(pg_databases: pg.Databases, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database, and BWC_CATALOG pointing at it (the settings' env override)."""
    name = pg_databases.create()
    monkeypatch.setenv("BWC_CATALOG", pg.sqlalchemy_url(name))
    yield name
    pg_databases.drop(name)


@pytest.fixture
def pg_home(bwc, pg_db: str, tmp_path: Path) -> Path:
    r = bwc("init", "--station-id", "st-pg")
    assert r.code == 0, r.err
    return tmp_path / "home"


def _head_revisions() -> set[str]:
    """Every head of the migration history (parts of the schema are separate branches)."""
    from alembic.script import ScriptDirectory

    from bwc.evidence import db

    heads = set(ScriptDirectory.from_config(db._alembic_config()).get_heads())
    assert heads
    return heads


def _catalog_state(dbname: str) -> dict[str, object]:
    with pg.connect(dbname) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        head = conn.execute("SELECT id, size FROM log_head").fetchall()
        n_events = conn.execute("SELECT count(*) FROM event").fetchone()
        n_keys = conn.execute("SELECT count(*) FROM signing_key").fetchone()
        n_cps = conn.execute("SELECT count(*) FROM checkpoint").fetchone()
    return {
        "tables": tables,
        "version": version,
        "head": head,
        "events": n_events[0] if n_events else None,
        "keys": n_keys[0] if n_keys else None,
        "checkpoints": n_cps[0] if n_cps else None,
    }


def _ingest(bwc, camera: Path) -> list[str]:
    r = bwc("ingest", camera, "--officer", "110023", "--device", "DSJ0042", "--json")
    assert r.code == 0, r.out + r.err
    data = json.loads(r.out)
    assert data["ingested"] == 4, data
    assert data["errors"] == 0, data
    return [x["sha256"] for x in data["results"] if x["status"] == "ingested"]


def test_init_creates_schema_by_migration_and_is_idempotent(
    bwc, pg_db: str, tmp_path: Path
) -> None:
    r = bwc("init", "--station-id", "st-pg")
    assert r.code == 0, r.err
    home = tmp_path / "home"
    # The catalog is PostgreSQL, not the embedded SQLite file.
    assert not (home / "catalog.sqlite").exists()

    state = _catalog_state(pg_db)
    assert state["tables"] >= TABLES  # type: ignore[operator]
    assert {v for (v,) in state["version"]} == _head_revisions()
    assert state["head"] == [(1, 1)]  # the key-rotated event announcing the first key
    assert state["events"] == 1
    assert state["keys"] == 1
    assert state["checkpoints"] == 1

    # Time columns are real timestamptz columns, byte columns bytea.
    with pg.connect(pg_db) as conn:
        types = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type "
                "FROM information_schema.columns WHERE table_schema = 'public'"
            ).fetchall()
        )
    assert types["item.ingested_at"] == "timestamp with time zone"
    assert types["event.at"] == "timestamp with time zone"
    assert types["event.leaf"] == "bytea"
    assert types["event.idx"] == "bigint"

    key_before = (home / "keys" / "active").read_text()
    r = bwc("init")
    assert r.code == 0, r.err
    assert "already initialised" in r.out
    r = bwc("init", "--station-id", "st-pg")
    assert r.code == 0, r.err
    assert (home / "keys" / "active").read_text() == key_before
    assert _catalog_state(pg_db) == state

    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err


def test_ingest_verify_show_on_postgres(bwc, pg_home: Path, pg_db: str, camera: Path) -> None:
    shas = _ingest(bwc, camera)
    assert not (pg_home / "catalog.sqlite").exists()

    # Re-docking the same camera: exactly once, four sightings.
    r = bwc("ingest", camera, "--officer", "110023", "--device", "DSJ0042", "--json")
    assert r.code == 0, r.out + r.err
    again = json.loads(r.out)
    assert again["ingested"] == 0
    assert again["seen_again"] == 4

    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    assert "4 of 4 items verified" in r.out

    r = bwc("log", "verify", "--json")
    assert r.code == 0, r.out + r.err
    log = json.loads(r.out)
    assert log["ok"] is True
    assert log["problems"] == []
    # 1 key-rotated + 4 ingested + 4 seen-again + 1 verification run
    assert log["size"] == 10

    r = bwc("list", "--json", "--officer", "110023")
    assert r.code == 0, r.err
    listed = json.loads(r.out)
    assert sorted(i["sha256"] for i in listed) == sorted(shas)
    r = bwc("list", "--json", "--since", "2000-01-01")
    assert r.code == 0, r.err
    assert len(json.loads(r.out)) == 4
    r = bwc("list", "--json", "--since", "2999-01-01T00:00:00+08:00")
    assert r.code == 0, r.err
    assert json.loads(r.out) == []

    for sha in shas:
        r = bwc("show", sha[:12], "--json")
        assert r.code == 0, r.out + r.err
        data = json.loads(r.out)
        assert data["sha256"] == sha
        assert data["verified"] is True
        assert all(c["ok"] for c in data["checks"]), data["checks"]
        kinds = [e["kind"] for e in data["events"]]
        assert kinds == ["ingested", "seen-again"]  # a run is one event, not one per item
        assert [(v["scope"], v["ok"]) for v in data["verifications"]] == [("all", True)]
        assert data["ingested_at"].endswith("Z")
        assert all(e["at"].endswith("Z") for e in data["events"])
        manifest = json.loads(data["manifest"])
        assert manifest["sha256"] == sha
        assert manifest["ingested_at"] == data["ingested_at"]
        assert manifest["officer_id"] == "110023"
        if data["path"].endswith(".MP4"):
            # The container's creation_time, as UTC (conftest sets 2026-10-15T01:30:0xZ).
            assert data["recorded_start"].startswith("2026-10-15T01:30:0")
            assert data["recorded_start"].endswith("Z")

    r = bwc("log", "events", "--json")
    assert r.code == 0, r.err
    events = json.loads(r.out)
    assert [e["index"] for e in events] == list(range(len(events)))


def test_list_sorts_and_filters_by_recording_time_on_postgres(
    bwc, pg_home: Path, pg_db: str, tmp_path: Path
) -> None:
    """Issue 15, point 5: by recording time, items without one last (NULLs sort last on
    PostgreSQL too), and the --recorded-from/--recorded-to bounds in local time."""
    names = {
        "late": "DSJ0042_110023_20261015093012_0003.MP4",
        "notime": "GPS0001.csv",
        "early": "DSJ0042_110023_20261014230000_0001.MP4",
    }
    for key, name in names.items():  # ingested in this order, not the recording order
        (tmp_path / key).mkdir()
        (tmp_path / key / name).write_text(f"{key}\n")
        r = bwc("ingest", tmp_path / key)
        assert r.code == 0, r.out + r.err
    r = bwc("list", "--json")
    assert r.code == 0, r.err
    assert [i["path"] for i in json.loads(r.out)] == [names[k] for k in ("early", "late", "notime")]
    r = bwc("list", "--json", "--recorded-from", "2026-10-15", "--recorded-to", "2026-10-15")
    assert r.code == 0, r.err
    assert [i["path"] for i in json.loads(r.out)] == [names["late"]]


def test_times_come_back_timezone_aware_utc(bwc, pg_home: Path, pg_db: str, camera: Path) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    _ingest(bwc, camera)
    after = datetime.now(UTC) + timedelta(seconds=1)

    # The session time zone of this database is not UTC: PostgreSQL hands back +08:00 times.
    with pg.connect(pg_db) as conn:
        raw = conn.execute("SELECT ingested_at FROM item LIMIT 1").fetchone()
    assert raw is not None
    assert raw[0].utcoffset() == timedelta(hours=8)

    station = Station.open(pg_home, actor="t", passphrase=None)
    try:
        with Session(station.engine) as s:
            items = list(s.exec(select(Item)))
            events = list(s.exec(select(Event)))
            keys = list(s.exec(select(SigningKey)))
            cps = list(s.exec(select(Checkpoint)))
    finally:
        station.engine.dispose()
    assert len(items) == 4
    values: list[datetime] = []
    for it in items:
        values.append(it.ingested_at)
        assert before <= it.ingested_at <= after
        m = parse_manifest(it.manifest)
        # Same instant, same representation, down to the microsecond.
        assert it.ingested_at == m.ingested_at
        assert it.recorded_start == m.recorded_start
        assert it.recorded_end == m.recorded_end
        if it.recorded_start is not None:
            values.append(it.recorded_start)
        if it.recorded_end is not None:
            values.append(it.recorded_end)
    values += [e.at for e in events] + [k.created_at for k in keys] + [c.created_at for c in cps]
    assert len(values) > len(items)
    for v in values:
        assert v.tzinfo is UTC or v.tzinfo == UTC, v
        assert v.utcoffset() == timedelta(0), v


def test_tampered_officer_row_is_detected(bwc, pg_home: Path, pg_db: str, camera: Path) -> None:
    shas = _ingest(bwc, camera)
    victim = sorted(shas)[1]
    with pg.connect(pg_db) as conn:
        cur = conn.execute("UPDATE item SET officer_id = %s WHERE sha256 = %s", ("999999", victim))
        assert cur.rowcount == 1

    r = bwc("verify", "--all", "--no-record")
    assert r.code == 1, r.out + r.err
    fails = [line for line in r.out.splitlines() if "FAIL" in line]
    assert fails, r.out
    assert all(victim in line for line in fails), r.out
    assert any("officer" in line and "999999" in line for line in fails), r.out
    assert "3 of 4 items verified" in r.out

    r = bwc("show", victim[:10], "--json")
    assert r.code == 1, r.out + r.err
    data = json.loads(r.out)
    assert data["verified"] is False
    bad = [c for c in data["checks"] if not c["ok"]]
    assert [c["name"] for c in bad] == ["catalog"]
    assert "officer" in bad[0]["detail"]

    # The untouched items still verify on their own.
    others = [s for s in shas if s != victim]
    r = bwc("verify", *[s[:12] for s in others], "--no-record")
    assert r.code == 0, r.out + r.err


def test_tampered_event_row_is_detected(bwc, pg_home: Path, pg_db: str, camera: Path) -> None:
    _ingest(bwc, camera)
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err
    with pg.connect(pg_db) as conn:
        cur = conn.execute("UPDATE event SET actor = 'someone-else' WHERE idx = 2")
        assert cur.rowcount == 1
    r = bwc("log", "verify", "--json")
    assert r.code == 1, r.out + r.err
    problems = json.loads(r.out)["problems"]
    assert any("#2" in p and "actor" in p for p in problems), problems

    # Deleting the last event (and fixing up the head) is caught by the signed checkpoint.
    with pg.connect(pg_db) as conn:
        conn.execute("UPDATE event SET actor = 'test-clerk' WHERE idx = 2")
        size = conn.execute("SELECT size FROM log_head").fetchone()
        assert size is not None
        conn.execute("DELETE FROM event WHERE idx = %s", (size[0] - 1,))
        conn.execute("UPDATE log_head SET size = size - 1")
    r = bwc("log", "verify", "--json")
    assert r.code == 1, r.out + r.err
    problems = json.loads(r.out)["problems"]
    n = size[0]
    assert any(f"signed for {n} events" in p and "deleted" in p for p in problems), problems


def test_two_stations_share_one_catalog(
    bwc, pg_db: str, tmp_path: Path, camera: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The city deployment: several stations, one PostgreSQL catalog, one store, each station
    set up with a plain `bwc init`. It is one custody log: every station verifies all of it."""
    monkeypatch.setenv("BWC_STORE", (tmp_path / "shared-store").as_uri())
    home_a, home_b = tmp_path / "home-a", tmp_path / "home-b"
    r = bwc("--home", home_a, "init", "--station-id", "st-a")
    assert r.code == 0, r.err
    r = bwc("--home", home_b, "init", "--station-id", "st-b")
    assert r.code == 0, r.err
    r = bwc("--home", home_a, "ingest", camera / "DCIM", "--officer", "110023", "--json")
    assert r.code == 0, r.out + r.err
    r = bwc("--home", home_b, "ingest", camera / "GPS0001.csv", "--officer", "110024", "--json")
    assert r.code == 0, r.out + r.err

    r = bwc("--home", home_a, "keys", "list", "--json")
    assert r.code == 0, r.err
    assert sorted(k["station_id"] for k in json.loads(r.out)) == ["st-a", "st-b"]
    for home in (home_a, home_b):
        r = bwc("--home", home, "log", "verify", "--json")
        assert r.code == 0, f"{home.name}: {json.loads(r.out)['problems'] if r.out else r.err}"
        r = bwc("--home", home, "verify", "--all", "--no-record")
        assert r.code == 0, f"{home.name}: {r.out + r.err}"
        assert "4 of 4 items verified" in r.out
