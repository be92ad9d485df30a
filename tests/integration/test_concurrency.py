"""Custody-log appends are serialized: concurrent appenders get consecutive indexes, no gaps,
no duplicates, and the log verifies afterwards.

* PostgreSQL: several threads, each its own Station (own engine, own connections) on one
  shared catalog, as several docking stations sharing one database would.
* SQLite: several processes appending to one home.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlmodel import col, select

from bwc.evidence import custody
from bwc.evidence.models import Checkpoint, Event, LogHead
from bwc.evidence.station import Station
from bwc.evidence.verify.catalog import verify_log
from tests.integration import pg

pytestmark = pytest.mark.integration

THREADS = 4
APPENDS = 25
PROCESSES = 4


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[pg.Databases]:
    with pg.databases() as dbs:
        yield dbs


@pytest.fixture
def pg_home(bwc, pg_databases: pg.Databases, monkeypatch, tmp_path: Path) -> Iterator[Path]:
    name = pg_databases.create()
    monkeypatch.setenv("BWC_CATALOG", pg.sqlalchemy_url(name))
    # One shared log, so one origin for every station on it (see test_postgres for the
    # default, which is per station).
    monkeypatch.setenv("BWC_LOG_ORIGIN", "bwc/city-test")
    r = bwc("init", "--station-id", "st-pg")
    assert r.code == 0, r.err
    yield tmp_path / "home"
    pg_databases.drop(name)


def _open(home: Path, actor: str) -> Station:
    return Station.open(home, actor=actor, passphrase=None)


def _log_rows(home: Path) -> tuple[list[Event], int]:
    st = _open(home, "reader")
    try:
        with st.session() as s:
            rows = list(s.exec(select(Event).order_by(col(Event.idx))))
            head = s.get(LogHead, 1)
            assert head is not None
            return rows, head.size
    finally:
        st.engine.dispose()


def _assert_serialized(home: Path, base: int, actors: list[str], per_actor: int) -> None:
    rows, head_size = _log_rows(home)
    total = base + len(actors) * per_actor
    idxs = [r.idx for r in rows]
    assert len(idxs) == len(set(idxs)), "duplicate indexes"
    assert idxs == list(range(total)), f"gaps: {sorted(set(range(total)) - set(idxs))}"
    assert head_size == total
    for actor in actors:
        mine = [custody.decode_leaf(r.leaf) for r in rows if r.actor == actor]
        assert len(mine) == per_actor, actor
        # Each appender's events are in the log in the order it appended them.
        assert [d.details["n"] for d in mine] == list(range(per_actor)), actor
        assert all(d.kind == "viewed" for d in mine)


def _checkpoint_and_verify(home: Path) -> None:
    st = _open(home, "checker")
    try:
        note = st.checkpoint()
        with st.session() as s:
            rep = verify_log(s, st.store, st.settings.log_origin, station_id=st.station_id)
            size = custody.log_size(s)
        assert rep.ok, rep.problems
        assert rep.size == size
        assert rep.latest is not None and rep.latest.size == size
        assert f"\n{size}\n" in note
    finally:
        st.engine.dispose()


# ---------------------------------------------------------------------------- PostgreSQL


def _append_many(home: Path, actor: str, barrier: threading.Barrier, n: int = APPENDS) -> int:
    station = _open(home, actor)
    try:
        barrier.wait(timeout=30)
        for i in range(n):
            with station.session() as s:
                custody.append_events(s, [station.event("viewed", None, n=i)])
        return n
    finally:
        station.engine.dispose()


def test_postgres_threads_on_separate_engines_get_consecutive_indexes(pg_home: Path) -> None:
    _rows, base = _log_rows(pg_home)
    actors = [f"station-thread-{t}" for t in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_append_many, pg_home, a, barrier) for a in actors]
        done = [f.result(timeout=120) for f in futures]
    assert done == [APPENDS] * THREADS
    _assert_serialized(pg_home, base, actors, APPENDS)
    _checkpoint_and_verify(pg_home)


def test_postgres_checkpoints_while_others_append(bwc, pg_home: Path, tmp_path: Path) -> None:
    """Two stations sharing the catalog sign checkpoints (the daemon does so periodically)
    while other stations append: every checkpoint must be of a consistent log state, stored
    in log order, and the log must verify."""
    # A second station on the same catalog: its own home, key and store.
    home_b = tmp_path / "home-b"
    r = bwc("--home", home_b, "init", "--station-id", "st-b")
    assert r.code == 0, r.err
    _rows, base = _log_rows(pg_home)
    actors = [f"station-thread-{t}" for t in range(THREADS)]
    barrier = threading.Barrier(THREADS + 2)
    stop = threading.Event()

    def checkpoints(home: Path) -> int:
        station = _open(home, "checkpointer")
        n = 0
        try:
            barrier.wait(timeout=30)
            while not stop.is_set():
                station.checkpoint()
                n += 1
            return n
        finally:
            station.engine.dispose()

    with ThreadPoolExecutor(THREADS + 2) as pool:
        cps = [pool.submit(checkpoints, h) for h in (pg_home, home_b)]
        futures = [pool.submit(_append_many, pg_home, a, barrier) for a in actors]
        try:
            done = [f.result(timeout=120) for f in futures]
        finally:
            stop.set()
        signed = [f.result(timeout=60) for f in cps]
    assert done == [APPENDS] * THREADS
    assert all(n > 0 for n in signed)
    _assert_serialized(pg_home, base, actors, APPENDS)

    for home in (pg_home, home_b):
        st = _open(home, "checker")
        try:
            with st.session() as s:
                rows = list(s.exec(select(Checkpoint).order_by(col(Checkpoint.id))))
                rep = verify_log(s, st.store, st.settings.log_origin, station_id=st.station_id)
        finally:
            st.engine.dispose()
        sizes = [r.size for r in rows]
        assert sizes == sorted(sizes), f"checkpoints stored out of log order: {sizes}"
        assert rep.ok, rep.problems
    _checkpoint_and_verify(pg_home)


def test_postgres_log_verify_while_others_append(bwc, pg_home: Path) -> None:
    """`bwc log verify` on a shared catalog while other stations append must not report
    tampering: it has to check one consistent state of the log."""
    _rows, base = _log_rows(pg_home)
    actors = [f"station-thread-{t}" for t in range(THREADS)]
    barrier = threading.Barrier(THREADS + 1)
    with ThreadPoolExecutor(THREADS) as pool:
        # Long enough for a good number of `bwc log verify` runs to overlap the appends.
        futures = [pool.submit(_append_many, pg_home, a, barrier, 4 * APPENDS) for a in actors]
        barrier.wait(timeout=30)
        runs: list[tuple[int, list[str]]] = []
        try:
            while not all(f.done() for f in futures) or not runs:
                r = bwc("log", "verify", "--json")
                runs.append((r.code, json.loads(r.out)["problems"] if r.out else [r.err]))
        finally:
            done = [f.result(timeout=120) for f in futures]
    assert done == [4 * APPENDS] * THREADS
    alarms = [p for code, p in runs if code != 0]
    assert not alarms, f"{len(alarms)} of {len(runs)} runs raised false alarms: {alarms[0]}"
    _assert_serialized(pg_home, base, actors, 4 * APPENDS)
    _checkpoint_and_verify(pg_home)


# ---------------------------------------------------------------------------- SQLite

_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bwc.evidence import custody
    from bwc.evidence.station import Station

    home, actor, go, n = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    station = Station.open(home, actor=actor, passphrase=None)
    (go.parent / f"ready-{actor}").touch()
    deadline = time.monotonic() + 60
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("start signal never came")
        time.sleep(0.005)
    for i in range(n):
        with station.session() as s:
            custody.append_events(s, [station.event("viewed", None, n=i)])
    station.engine.dispose()
    print("done", actor)
    """
)


