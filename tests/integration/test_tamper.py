"""Tamper detection (DESIGN invariant 4): after a normal ingest, edit one thing in the real
store files or the real SQLite catalog and check that `bwc verify` / `bwc log verify` exit 1,
name the affected item (or event, key, checkpoint) and say what is wrong, while untampered
items still verify.

One pristine home (init + `bwc ingest <camera> --officer 110023 --device DSJ0042`) is built
per module and copied for each test: the catalog with SQLite's backup API, the rest file by
file. After the ingest the log holds 5 events (#0 key-rotated, #1..#4 one `ingested` per
item) and 2 checkpoints (id 1 of size 1 from `bwc init`, id 2 of size 5 from the ingest); the
store's `log/checkpoint` holds the second.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bwc import cli
from bwc.config.settings import load_settings
from bwc.evidence import custody, note
from bwc.evidence import keys as keyfiles
from bwc.evidence.canonical import canonical_json
from bwc.evidence.merkle import MerkleTree, leaf_hash
from bwc.evidence.signing import key_id_for, raw_public

pytestmark = pytest.mark.integration

OFFICER = "110023"
DEVICE = "DSJ0042"
STATION = "st-test"
ACTOR = "test-clerk"
DB_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime in SQLite
CLIP = "DCIM/DSJ0042_110023_20261015093001_0001.MP4"
OTHER_CLIP = "DCIM/DSJ0042_110023_20261015093002_0002.MP4"

# ---------------------------------------------------------------------------- the homes


def _cli(*args: str | Path) -> int:
    """Run the CLI in-process without capsys (for the module-scoped pristine home)."""
    try:
        cli.main([str(a) for a in args])
    except SystemExit as e:
        return int(e.code or 0)
    finally:
        cli._state.clear()
    return 0


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, clip_cache: Path) -> Path:
    """A home after `bwc init` and one normal ingest of a docked camera."""
    root = tmp_path_factory.mktemp("pristine")
    cam = root / "dock" / DEVICE
    (cam / "DCIM").mkdir(parents=True)
    for clip in sorted(clip_cache.iterdir()):
        shutil.copy(clip, cam / "DCIM" / clip.name)
    (cam / "GPS0001.csv").write_text("time,lat,lon\n2026-10-15T01:31:00Z,31.23,121.47\n")
    (cam / "System Volume Information").mkdir()
    (cam / "System Volume Information" / "IndexerVolumeGuid").write_text("x")
    home = root / "home"
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("BWC_"):
                mp.delenv(key)
        mp.delenv("CREDENTIALS_DIRECTORY", raising=False)
        mp.setenv("BWC_HOME", str(home))
        mp.setenv("BWC_ACTOR", ACTOR)
        assert _cli("init", "--station-id", STATION) == 0
        assert _cli("ingest", cam, "--officer", OFFICER, "--device", DEVICE) == 0
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con:
        assert con.execute("SELECT count(*) FROM item").fetchone() == (4,)
        assert con.execute("SELECT size FROM log_head").fetchone() == (5,)
        assert [r[0] for r in con.execute("SELECT size FROM checkpoint ORDER BY id")] == [1, 5]
    return home


@dataclass
class Home:
    path: Path
    items: dict[str, str] = field(default_factory=dict)  # original path -> sha256

    @property
    def db(self) -> Path:
        return self.path / "catalog.sqlite"

    @property
    def store_checkpoint(self) -> Path:
        return self.path / "store" / "log" / "checkpoint"

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> int:
        with contextlib.closing(sqlite3.connect(self.db)) as con, con:
            return con.execute(query, params).rowcount

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with contextlib.closing(sqlite3.connect(self.db)) as con:
            con.row_factory = sqlite3.Row
            return list(con.execute(query, params))

    def one(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self.rows(query, params)
        assert len(rows) == 1, (query, rows)
        return rows[0][0]

    def object(self, sha: str) -> Path:
        return self.path / "store" / "objects" / sha[:2] / sha

    def meta(self, sha: str, name: str) -> Path:
        return self.object(sha).with_name(f"{sha}.{name}")

    def event_of(self, sha: str, kind: str = "ingested") -> int:
        return int(
            self.one("SELECT idx FROM event WHERE item_sha256 = ? AND kind = ?", (sha, kind))
        )

    def item_of_event(self, idx: int) -> str:
        return str(self.one("SELECT item_sha256 FROM event WHERE idx = ?", (idx,)))

    @property
    def all(self) -> set[str]:
        return set(self.items.values())


@pytest.fixture
def h(pristine: Path, tmp_path: Path) -> Home:
    """A private copy of the pristine home at tmp_path/home (the BWC_HOME of every test)."""
    dest = tmp_path / "home"
    shutil.copytree(pristine, dest, ignore=shutil.ignore_patterns("catalog.sqlite*"))
    with (
        contextlib.closing(sqlite3.connect(pristine / "catalog.sqlite")) as src,
        contextlib.closing(sqlite3.connect(dest / "catalog.sqlite")) as dst,
    ):
        src.backup(dst)
    home = Home(dest)
    home.items = {r[0]: r[1] for r in home.rows("SELECT original_path, sha256 FROM item")}
    assert set(home.items) == {
        "DCIM/DSJ0042_110023_20261015093000_0000.MP4",
        CLIP,
        OTHER_CLIP,
        "GPS0001.csv",
    }
    return home


# ---------------------------------------------------------------------------- tampering


def writable(path: Path) -> Path:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(writable(path).read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def swap_columns(home: Home, table: str, key: str, a: Any, b: Any, columns: list[str]) -> None:
    ra = home.rows(f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ?", (a,))[0]
    rb = home.rows(f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ?", (b,))[0]
    sets = ", ".join(f"{c} = ?" for c in columns)
    with contextlib.closing(sqlite3.connect(home.db)) as con, con:
        con.execute(f"UPDATE {table} SET {sets} WHERE {key} = ?", (*tuple(rb), a))
        con.execute(f"UPDATE {table} SET {sets} WHERE {key} = ?", (*tuple(ra), b))


def db_time_shift(text: str, hours: int = 1) -> str:
    return (datetime.fromisoformat(text) + timedelta(hours=hours)).strftime(DB_TIME)


def station_signer(home: Home) -> note.Signer:
    keys_dir = home.path / "keys"
    signer = keyfiles.load_signer(keys_dir, keyfiles.active_key_id(keys_dir), None)
    return custody.note_signer(STATION, signer)


def tree_leaf_hashes(home: Home) -> list[bytes]:
    return [leaf_hash(bytes(r[0])) for r in home.rows("SELECT leaf FROM event ORDER BY idx")]


def rewrite_leaf(leaf: bytes, **changes: Any) -> bytes:
    obj = json.loads(leaf)
    obj.update(changes)
    return canonical_json(obj)


def store_snapshot(home: Home) -> dict[str, tuple[str, int]]:
    out = {}
    for p in sorted((home.path / "store" / "objects").rglob("*")):
        if p.is_file():
            out[str(p.relative_to(home.path))] = (
                hashlib.sha256(p.read_bytes()).hexdigest(),
                stat.S_IMODE(p.stat().st_mode),
            )
    return out


# ---------------------------------------------------------------------------- verdicts

_FAIL = re.compile(r"^FAIL ([0-9a-f]{64}): ([a-z ]+): (.*)$")
_OK = re.compile(r"^ok\s+([0-9a-f]{64})$")


@dataclass
class Verdict:
    code: int
    out: str
    err: str
    failed: dict[str, dict[str, str]]  # sha -> check name -> detail
    ok: set[str]

    def text(self) -> str:
        return self.out + self.err

    def detail(self, sha: str, check: str) -> str:
        assert sha in self.failed, f"{sha[:12]} not reported as failing:\n{self.text()}"
        assert check in self.failed[sha], f"{sha[:12]}: no failing {check!r} check:\n{self.text()}"
        return self.failed[sha][check]


def verify(bwc: Callable[..., Any], *args: str) -> Verdict:
    r = bwc("verify", *args)
    failed: dict[str, dict[str, str]] = {}
    ok: set[str] = set()
    for line in r.out.splitlines():
        if m := _FAIL.match(line):
            checks = failed.setdefault(m[1], {})
            checks[m[2]] = f"{checks[m[2]]}; {m[3]}" if m[2] in checks else m[3]
        elif m := _OK.match(line):
            ok.add(m[1])
    return Verdict(r.code, r.out, r.err, failed, ok)


def verify_all(bwc: Callable[..., Any]) -> Verdict:
    return verify(bwc, "--all", "--no-record")


def has_words(text: str, *words: str) -> bool:
    low = text.lower()
    return all(w.lower() in low for w in words)


def assert_fails(v: Verdict, sha: str, check: str, *words: str) -> None:
    """Item ``sha`` fails ``check`` and the message says what is wrong (all ``words``)."""
    assert v.code == 1, v.text()
    d = v.detail(sha, check)
    assert has_words(d, *words), f"{sha[:12]} {check}: {d!r} lacks {words}"


def assert_others_fine(v: Verdict, home: Home, bad: set[str], allowed: set[str]) -> None:
    """Every item is reported; untampered items either report ok or fail only the checks in
    ``allowed`` (the log-wide ones when the log itself was tampered with)."""
    assert v.ok | set(v.failed) == home.all, v.text()
    for sha in home.all - bad:
        extra = set(v.failed.get(sha, {})) - allowed
        assert not extra, f"untampered {sha[:12]} fails {extra}:\n{v.text()}"
    if not allowed:
        assert v.ok == home.all - bad, v.text()
        assert f"{len(home.all - bad)} of {len(home.all)} items verified" in v.out


def log_verify(bwc: Callable[..., Any]) -> tuple[int, list[str], str]:
    r = bwc("log", "verify")
    problems = [line[5:] for line in r.out.splitlines() if line.startswith("FAIL ")]
    return r.code, problems, r.out + r.err


def assert_log_problem(bwc: Callable[..., Any], *words: str) -> list[str]:
    code, problems, text = log_verify(bwc)
    assert code == 1, text
    assert any(has_words(p, *words) for p in problems), f"no log problem with {words}:\n{text}"
    return problems


def assert_log_ok(bwc: Callable[..., Any]) -> None:
    code, problems, text = log_verify(bwc)
    assert code == 0 and not problems, text


# ---------------------------------------------------------------------------- control


def test_untampered_home_verifies(bwc, h: Home) -> None:
    v = verify_all(bwc)
    assert v.code == 0, v.text()
    assert v.ok == h.all and not v.failed
    assert "4 of 4 items verified" in v.out
    assert_log_ok(bwc)
    # With recording (the default): a `verified` event per item and a new checkpoint, and the
    # log still verifies afterwards.
    sha = h.items[CLIP]
    v = verify(bwc, sha[:8])
    assert v.code == 0 and v.ok == {sha}, v.text()
    assert h.one("SELECT size FROM log_head") == 6
    assert_log_ok(bwc)
    assert verify_all(bwc).code == 0


# ---------------------------------------------------------------------------- 1. objects


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("flip-byte", ("sha256 mismatch",)),
        ("flip-first-byte", ("sha256 mismatch",)),
        ("truncate", ("bytes", "manifest says")),
        ("append", ("bytes", "manifest says")),
        ("delete", ("missing",)),
        ("other-item", ("manifest says",)),
    ],
)
def test_stored_object_tampered(bwc, h: Home, how: str, words: tuple[str, ...]) -> None:
    sha = h.items[CLIP]
    obj = h.object(sha)
    if how == "flip-byte":
        flip_byte(obj)
    elif how == "flip-first-byte":
        flip_byte(obj, 0)
    elif how == "truncate":
        data = writable(obj).read_bytes()
        obj.write_bytes(data[:-1])
    elif how == "append":
        with writable(obj).open("ab") as f:
            f.write(b"\0")
    elif how == "delete":
        obj.unlink()
    else:  # the bytes of another item (the GPS log) under this item's name
        writable(obj).write_bytes(h.object(h.items["GPS0001.csv"]).read_bytes())
    v = verify_all(bwc)
    assert_fails(v, sha, "object", *words)
    assert set(v.failed[sha]) == {"object"}, v.text()
    assert_others_fine(v, h, {sha}, set())
    one = verify(bwc, sha[:12], "--no-record")
    assert_fails(one, sha, "object", *words)
    assert "0 of 1 items verified" in one.out
    assert_log_ok(bwc)  # an object edit is not blamed on the log


# ---------------------------------------------------------------------------- 2. manifests


def test_catalog_manifest_edited(bwc, h: Home) -> None:
    sha = h.items[CLIP]
    manifest = bytes(h.one("SELECT manifest FROM item WHERE sha256 = ?", (sha,)))
    assert b'"officer_id":"110023"' in manifest
    edited = manifest.replace(b'"officer_id":"110023"', b'"officer_id":"110099"')
    assert h.sql("UPDATE item SET manifest = ? WHERE sha256 = ?", (edited, sha)) == 1
    v = verify_all(bwc)
    assert_fails(v, sha, "signature", "signature does not verify")
    assert_fails(v, sha, "catalog", "officer", "110099")
    assert_fails(v, sha, "stored manifest", "differs")
    assert "object" not in v.failed[sha]  # the bytes are still the signed ones
    assert_others_fine(v, h, {sha}, set())
    assert_fails(verify(bwc, sha[:8], "--no-record"), sha, "signature", "signature")
    assert_log_ok(bwc)


@pytest.mark.parametrize(
    ("what", "words"),
    [
        ("json-edited", ("manifest in the store differs",)),
        ("json-deleted", ("manifest.json", "missing")),
        ("sig-edited", ("signature in the store differs",)),
        ("sig-deleted", ("manifest.sig", "missing")),
    ],
)
def test_store_manifest_copy_tampered(bwc, h: Home, what: str, words: tuple[str, ...]) -> None:
    sha = h.items[CLIP]
    name = "manifest.json" if what.startswith("json") else "manifest.sig"
    path = h.meta(sha, name)
    if what == "json-edited":
        data = writable(path).read_bytes()
        assert b'"officer_id":"110023"' in data
        path.write_bytes(data.replace(b'"officer_id":"110023"', b'"officer_id":"110099"'))
    elif what == "sig-edited":
        flip_byte(path, 0)
    else:
        path.unlink()
    v = verify_all(bwc)
    assert_fails(v, sha, "stored manifest", *words)
    assert set(v.failed[sha]) == {"stored manifest"}, v.text()
    assert_others_fine(v, h, {sha}, set())
    assert_fails(verify(bwc, sha[:16], "--no-record"), sha, "stored manifest", *words)


# ---------------------------------------------------------------------------- 3. signatures


def test_signatures_swapped_between_items(bwc, h: Home) -> None:
    a, b = h.items[CLIP], h.items[OTHER_CLIP]
    swap_columns(h, "item", "sha256", a, b, ["signature"])
    v = verify_all(bwc)
    for sha in (a, b):
        assert_fails(v, sha, "signature", "signature does not verify")
        assert_fails(v, sha, "stored manifest", "signature", "differs")
        assert {"object", "catalog", "manifest"}.isdisjoint(v.failed[sha]), v.text()
    assert_others_fine(v, h, {a, b}, set())


def test_signature_copied_from_another_item(bwc, h: Home) -> None:
    a, b = h.items[CLIP], h.items[OTHER_CLIP]
    sig = h.one("SELECT signature FROM item WHERE sha256 = ?", (b,))
    h.sql("UPDATE item SET signature = ? WHERE sha256 = ?", (sig, a))
    v = verify_all(bwc)
    assert_fails(v, a, "signature", "signature does not verify")
    assert_others_fine(v, h, {a}, set())


def test_signed_manifests_swapped_between_items(bwc, h: Home) -> None:
    """Each manifest keeps a valid signature, but it is about the other item."""
    a, b = h.items[CLIP], h.items["GPS0001.csv"]
    swap_columns(h, "item", "sha256", a, b, ["manifest", "signature"])
    v = verify_all(bwc)
    for sha, other in ((a, b), (b, a)):
        assert "signature" not in v.failed.get(sha, {}), v.text()
        assert_fails(v, sha, "manifest", "not this item", other[:12])
        assert_fails(v, sha, "catalog", "differs")
        assert_fails(v, sha, "stored manifest", "differs")
        assert_fails(v, sha, "object", "manifest says")
    assert_others_fine(v, h, {a, b}, set())


# ---------------------------------------------------------------------------- 4. item rows


@pytest.mark.parametrize(
    ("column", "words"),
    [
        ("size", ("size",)),
        ("officer_id", ("officer", "110024")),
        ("recorded_start", ("recorded start",)),
        ("device_id", ("device", "DSJ9999")),
        ("original_path", ("path", "DCIM/other.MP4")),
    ],
)
def test_catalog_item_row_edited(bwc, h: Home, column: str, words: tuple[str, ...]) -> None:
    sha = h.items[CLIP]
    old = h.one(f"SELECT {column} FROM item WHERE sha256 = ?", (sha,))
    assert old is not None, f"the clip has no {column} to edit"
    new: Any = {
        "size": lambda: old + 1,
        "officer_id": lambda: "110024",
        "recorded_start": lambda: db_time_shift(old),
        "device_id": lambda: "DSJ9999",
        "original_path": lambda: "DCIM/other.MP4",
    }[column]()
    h.sql(f"UPDATE item SET {column} = ? WHERE sha256 = ?", (new, sha))
    v = verify_all(bwc)
    assert_fails(v, sha, "catalog", "catalog row differs from the signed manifest", *words)
    assert set(v.failed[sha]) == {"catalog"}, v.text()
    assert_others_fine(v, h, {sha}, set())
    assert_fails(verify(bwc, sha[:8], "--no-record"), sha, "catalog", *words)
    assert_log_ok(bwc)


# ---------------------------------------------------------------------------- 5. deletions


@pytest.mark.parametrize(
    ("which", "shrink_head", "words"),
    [
        ("middle", False, ("#2", "missing", "deleted")),
        ("middle", True, ("#2", "missing", "deleted")),
        ("last", True, ("signed for 5 events", "only 4", "deleted")),
    ],
    ids=["middle", "middle-head-shrunk", "last-head-shrunk"],
)
def test_custody_event_deleted(
    bwc, h: Home, which: str, shrink_head: bool, words: tuple[str, ...]
) -> None:
    idx = 2 if which == "middle" else 4
    sha = h.item_of_event(idx)
    assert h.sql("DELETE FROM event WHERE idx = ?", (idx,)) == 1
    if shrink_head:
        h.sql("UPDATE log_head SET size = size - 1")
    assert_log_problem(bwc, *words)
    v = verify_all(bwc)
    assert_fails(v, sha, "custody", "no `ingested` custody event")
    assert_fails(v, sha, "log", "custody log fails verification")
    assert_others_fine(v, h, {sha}, {"custody", "log"})
    assert_fails(verify(bwc, sha[:8], "--no-record"), sha, "custody", "no `ingested`")


# ---------------------------------------------------------------------------- 6. reordering


def test_event_leaves_swapped(bwc, h: Home) -> None:
    a, b = h.item_of_event(2), h.item_of_event(3)
    swap_columns(h, "event", "idx", 2, 3, ["leaf", "leaf_hash"])
    assert_log_problem(bwc, "#2 holds the leaf of event #3", "swapped")
    assert_log_problem(bwc, "#3 holds the leaf of event #2", "swapped")
    assert_log_problem(bwc, "signed root differs")
    v = verify_all(bwc)
    assert_fails(v, a, "custody", "#2 holds the leaf of event #3")
    assert_fails(v, b, "custody", "#3 holds the leaf of event #2")
    assert_others_fine(v, h, {a, b}, {"custody", "log"})


def test_event_rows_swapped_whole(bwc, h: Home) -> None:
    """All columns moved, so each row is self-consistent: the index inside the leaf gives
    it away."""
    a, b = h.item_of_event(2), h.item_of_event(3)
    cols = ["leaf", "leaf_hash", "kind", "at", "actor", "station_id", "item_sha256"]
    swap_columns(h, "event", "idx", 2, 3, cols)
    problems = assert_log_problem(bwc, "#2 holds the leaf of event #3", "reordered")
    assert not any(": catalog " in p for p in problems)  # columns agree with leaves
    v = verify_all(bwc)
    assert_fails(v, a, "custody", "#3 holds the leaf of event #2")
    assert_fails(v, b, "custody", "#2 holds the leaf of event #3")
    assert_others_fine(v, h, {a, b}, {"custody", "log"})


def test_event_rows_swapped_and_reencoded(bwc, h: Home) -> None:
    """Leaves rewritten with each other's index, hashes and columns made to match: only the
    signed checkpoint can tell."""
    a, b = h.item_of_event(2), h.item_of_event(3)
    cols = ["leaf", "leaf_hash", "kind", "at", "actor", "station_id", "item_sha256"]
    swap_columns(h, "event", "idx", 2, 3, cols)
    for idx in (2, 3):
        leaf = rewrite_leaf(bytes(h.one("SELECT leaf FROM event WHERE idx = ?", (idx,))), index=idx)
        h.sql(
            "UPDATE event SET leaf = ?, leaf_hash = ? WHERE idx = ?", (leaf, leaf_hash(leaf), idx)
        )
    problems = assert_log_problem(bwc, "checkpoint", "signed root differs", "rewritten")
    assert not any("holds the leaf" in p or ": catalog " in p for p in problems)
    v = verify_all(bwc)
    for sha in (a, b):
        assert_fails(v, sha, "custody", "not in the signed log")
    assert_others_fine(v, h, {a, b}, {"custody", "log"})


# ---------------------------------------------------------------------------- 7. rollbacks


@pytest.mark.parametrize("older", ["previous", "oldest"])
def test_newest_checkpoint_replaced_by_older(bwc, h: Home, older: str) -> None:
    if older == "oldest":
        # A third checkpoint: `bwc verify` (recording) logs its run (one event) and signs
        # size 6.
        assert verify(bwc, "--all").code == 0
        assert [r[0] for r in h.rows("SELECT size FROM checkpoint ORDER BY id")] == [1, 5, 6]
    newest = h.one("SELECT max(id) FROM checkpoint")
    src = 1 if older == "oldest" else newest - 1
    size, root, text = h.rows("SELECT size, root, note FROM checkpoint WHERE id = ?", (src,))[0]
    h.sql(
        "UPDATE checkpoint SET size = ?, root = ?, note = ? WHERE id = ?",
        (size, root, text, newest),
    )
    stored_size = 6 if older == "oldest" else 5
    problems = assert_log_problem(bwc, f"checkpoint of size {stored_size}", "rolled back")
    if older == "oldest":
        assert any(
            has_words(p, f"checkpoint {newest}", "rolled back from size 5 to 1") for p in problems
        )
    v = verify_all(bwc)
    assert v.code == 1
    assert "rolled back" in v.out
    for sha in h.all:
        assert_fails(v, sha, "log", "rolled back")
    assert_others_fine(v, h, set(), {"custody", "log"})


@pytest.mark.parametrize("undone", ["verify", "ingest"])
def test_catalog_rolled_back_as_a_whole(bwc, h: Home, tmp_path: Path, undone: str) -> None:
    """The newest operation removed from the catalog entirely (its events, checkpoint, log
    head and any item row): the catalog is consistent in itself; only the checkpoint copy in
    the store shows it."""
    if undone == "verify":
        assert verify(bwc, "--all").code == 0
    else:
        cam = tmp_path / "dock2" / DEVICE
        cam.mkdir(parents=True)
        (cam / "NOTE0001.TXT").write_text("officer note, not in the rolled-back catalog\n")
        assert bwc("ingest", cam, "--officer", OFFICER, "--device", DEVICE).code == 0
    new_size = h.one("SELECT size FROM log_head")
    assert new_size == 6  # the run's event, or the new item's
    newest = h.one("SELECT max(id) FROM checkpoint")
    assert_log_ok(bwc)
    h.sql(
        "DELETE FROM item WHERE sha256 IN "
        "(SELECT item_sha256 FROM event WHERE idx >= 5 AND kind = 'ingested')"
    )
    h.sql("DELETE FROM event WHERE idx >= 5")
    h.sql("DELETE FROM checkpoint WHERE id = ?", (newest,))
    h.sql("UPDATE log_head SET size = 5")
    assert h.one("SELECT count(*) FROM item") == 4
    assert_log_problem(
        bwc, f"store holds a checkpoint of size {new_size}", "catalog was rolled back"
    )
    v = verify_all(bwc)
    assert v.code == 1, v.text()
    for sha in h.all:
        assert_fails(v, sha, "log", "rolled back")
    assert_others_fine(v, h, set(), {"log"})


# ---------------------------------------------------------------------------- 8. forks


@pytest.mark.parametrize("where", ["catalog", "catalog-and-store"])
def test_checkpoint_from_forked_log(bwc, h: Home, where: str) -> None:
    """Signed with the station's real key: same size, the last leaf differs."""
    hashes = tree_leaf_hashes(h)
    assert len(hashes) == 5
    forked_leaf = rewrite_leaf(
        bytes(h.one("SELECT leaf FROM event WHERE idx = 4")), actor="mallory"
    )
    root = MerkleTree([*hashes[:4], leaf_hash(forked_leaf)]).root()
    assert root != MerkleTree(hashes).root()
    origin = load_settings(h.path).log_origin
    text = note.sign_checkpoint(
        note.Checkpoint(origin=origin, size=5, root=root), station_signer(h)
    )
    key_id = keyfiles.active_key_id(h.path / "keys")
    h.sql(
        "INSERT INTO checkpoint (size, root, note, key_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (5, root, text, key_id, datetime.now(UTC).strftime(DB_TIME)),
    )
    if where == "catalog-and-store":
        h.store_checkpoint.write_text(text)
    problems = assert_log_problem(bwc, "checkpoint 3", "signed root differs", "forked log")
    assert any(has_words(p, "checkpoint 3", "not consistent") for p in problems), problems
    if where == "catalog-and-store":
        assert_log_problem(bwc, "checkpoint copy in the store", "forked log")
    assert not any("checkpoint 1 " in p or "checkpoint 2 " in p for p in problems), problems
    v = verify_all(bwc)
    assert v.code == 1
    for sha in h.all:
        assert_fails(v, sha, "log", "fork")
        assert_fails(v, sha, "custody", "not in the signed log")
    assert_others_fine(v, h, set(), {"custody", "log"})


