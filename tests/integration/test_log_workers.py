"""`bwc log verify` with worker processes (``rowworkers``): for a large log, workers read
and check rows beside the main process. Whatever the log holds, damaged or not, the
report must be exactly the one the single-process pass gives: same problems, same root.
Small batches here, so that damage falls inside, at the start and at the end of batches."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bwc.evidence import custody, rowworkers
from bwc.evidence.station import Station
from bwc.evidence.verify import catalog
from bwc.evidence.verify.core import LogReport
from tests.integration import pg

pytestmark = pytest.mark.integration

BATCH = 16


def sql(home: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con, con:
        return list(con.execute(query, params))


def build(home: Path, bwc: Callable[..., Any]) -> None:
    """~300 events: plain ones, ingested ones (items with catalog rows), a key rotation in
    the middle, checkpoints on the way."""
    assert bwc("--home", home, "init", "--station-id", "st-w").code == 0
    st = Station.open(home, actor="clerk", passphrase=None)
    try:
        for start in range(0, 300, 100):
            with st.session() as s:
                custody.append_events(
                    s, [st.event("viewed", f"{n:064x}", n=n) for n in range(start, start + 100)]
                )
            st.checkpoint()
            if start == 100:
                st.rotate_key()
    finally:
        st.engine.dispose()


def report(home: Path, workers: int) -> LogReport:
    st = Station.open(home, actor="clerk", passphrase=None)
    try:
        with st.session(snapshot=True) as s:
            return catalog.verify_log(s, st.store, workers=workers)
    finally:
        st.engine.dispose()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Batches of BATCH rows, and a count of the batches workers sent."""
    monkeypatch.setattr(catalog, "_BATCH", BATCH)
    sent: list[int] = []
    real = rowworkers.checked_batches

    def counted(*args: Any) -> Iterator[Any]:
        for got in real(*args):
            sent.append(got[0])
            yield got

    monkeypatch.setattr(rowworkers, "checked_batches", counted)
    yield sent


def same(home: Path, sent: list[int]) -> LogReport:
    one, two = report(home, 0), report(home, 2)
    assert sent, "the workers were not used"
    assert (two.problems, two.size, two.root, two.checkpoints) == (
        one.problems,
        one.size,
        one.root,
        one.checkpoints,
    )
    return two


def test_a_sound_log_gives_the_same_report(bwc, tmp_path: Path, small_batches: list[int]) -> None:
    h = tmp_path / "w"
    build(h, bwc)
    rep = same(h, small_batches)
    assert rep.problems == [] and rep.size == 300 + 2  # + key-rotated, its checkpoint's none
    assert len(small_batches) == -(-rep.size // BATCH)


DAMAGE = {
    "leaf edited": "UPDATE event SET leaf = CAST(replace(CAST(leaf AS TEXT), '{\"n\":', "
    "'{\"m\":') AS BLOB) WHERE idx = 40",
    "column edited": "UPDATE event SET actor = 'mallory' WHERE idx = 47",
    "hash edited": "UPDATE event SET leaf_hash = zeroblob(32) WHERE idx = 16",
    "first of a batch deleted": "DELETE FROM event WHERE idx = 32",
    "last of a batch deleted": "DELETE FROM event WHERE idx = 63",
    "a batch deleted": "DELETE FROM event WHERE idx >= 64 AND idx < 80",
    "last event deleted": "DELETE FROM event WHERE idx = (SELECT max(idx) FROM event)",
    "garbled leaf": "UPDATE event SET leaf = X'7b7b7b' WHERE idx = 90",
    "time unreadable": "UPDATE event SET at = 'yesterday' WHERE idx = 5",
    "added outside bwc": "INSERT INTO event (idx, leaf, leaf_hash, kind, at, actor, station_id, "
    "item_sha256) SELECT 5000, leaf, leaf_hash, kind, at, actor, station_id, item_sha256 "
    "FROM event WHERE idx = 3",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_gives_the_same_report(
    bwc, tmp_path: Path, small_batches: list[int], damage: str
) -> None:
    h = tmp_path / "w"
    build(h, bwc)
    sql(h, DAMAGE[damage])
    rep = same(h, small_batches)
    assert rep.problems, damage


def test_an_ingested_item_missing_is_named_by_the_workers(
    bwc, tmp_path: Path, small_batches: list[int], clip_cache: Path
) -> None:
    h = tmp_path / "w"
    build(h, bwc)
    clip = next(iter(sorted(clip_cache.iterdir())))
    assert bwc("--home", h, "ingest", clip).code == 0
    sha = sql(h, "SELECT sha256 FROM item")[0][0]
    sql(h, "DELETE FROM item WHERE sha256 = ?", (sha,))
    rep = same(h, small_batches)
    assert any(sha in p and "catalog row is missing" in p for p in rep.problems)


def test_a_failing_worker_leaves_the_rest_to_the_main_process(
    bwc, tmp_path: Path, small_batches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = tmp_path / "w"
    build(h, bwc)
    monkeypatch.setattr(catalog, "_address", lambda s: ("sqlite", str(tmp_path / "nothing")))
    rep = report(h, 2)
    assert rep.problems == [] and rep.size == 302 and small_batches == []


def test_postgresql_workers(bwc, tmp_path: Path, small_batches: list[int]) -> None:
    pg.require_server()
    with pg.databases() as dbs, pytest.MonkeyPatch.context() as mp:
        db = dbs.create()
        mp.setenv("BWC_CATALOG", pg.sqlalchemy_url(db))
        h = tmp_path / "w"
        build(h, bwc)
        assert same(h, small_batches).problems == []
        with pg.connect(db) as conn:
            conn.execute("UPDATE event SET actor = 'mallory' WHERE idx = 47")
            conn.execute("DELETE FROM event WHERE idx = 80")
        assert len(same(h, small_batches).problems) >= 2