def test_sqlite_processes_get_consecutive_indexes(home: Path, tmp_path: Path) -> None:
    _rows, base = _log_rows(home)
    go = tmp_path / "go"
    actors = [f"proc-{p}" for p in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(home), a, str(go), str(APPENDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in actors
    ]
    try:
        # Start them together, once all have imported bwc and opened the catalog.
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < PROCESSES:
            assert all(p.poll() is None for p in procs), "a worker died while starting"
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.startswith("done"), out + err
    _assert_serialized(home, base, actors, APPENDS)
    _checkpoint_and_verify(home)


def test_sqlite_threads_on_separate_engines_get_consecutive_indexes(home: Path) -> None:
    _rows, base = _log_rows(home)
    actors = [f"sqlite-thread-{t}" for t in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(_append_many, home, a, barrier) for a in actors]
        done = [f.result(timeout=120) for f in futures]
    assert done == [APPENDS] * THREADS
    _assert_serialized(home, base, actors, APPENDS)
    _checkpoint_and_verify(home)


def test_checkpoints_from_two_threads_of_one_process(home: Path) -> None:
    """Two threads of one process (a daemon's periodic checkpoint and an ingest finishing)
    sign checkpoints at the same time: both succeed and the log verifies."""
    barrier = threading.Barrier(2)

    def checkpoints() -> int:
        station = _open(home, "checkpointer")
        try:
            barrier.wait(timeout=30)
            for _ in range(20):
                station.checkpoint()
            return 20
        finally:
            station.engine.dispose()

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(checkpoints) for _ in range(2)]
        assert [f.result(timeout=60) for f in futures] == [20, 20]
    _checkpoint_and_verify(home)


def test_sqlite_session_is_one_write_transaction(home: Path) -> None:
    """Two engines: while one transaction holds the log, another appender waits for it
    instead of reading the same head (BEGIN IMMEDIATE), and gets the next index."""
    a = _open(home, "a")
    b = _open(home, "b")
    try:
        _rows, base = _log_rows(home)
        started = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with a.session() as s:
                custody.append_events(s, [a.event("viewed", None, n=0)])
                started.set()
                release.wait(timeout=30)

        t = threading.Thread(target=hold)
        t.start()
        assert started.wait(timeout=30)
        t0 = time.monotonic()
        timer = threading.Timer(0.5, release.set)
        timer.start()
        with b.session() as s:
            rows = custody.append_events(s, [b.event("viewed", None, n=0)])
        waited = time.monotonic() - t0
        t.join(timeout=30)
        timer.join()
        assert rows[0].idx == base + 1
        assert waited >= 0.3, "the second appender did not wait for the first"
    finally:
        a.engine.dispose()
        b.engine.dispose()
    _assert_serialized(home, base, ["a", "b"], 1)