# ---------------------------------------------------------------------------- 9. keys


def test_signing_key_removed_from_catalog(bwc, h: Home) -> None:
    key_id = h.one("SELECT key_id FROM signing_key")
    assert h.sql("DELETE FROM signing_key") == 1
    assert_log_problem(bwc, f"signing key {key_id}", "missing from the catalog")
    v = verify_all(bwc)
    for sha in h.all:
        assert_fails(v, sha, "signature", f"signing key {key_id}", "not in the catalog")
        assert {"object", "catalog", "manifest", "stored manifest"}.isdisjoint(v.failed[sha])
    assert_others_fine(v, h, set(), {"signature", "custody", "log"})


@pytest.mark.parametrize("replacement", ["another-key", "not-a-key"])
def test_signing_key_substituted(bwc, h: Home, replacement: str) -> None:
    key_id = h.one("SELECT key_id FROM signing_key")
    other = (
        raw_public(Ed25519PrivateKey.generate()) if replacement == "another-key" else b"\x01" * 31
    )
    assert h.sql("UPDATE signing_key SET public_key = ?", (other,)) == 1
    assert_log_problem(bwc, f"signing key {key_id}", "public key differs")
    v = verify_all(bwc)
    for sha in h.all:
        assert_fails(v, sha, "signature", "does not verify", key_id)
        assert {"object", "catalog", "manifest", "stored manifest"}.isdisjoint(v.failed[sha])
    assert_others_fine(v, h, set(), {"signature", "custody", "log"})


# ---------------------------------------------------------------------------- 10. event rows


@pytest.mark.parametrize("column", ["actor", "at", "kind", "station_id", "item_sha256"])
def test_event_row_column_edited(bwc, h: Home, column: str) -> None:
    sha = h.item_of_event(2)
    old = h.one(f"SELECT {column} FROM event WHERE idx = 2")
    other = h.items["GPS0001.csv"] if sha != h.items["GPS0001.csv"] else h.items[CLIP]
    new = {
        "actor": lambda: "mallory",
        "at": lambda: db_time_shift(old),
        "kind": lambda: "viewed",
        "station_id": lambda: "st-other",
        "item_sha256": lambda: other,
    }[column]()
    h.sql(f"UPDATE event SET {column} = ? WHERE idx = 2", (new,))
    name = {"at": "time", "station_id": "station", "item_sha256": "item"}.get(column, column)
    assert_log_problem(bwc, "custody event #2", f"catalog {name}", "differs from the log")
    v = verify_all(bwc)
    if column == "item_sha256":
        # The row now claims to be about another item; the item it was taken from has no
        # `ingested` event any more, the one it was pinned on gets a row that disagrees.
        assert_fails(v, sha, "custody", "no `ingested` custody event")
        assert_fails(v, new, "custody", "custody event #2", "catalog item")
        bad = {sha, new}
    else:
        assert_fails(v, sha, "custody", "custody event #2", f"catalog {name}")
        bad = {sha}
    assert_others_fine(v, h, bad, {"log"})
    words = ("no `ingested`",) if column == "item_sha256" else ("#2", f"catalog {name}")
    assert_fails(verify(bwc, sha[:8], "--no-record"), sha, "custody", *words)


def test_event_leaf_edited(bwc, h: Home) -> None:
    sha = h.item_of_event(2)
    leaf = bytes(h.one("SELECT leaf FROM event WHERE idx = 2"))
    h.sql("UPDATE event SET leaf = ? WHERE idx = 2", (rewrite_leaf(leaf, actor="mallory"),))
    assert_log_problem(bwc, "custody event #2", "leaf hash does not match")
    assert_log_problem(bwc, "custody event #2", f"catalog actor {ACTOR}", "mallory")
    assert_log_problem(bwc, "signed root differs")
    v = verify_all(bwc)
    assert_fails(v, sha, "custody", "#2", "leaf hash does not match")
    assert_others_fine(v, h, {sha}, {"custody", "log"})


def test_event_leaf_rewritten_consistently(bwc, h: Home) -> None:
    """Leaf, leaf hash and columns all edited to agree: the signed root still differs."""
    sha = h.item_of_event(2)
    leaf = rewrite_leaf(bytes(h.one("SELECT leaf FROM event WHERE idx = 2")), actor="mallory")
    h.sql(
        "UPDATE event SET leaf = ?, leaf_hash = ?, actor = 'mallory' WHERE idx = 2",
        (leaf, leaf_hash(leaf)),
    )
    problems = assert_log_problem(bwc, "signed root differs", "rewritten")
    assert not any("#2" in p for p in problems if ": catalog " in p)
    v = verify_all(bwc)
    assert_fails(v, sha, "custody", "event #2", "not in the signed log")
    assert_others_fine(v, h, {sha}, {"custody", "log"})


def test_event_leaf_garbled(bwc, h: Home) -> None:
    """Leaf bytes that are not a bwc event at all: reported, never a traceback, also by
    `bwc show` (which prints the chain of custody)."""
    sha = h.item_of_event(2)
    h.sql("UPDATE event SET leaf = ? WHERE idx = 2", (b"\xff not json",))
    assert_log_problem(bwc, "custody event #2", "leaf hash does not match")
    assert_log_problem(bwc, "custody event #2", "malformed")
    v = verify_all(bwc)
    assert_fails(v, sha, "custody", "#2", "malformed")
    assert_others_fine(v, h, {sha}, {"custody", "log"})
    r = bwc("show", sha[:12])
    assert r.code == 1, r.out + r.err
    assert "custody event #2" in r.out and "malformed" in r.out


# ---------------------------------------------------------------------------- beyond the list


def test_item_row_deleted_from_catalog(bwc, h: Home) -> None:
    """An item row removed (its object, manifest and custody events stay): the log still says
    it was ingested, so verification must not report everything fine."""
    sha = h.items[CLIP]
    assert h.sql("DELETE FROM item WHERE sha256 = ?", (sha,)) == 1
    code, _problems, text = log_verify(bwc)
    v = verify_all(bwc)
    assert code == 1 or v.code == 1, f"item row deletion not detected:\n{text}\n{v.text()}"
    assert sha in text + v.text(), "the deleted item is not named"


@pytest.mark.parametrize("tamper", ["object", "event-deleted", "event-deleted-head-shrunk"])
def test_recording_verify_reports_tampering(bwc, h: Home, tamper: str) -> None:
    """`bwc verify <ID>` with recording (the default) still prints the item's failures and
    exits 1, and the `verified` event it records does not launder the tampering."""
    sha = h.items[CLIP]
    if tamper == "object":
        flip_byte(h.object(sha))
        words: tuple[str, ...] = ("object", "sha256 mismatch")
    else:
        idx = h.event_of(sha)
        h.sql("DELETE FROM event WHERE idx = ?", (idx,))
        if tamper == "event-deleted-head-shrunk":
            h.sql("UPDATE log_head SET size = size - 1")
        words = ("custody", "no `ingested` custody event")
    v = verify(bwc, sha[:12])
    assert v.code == 1, v.text()
    assert_fails(v, sha, words[0], *words[1:])
    again = verify_all(bwc)
    assert_fails(again, sha, words[0], *words[1:])
    if tamper != "object":
        assert log_verify(bwc)[0] == 1


# ---------------------------------------------------------------------------- no side effects


def test_failed_verification_changes_nothing_stored(bwc, h: Home) -> None:
    bad_obj, bad_row, bad_event = h.items[CLIP], h.items[OTHER_CLIP], h.item_of_event(1)
    flip_byte(h.object(bad_obj))
    os.chmod(h.object(bad_obj), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    h.sql("UPDATE item SET officer_id = '999999' WHERE sha256 = ?", (bad_row,))
    h.sql("UPDATE event SET actor = 'mallory' WHERE idx = 1")
    before = store_snapshot(h)
    cp_before = h.store_checkpoint.read_bytes()
    tables = ("item", "event", "checkpoint", "signing_key", "log_head")
    catalog_before = {t: [tuple(r) for r in h.rows(f"SELECT * FROM {t}")] for t in tables}

    v = verify_all(bwc)
    assert_fails(v, bad_obj, "object", "sha256 mismatch")
    assert_fails(v, bad_row, "catalog", "officer")
    assert_fails(v, bad_event, "custody", "#1", "catalog actor")
    assert log_verify(bwc)[0] == 1
    assert bwc("show", bad_obj[:12]).code == 1
    assert verify(bwc, bad_row[:12], "--no-record").code == 1
    assert store_snapshot(h) == before
    assert h.store_checkpoint.read_bytes() == cp_before
    after = {t: [tuple(r) for r in h.rows(f"SELECT * FROM {t}")] for t in tables}
    assert after == catalog_before  # --no-record and `show` write nothing

    # A recording verify on a damaged log records nothing: appending `verified` events and a
    # fresh checkpoint would bury the damage. It still leaves every stored object as it was.
    r = verify(bwc, "--all")
    assert r.code == 1
    assert "not recorded" in r.err
    assert store_snapshot(h) == before
    assert not (h.path / "store" / "quarantine").exists()
    assert {t: [tuple(r) for r in h.rows(f"SELECT * FROM {t}")] for t in tables} == catalog_before


@pytest.mark.parametrize("what", ["note-signature", "size-root-columns"])
def test_checkpoint_row_edited(bwc, h: Home, what: str) -> None:
    """A byte of the note's signature flipped, or the decoded size/root columns changed."""
    if what == "note-signature":
        text = h.one("SELECT note FROM checkpoint WHERE id = 2")
        name, b64 = text.rstrip("\n").rsplit("\n", 1)[1][2:].split(" ")
        raw = bytearray(base64.b64decode(b64))
        raw[-1] ^= 0x01
        forged = text.replace(b64, base64.b64encode(bytes(raw)).decode())
        h.sql("UPDATE checkpoint SET note = ? WHERE id = 2", (forged,))
        assert_log_problem(bwc, "checkpoint 2", "invalid signature", name)
    else:
        h.sql("UPDATE checkpoint SET size = 4, root = ? WHERE id = 2", (b"\0" * 32,))
        assert_log_problem(bwc, "checkpoint 2", "size/root columns differ from the signed note")
    v = verify_all(bwc)
    assert v.code == 1
    assert_others_fine(v, h, set(), {"custody", "log"})


def test_rollback_with_store_checkpoint_copy_deleted(bwc, h: Home) -> None:
    """The store's checkpoint copy is what exposes a catalog rolled back as a whole; deleting
    it must not make such a rollback pass unnoticed (the store always holds one after
    `bwc init`)."""
    assert verify(bwc, "--all").code == 0  # event #5 (the run), checkpoint 3 of size 6
    h.sql("DELETE FROM event WHERE idx >= 5")
    h.sql("DELETE FROM checkpoint WHERE id = 3")
    h.sql("UPDATE log_head SET size = 5")
    h.store_checkpoint.unlink()
    assert_log_problem(bwc, "checkpoint", "store", "missing")


def _resign_manifest(h: Home, sha: str, sign: Callable[[bytes], bytes], **changes: Any) -> None:
    """Edit the item's manifest, sign it with ``sign`` and make the catalog row and the
    store copies agree with it: only the custody log still holds the original facts."""
    m = json.loads(h.one("SELECT manifest FROM item WHERE sha256 = ?", (sha,)))
    m.update(changes)
    data = canonical_json(m)
    sig = sign(data)
    h.sql(
        "UPDATE item SET manifest = ?, signature = ?, key_id = ?, officer_id = ? WHERE sha256 = ?",
        (data, sig, m["key_id"], m["officer_id"], sha),
    )
    writable(h.meta(sha, "manifest.json")).write_bytes(data)
    writable(h.meta(sha, "manifest.sig")).write_bytes(sig)


def test_manifest_resigned_with_planted_key(bwc, h: Home) -> None:
    """A key added to the catalog (never announced in the log) re-signs an edited manifest:
    the item it was used on must be named, not only a log-wide problem."""
    sha = h.items[CLIP]
    key = Ed25519PrivateKey.generate()
    pub = raw_public(key)
    planted = key_id_for(pub)
    h.sql(
        "INSERT INTO signing_key (key_id, station_id, public_key, created_at) VALUES (?, ?, ?, ?)",
        (planted, STATION, pub, datetime.now(UTC).strftime(DB_TIME)),
    )
    _resign_manifest(h, sha, key.sign, officer_id="110099", key_id=planted)
    assert_log_problem(bwc, f"signing key {planted}", "never announced")
    v = verify_all(bwc)
    assert v.code == 1
    item_level = {c: d for c, d in v.failed.get(sha, {}).items() if c != "log"}
    assert item_level, f"{sha[:12]} re-signed with planted key {planted}: not named:\n{v.text()}"
    assert_others_fine(v, h, {sha}, {"log"})


def test_manifest_resigned_with_station_key(bwc, h: Home) -> None:
    """The officer in a manifest changed and re-signed with the station's own key, the row and
    the store copies made to agree: the `ingested` custody event still records the original
    officer, so verification must see the difference."""
    sha = h.items[CLIP]
    keys_dir = h.path / "keys"
    signer = keyfiles.load_signer(keys_dir, keyfiles.active_key_id(keys_dir), None)
    _resign_manifest(h, sha, signer.sign, officer_id="110099")
    v = verify_all(bwc)
    assert v.code == 1, f"re-signed manifest of {sha[:12]} passes verification:\n{v.text()}"
    assert any(has_words(d, "officer") for d in v.failed.get(sha, {}).values()), v.text()
    assert_others_fine(v, h, {sha}, set())
