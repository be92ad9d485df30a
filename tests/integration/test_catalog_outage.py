"""The catalog away for a while under a running `bwc daemon` (issue 12, defect 7): SQLite
locked past the wait by another process, PostgreSQL refusing and dropping connections. The
daemon keeps running, files wait in the spool, everything is committed exactly once after,
and `bwc status` says so meanwhile. Long readers on SQLite never take the write lock."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from tests.conftest import Result
from tests.integration import pg
from tests.integration.daemon_util import (
    BWC_EXE,
    Catalog,
    DaemonProcess,
    age_tree,
    set_daemon_config,
    sha256_file,
    wait_until,
    write_random,
)

pytestmark = pytest.mark.integration

Runner = Callable[..., Result]
WAIT = 1.0  # catalog_wait_seconds: how long a command waits for the lock before giving up


def set_catalog_wait(home: Path, seconds: float) -> None:
    cfg = home / "bwc.toml"
    text = cfg.read_text("utf-8")
    assert "catalog_wait_seconds = 60.0" in text
    cfg.write_text(text.replace("catalog_wait_seconds = 60.0", f"catalog_wait_seconds = {seconds}"))


@pytest.fixture
def outage_home(home: Path) -> Path:
    set_daemon_config(home, stable_seconds=0.2, rescan_seconds=0.2, retry_max_seconds=1.0)
    set_catalog_wait(home, WAIT)
    return home


@pytest.fixture
def camera_files(tmp_path: Path, clip_cache: Path) -> Path:
    """A camera (built outside the dock): three clips and a note."""
    cam = tmp_path / "staging" / "cam-1"
    cam.mkdir(parents=True)
    for clip in sorted(clip_cache.iterdir()):
        shutil.copy(clip, cam / clip.name)
    (cam / "notes.txt").write_bytes(b"docked while the catalog was away\n")
    age_tree(cam)
    return cam


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        d.kill()


def more_files(camera: Path) -> None:
    """Enough files that an outage begun after the first commit comes mid-work."""
    for i in range(16):
        write_random(camera / f"GPS{i:04d}.bin", 64 << 10, seed=i)
    age_tree(camera)


def status_json(home: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`bwc status --json` as its own process (as an operator runs it)."""
    r = subprocess.run(
        [str(BWC_EXE), "status", "--json"],
        env={**os.environ, "BWC_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def hold_write_lock(home: Path) -> sqlite3.Connection:
    """Another process's write transaction (as a long `bwc` command holding the lock)."""
    conn = sqlite3.connect(home / "catalog.sqlite", timeout=30, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def committed_once(cat: Catalog, shas: set[str]) -> None:
    items = cat.items()
    assert set(items) == shas
    ingested = [e for e in cat.event_kinds() if e[1] == "ingested"]
    assert sorted(e[2] for e in ingested if e[2]) == sorted(shas), "each item ingested once"


@pytest.mark.slow  # ~10-20 s: early in `make test` (tests/conftest.py)
def test_daemon_survives_a_locked_sqlite_catalog(
    bwc: Runner, outage_home: Path, camera_files: Path, tmp_path: Path, daemons: list[Any]
) -> None:
    """(a) Another process holds the SQLite write lock far longer than the daemon waits
    for it, while a camera is docked: the daemon keeps running (it exited 10 before),
    `bwc status` shows the outage, and once the lock is gone every file is committed once."""
    home = outage_home
    dock = tmp_path / "dock"
    dock.mkdir()
    more_files(camera_files)
    shas = {sha256_file(p) for p in camera_files.iterdir()}
    d = DaemonProcess(home, [dock], tmp_path / "daemon.log").start()
    daemons.append(d)
    d.wait_ready()
    cat = Catalog(home)

    os.rename(camera_files, dock / "cam-1")
    wait_until(lambda: cat.item_count() >= 1, 30, "the first commit", daemon=d)
    lock = hold_write_lock(home)  # mid-work: files are being staged, stored, committed
    try:
        wait_until(lambda: "catalog unavailable" in d.this_run_log(), 20, "the outage", daemon=d)
        time.sleep(4 * WAIT)  # several waits past the timeout, with retries
        assert d.running, d.log_tail()
        st = status_json(home)
        assert st["catalog"]["ok"] is False, st
        assert st["catalog"]["since"], st
        assert "locked" in str(st["catalog"]["detail"]), st
        assert cat.item_count() < len(shas)
    finally:
        lock.rollback()
        lock.close()

    wait_until(
        lambda: cat.item_count() == len(shas) and cat.active() == 0,
        60,
        "every file committed after the lock is gone",
        daemon=d,
        detail=lambda: "\n".join(str(j) for j in cat.jobs()),
    )
    wait_until(lambda: status_json(home)["catalog"]["ok"], 20, "the outage to end", daemon=d)
    assert d.terminate() == 0, d.log_tail()
    committed_once(cat, shas)
    assert not [j for j in cat.jobs() if j.state == "failed"]
    assert not list((home / "spool" / "jobs").iterdir())
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err


def test_long_readers_do_not_take_the_write_lock(bwc: Runner, home: Path, camera: Path) -> None:
    """(c) A long reader (a snapshot, as `bwc verify --all` and `audit report` use, and the
    opening of any station) never holds the write lock: a writer gets through meanwhile; and
    `bwc status` answers while another process holds the write lock."""
    from sqlmodel import select

    from bwc.evidence.models import Item
    from bwc.evidence.station import Station

    set_catalog_wait(home, WAIT)
    assert bwc("ingest", str(camera)).code == 0
    st = Station.open(home, actor="reader", passphrase=None)
    try:
        with st.session(snapshot=True) as s:
            before = len(s.exec(select(Item)).all())
            with closing(sqlite3.connect(home / "catalog.sqlite", timeout=0.5)) as w:
                w.execute("BEGIN IMMEDIATE")
                w.execute("UPDATE log_head SET size = size WHERE id = 1")
                w.commit()
            r = bwc("log", "checkpoint")  # a real writer, its own station, in the snapshot
            assert r.code == 0, r.err
            assert len(s.exec(select(Item)).all()) == before
    finally:
        st.engine.dispose()

    lock = hold_write_lock(home)
    try:
        t0 = time.monotonic()
        data = status_json(home)
        assert time.monotonic() - t0 < 30
        assert data["backlog"] is not None and data["catalog"]["ok"] is True
        # commands that only read answer under the lock (they used to wait for it, and
        # to hold it themselves for as long as they read: `bwc list` of a city's catalog)
        for args in (
            ("verify", "--all", "--no-record"),
            ("list",),
            ("log", "events"),
            ("keys", "list"),
            ("devices", "list"),
            ("audit", "report", "--month", "2026-10"),
        ):
            r = bwc(*args)
            assert r.code == 0, (args, r.out + r.err)
    finally:
        lock.rollback()
        lock.close()


# ------------------------------------------------------------------------------ PostgreSQL


def _allow_connections(db: str, allow: bool) -> None:
    with pg.connect(pg.ADMIN_DB) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(db), sql.SQL("true" if allow else "false")
            )
        )
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (db,),
            )


