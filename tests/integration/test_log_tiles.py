"""The custody log's tiles in the catalog (issue 13): kept by appends, used for roots and
proofs, built once for a catalog made before them, and every kind of damage to them found
and named by `bwc log verify` and by the item-level checks."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bwc.evidence import custody
from bwc.evidence.db import _alembic_config
from bwc.evidence.merkle import MerkleTree, leaf_hash
from bwc.evidence.station import Station

pytestmark = pytest.mark.integration

EVENTS = 600  # level-0 tiles 0 and 1 full, 2 of width 88 (+ the item's); level 1 of width 2


def sql(home: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con, con:
        return list(con.execute(query, params))


@pytest.fixture
def home(bwc, tmp_path: Path, clip_cache: Path) -> tuple[Path, str]:
    h = tmp_path / "home"
    assert bwc("init", "--station-id", "st-tiles").code == 0
    st = Station.open(h, actor="clerk", passphrase=None)
    try:
        for start in range(0, EVENTS, 200):
            with st.session() as s:
                custody.append_events(
                    s, [st.event("viewed", None, n=n) for n in range(start, start + 200)]
                )
        st.checkpoint()
    finally:
        st.engine.dispose()
    clip = next(iter(sorted(clip_cache.iterdir())))
    r = bwc("ingest", clip, "--json")
    assert r.code == 0, r.err
    sha = sql(h, "SELECT sha256 FROM item")[0][0]
    return h, sha


def leaves(home: Path) -> list[bytes]:
    return [bytes(r[0]) for r in sql(home, "SELECT leaf FROM event ORDER BY idx")]


def test_tiles_are_the_trees(bwc, home: tuple[Path, str]) -> None:
    h, _sha = home
    size = sql(h, "SELECT size FROM log_head")[0][0]
    assert sql(h, "SELECT tiled_size FROM log_head")[0][0] == size == EVENTS + 2
    tiles = {(lv, i): bytes(d) for lv, i, d in sql(h, "SELECT level, idx, hashes FROM log_tile")}
    assert set(tiles) == {(1, 0)} and len(tiles[(1, 0)]) == 2 * 32
    mem = MerkleTree([leaf_hash(x) for x in leaves(h)])
    st = Station.open(h, actor="clerk", passphrase=None)
    try:
        with st.session() as s:
            tree = custody.tree(s, size)
            assert tree.root() == mem.root()
            for i in (0, 255, 256, 511, 512, size - 1):
                assert tree.inclusion_proof(i) == mem.inclusion_proof(i)
            assert tree.consistency_proof(300, size) == mem.consistency_proof(300)
    finally:
        st.engine.dispose()
    cps = sql(h, "SELECT size, root FROM checkpoint ORDER BY id")
    for n, root in cps:
        assert bytes(root) == mem.root(n)
    r = bwc("log", "verify")
    assert r.code == 0 and f"{size} events" in r.out, r.out + r.err


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("edit-hash", ("tile 1/0", "differs")),
        ("delete", ("tile 1/0", "missing")),
        ("truncate", ("tile 1/0", "differs")),
        ("extra", ("tiles at level 1",)),
    ],
)
def test_damaged_tiles_are_named(
    bwc, home: tuple[Path, str], how: str, words: tuple[str, ...]
) -> None:
    h, sha = home
    if how == "edit-hash":
        data = bytearray(sql(h, "SELECT hashes FROM log_tile WHERE level=1 AND idx=0")[0][0])
        data[5] ^= 1
        sql(h, "UPDATE log_tile SET hashes = ? WHERE level = 1 AND idx = 0", (bytes(data),))
    elif how == "delete":
        sql(h, "DELETE FROM log_tile WHERE level = 1 AND idx = 0")
    elif how == "truncate":
        sql(h, "UPDATE log_tile SET hashes = substr(hashes, 1, 32) WHERE level = 1 AND idx = 0")
    else:
        sql(h, "INSERT INTO log_tile (level, idx, hashes) VALUES (1, 7, ?)", (b"\0" * 32,))
    r = bwc("log", "verify")
    assert r.code == 1, r.out
    fails = [line for line in r.out.splitlines() if line.startswith("FAIL")]
    assert any(all(w in line for w in words) for line in fails), r.out
    if how != "extra":
        # the item's events are proven through that tile: the proof fails, and says so
        one = bwc("verify", sha[:12], "--no-record")
        assert one.code == 1
        assert f"FAIL {sha}: custody:" in one.out, one.out
        # and no checkpoint is signed over the damage
        r = bwc("log", "checkpoint")
        assert r.code != 0 and "bwc log verify" in r.err, r.out + r.err


def test_edited_leaf_with_its_tile_intact(bwc, home: tuple[Path, str]) -> None:
    h, _sha = home
    leaf = bytes(sql(h, "SELECT leaf FROM event WHERE idx = 300")[0][0])
    forged = leaf.replace(b'"actor":"clerk"', b'"actor":"mallory"')
    sql(h, "UPDATE event SET leaf = ?, actor = 'mallory' WHERE idx = 300", (forged,))
    r = bwc("log", "verify")
    assert r.code == 1
    assert "custody event #300: stored leaf hash does not match its leaf bytes" in r.out, r.out


def test_catalog_made_before_tiles_is_brought_up_by_init(bwc, home: tuple[Path, str]) -> None:
    """A catalog at the schema before tiles (events, no tiles): every command says to run
    `bwc init`, which builds the tiles in one streaming pass; then everything verifies."""
    from alembic import command

    from bwc.evidence.db import make_engine

    h, sha = home
    before = sql(h, "SELECT size, root FROM checkpoint ORDER BY id")
    engine = make_engine(f"sqlite:///{h / 'catalog.sqlite'}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")  # before tiles (and verification runs)
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert not sql(h, "SELECT name FROM sqlite_master WHERE name = 'log_tile'")
    r = bwc("list")
    assert r.code == 8 and "bwc init" in r.err, r.err
    r = bwc("init")
    assert r.code == 0, r.err
    assert sql(h, "SELECT tiled_size, size FROM log_head")[0] == (EVENTS + 2, EVENTS + 2)
    assert sql(h, "SELECT count(*) FROM signing_key WHERE announced_idx = 0")[0][0] == 1
    assert sql(h, "SELECT size, root FROM checkpoint ORDER BY id") == before
    assert bwc("log", "verify").code == 0
    r = bwc("verify", sha[:12], "--no-record")
    assert r.code == 0, r.out
    assert bwc("verify", "--all", "--no-record").code == 0


def test_an_item_is_proven_by_tiles_not_by_the_whole_log(bwc, home: tuple[Path, str]) -> None:
    """`bwc verify ID` reads a handful of tiles, not the log: with every leaf before the
    item's (but the one announcing the key) made unreadable, it still verifies."""
    h, sha = home
    sql(h, "UPDATE event SET leaf = x'00' WHERE idx BETWEEN 1 AND 599")
    r = bwc("verify", sha[:12], "--no-record")
    assert r.code == 0, r.out + r.err
    assert bwc("log", "verify").code == 1  # the whole-log audit still sees it


def test_a_rollback_behind_every_copy_is_caught_by_the_station(bwc, home: tuple[Path, str]) -> None:
    """The catalog and the store's checkpoint copy rolled back together: only this station's
    own memory of the newest checkpoint it verified tells."""
    h, sha = home
    assert bwc("verify", sha[:12], "--no-record").code == 0  # remembers the latest checkpoint
    cp_old = sql(h, "SELECT note FROM checkpoint ORDER BY id")[1][0]  # size EVENTS + 1
    newest = sql(h, "SELECT max(id) FROM checkpoint")[0][0]
    # the ingest's checkpoint undone everywhere but in this station's home
    sql(h, "DELETE FROM checkpoint WHERE id = ?", (newest,))
    (h / "store" / "log" / "checkpoint").write_text(cp_old)
    r = bwc("verify", sha[:12], "--no-record")
    assert r.code == 1
    assert "checkpoint this station verified last" in r.out and "rolled back" in r.out, r.out


# ---------------------------------------------------------------------------- the store's copy


def store_file(h: Path, rel: str) -> Path:
    return h / "store" / "log" / rel


def writable(p: Path) -> Path:
    p.chmod(0o644)
    return p


def test_the_store_holds_the_log_as_tiles(bwc, home: tuple[Path, str]) -> None:
    h, _sha = home
    size = sql(h, "SELECT size FROM log_head")[0][0]  # 602
    names = sorted(
        str(p.relative_to(h / "store" / "log"))
        for p in (h / "store" / "log").rglob("*")
        if p.is_file()
    )
    assert names == [
        "checkpoint",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/90",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/90",
    ], names  # the superseded partial tiles are gone; full ones are read-only
    assert store_file(h, "tile/0/000").stat().st_mode & 0o222 == 0
    leaves_ = leaves(h)
    hashes = b"".join(leaf_hash(x) for x in leaves_[:256])
    assert store_file(h, "tile/0/000").read_bytes() == hashes
    assert f"\n{size}\n" in store_file(h, "checkpoint").read_text()
    r = bwc("log", "verify", "--from-store", (h / "store").as_uri())
    assert r.code == 0 and f"{size} entries" in r.out, r.out + r.err


def test_the_store_copy_survives_the_catalog(bwc, home: tuple[Path, str], tmp_path: Path) -> None:
    """Disaster recovery: with the catalog lost, the store's copy verifies on its own, and a
    pinned key must have signed it."""
    h, _sha = home
    keys = bwc("keys", "list", "--json")
    verifier = json.loads(keys.out)[0]["verifier_key"]
    (h / "catalog.sqlite").unlink()
    url = (h / "store").as_uri()
    r = bwc("log", "verify", "--from-store", url, "--key", verifier)
    assert r.code == 0, r.out + r.err
    other = json.loads(keys.out)[0]["verifier_key"].replace("st-tiles", "st-other")
    r = bwc("log", "verify", "--from-store", url, "--key", other)
    assert r.code in (1, 2), r.out + r.err


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("tile-byte", ("log/tile/0/001", "differs")),
        ("tile-deleted", ("log/tile/0/001", "missing")),
        ("partial-truncated", ("log/tile/1/000.p/2",)),
        ("checkpoint-older", ("older than the catalog's latest",)),
    ],
)
def test_the_store_copy_disagreeing_is_named(
    bwc, home: tuple[Path, str], how: str, words: tuple[str, ...]
) -> None:
    h, _sha = home
    if how == "tile-byte":
        p = writable(store_file(h, "tile/0/001"))
        data = bytearray(p.read_bytes())
        data[100] ^= 1
        p.write_bytes(bytes(data))
    elif how == "tile-deleted":
        store_file(h, "tile/0/001").unlink()
    elif how == "partial-truncated":
        p = writable(store_file(h, "tile/1/000.p/2"))
        p.write_bytes(p.read_bytes()[:32])
    else:
        older = sql(h, "SELECT note FROM checkpoint ORDER BY id")[1][0]
        store_file(h, "checkpoint").write_text(older)
    r = bwc("log", "verify")
    assert r.code == 1, r.out
    fails = [line for line in r.out.splitlines() if line.startswith("FAIL")]
    assert any(all(w in line for w in words) for line in fails), r.out
    if how != "checkpoint-older":
        r = bwc("log", "verify", "--from-store", (h / "store").as_uri())
        assert r.code == 1, r.out
        assert any(words[0] in line for line in r.out.splitlines()), r.out


def test_an_entry_changed_in_the_store_is_named(bwc, home: tuple[Path, str]) -> None:
    h, _sha = home
    p = writable(store_file(h, "tile/entries/001"))
    p.write_bytes(p.read_bytes().replace(b'"actor":"clerk"', b'"actor":"clerX"', 1))
    r = bwc("log", "verify", "--from-store", (h / "store").as_uri())
    assert r.code == 1
    assert "log/tile/0/001 does not hold the hashes of the entries" in r.out, r.out
    assert "signed root differs" in r.out, r.out


# ---------------------------------------------------------------------------- incremental


def test_since_last_checks_only_what_came_after(bwc, home: tuple[Path, str], camera: Path) -> None:
    h, _sha = home
    r = bwc("log", "verify", "--since", "last")
    assert r.code == 3 and "--record" in r.err  # nothing recorded yet
    assert bwc("log", "verify", "--record").code == 0
    recorded = sql(h, "SELECT verified_idx, size FROM log_head")[0]
    (leaf,) = sql(h, "SELECT leaf FROM event WHERE idx = ?", (recorded[0],))[0]
    details = json.loads(leaf)["details"]
    assert json.loads(leaf)["kind"] == "log-verified" and details["size"] == recorded[0]
    assert bwc("ingest", camera, "--json").code == 0
    r = bwc("log", "verify", "--since", "last", "--json")
    assert r.code == 0, r.out + r.err
    data = json.loads(r.out)
    assert data["since"] == details["size"] and data["size"] > details["size"]
    # damage after the recorded check is found ...
    new = sql(h, "SELECT max(idx) FROM event")[0][0]
    sql(h, "UPDATE event SET actor = 'mallory' WHERE idx = ?", (new,))
    r = bwc("log", "verify", "--since", "last")
    assert r.code == 1 and f"custody event #{new}" in r.out, r.out
    sql(h, "UPDATE event SET actor = 'test-clerk' WHERE idx = ?", (new,))
    # ... and tiles that no longer give the recorded root make it check everything
    data_ = bytearray(sql(h, "SELECT hashes FROM log_tile WHERE level=1 AND idx=0")[0][0])
    data_[0] ^= 1
    sql(h, "UPDATE log_tile SET hashes = ? WHERE level = 1 AND idx = 0", (bytes(data_),))
    r = bwc("log", "verify", "--since", "last")
    assert r.code == 1 and "do not give the root the last full check recorded" in r.out, r.out


def test_a_forged_record_of_a_full_check_is_refused(bwc, home: tuple[Path, str]) -> None:
    h, _sha = home
    assert bwc("log", "verify", "--record").code == 0
    sql(h, "UPDATE log_head SET verified_idx = 5")  # a `viewed` event, not a log-verified one
    r = bwc("log", "verify", "--since", "last")
    assert r.code == 1 and "not a log-verified event" in r.err, r.err


# ---------------------------------------------------------------------------- acting on the log


@pytest.mark.parametrize(
    "command",
    [
        ("hold", "--reason", "court"),
        ("classify", "--class", "evidence", "--reason", "court"),
        ("attribute", "--officer", "110099", "--reason", "ledger"),
    ],
    ids=["hold", "classify", "attribute"],
)
def test_commands_check_the_item_against_the_log_before_acting(
    bwc, home: tuple[Path, str], command: tuple[str, ...]
) -> None:
    """A command that acts on an item checks its custody events against the latest signed
    checkpoint (proofs cut from tiles) first; on a damaged log it changes nothing."""
    h, sha = home
    verb, *rest = command
    ok = bwc(verb, sha[:12], *rest)
    assert ok.code == 0, ok.out + ok.err
    size = sql(h, "SELECT size FROM log_head")[0][0]
    # the item's ingested event rewritten (leaf and hash), as if its history were changed
    idx = sql(h, "SELECT idx FROM event WHERE item_sha256 = ? AND kind='ingested'", (sha,))[0][0]
    leaf = bytes(sql(h, "SELECT leaf FROM event WHERE idx = ?", (idx,))[0][0])
    forged = leaf.replace(b'"size":', b'"size":1', 1)
    sql(
        h,
        "UPDATE event SET leaf = ?, leaf_hash = ? WHERE idx = ?",
        (forged, leaf_hash(forged), idx),
    )
    again = bwc(verb, sha[:12], *rest) if verb != "hold" else bwc("release", sha[:12], *rest)
    assert again.code == 1, again.out + again.err
    assert "nothing was changed" in again.err and "not in the signed log" in again.err
    assert sql(h, "SELECT size FROM log_head")[0][0] == size