@pytest.mark.slow  # ~10-20 s: early in `make test` (tests/conftest.py)
def test_daemon_survives_postgresql_going_away(
    tmp_path: Path, camera_files: Path, daemons: list[Any]
) -> None:
    """(b) The shared PostgreSQL catalog refuses connections and drops the daemon's for a
    few seconds while a camera is being taken: the daemon keeps running and commits every
    file exactly once after."""
    with pg.databases() as dbs:
        db = dbs.create()
        home = tmp_path / "pg-home"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BWC_")},
            "BWC_HOME": str(home),
            "BWC_CATALOG": pg.sqlalchemy_url(db),
        }
        r = subprocess.run(
            [str(BWC_EXE), "init", "--station-id", "st-pg"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        set_daemon_config(home, stable_seconds=0.2, rescan_seconds=0.2, retry_max_seconds=1.0)
        set_catalog_wait(home, 2.0)
        (home / "bwc.toml").write_text(
            (home / "bwc.toml")
            .read_text()
            .replace("# catalog = ", f'catalog = "{pg.sqlalchemy_url(db)}"\n# catalog = ', 1)
        )
        dock = tmp_path / "dock"
        dock.mkdir()
        more_files(camera_files)
        shas = {sha256_file(p) for p in camera_files.iterdir()}
        d = DaemonProcess(home, [dock], tmp_path / "daemon.log").start()
        daemons.append(d)
        d.wait_ready()

        def items() -> int:
            with pg.connect(db) as c:
                row = c.execute("SELECT count(*) FROM item").fetchone()
            return int(row[0]) if row else 0

        # refused before the camera comes: no dock session can even be opened
        _allow_connections(db, False)
        try:
            os.rename(camera_files, dock / "cam-1")
            wait_until(
                lambda: "catalog unavailable" in d.this_run_log(), 20, "the outage", daemon=d
            )
            time.sleep(3)
            assert d.running, d.log_tail()
            hb = json.loads((home / "daemon.json").read_text())
            assert hb["catalog_ok"] is False and hb["catalog_down_since"], hb
            r = subprocess.run(
                [str(BWC_EXE), "status"],
                env={**os.environ, "BWC_HOME": str(home)},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert r.returncode == 8, r.stdout + r.stderr  # the catalog cannot be opened
            assert "daemon: catalog unavailable since" in r.stderr, r.stderr
        finally:
            _allow_connections(db, True)
        wait_until(lambda: items() >= 1, 60, "the first commit", daemon=d)
        # and in the middle of the work: its connections dropped, new ones refused a while
        _allow_connections(db, False)
        time.sleep(3)
        assert d.running, d.log_tail()
        _allow_connections(db, True)
        wait_until(
            lambda: items() == len(shas),
            60,
            "every file committed after PostgreSQL is back",
            daemon=d,
        )
        wait_until(
            lambda: json.loads((home / "daemon.json").read_text()).get("catalog_ok"),
            30,
            "the daemon to see the catalog again",
            daemon=d,
        )
        assert d.terminate() == 0, d.log_tail()
        with pg.connect(db) as c:
            got = {r[0] for r in c.execute("SELECT sha256 FROM item")}
            ingested = [
                r[0] for r in c.execute("SELECT item_sha256 FROM event WHERE kind = 'ingested'")
            ]
            active = c.execute(
                "SELECT count(*) FROM ingest_job WHERE state NOT IN "
                "('released', 'ignored', 'failed', 'abandoned')"
            ).fetchone()
            failed = c.execute("SELECT count(*) FROM ingest_job WHERE state = 'failed'").fetchone()
        assert got == shas
        assert sorted(ingested) == sorted(shas), "each item ingested once"
        assert active == (0,) and failed == (0,)
        r = subprocess.run(
            [str(BWC_EXE), "verify", "--all"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr
