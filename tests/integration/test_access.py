"""The access trail (issue 14, item 4): `bwc show`, `bwc log proof` and `bwc case show`
record `viewed` custody events (actor, station, what, case), `--no-record` leaves none, and
`bwc access ID` / `bwc access --case CASE` list them from the log, each proven in the
signed log. Real SQLite catalog, real ffmpeg clips."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def sql(home: Path, query: str, *params: Any) -> list[Any]:
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con, con:
        return list(con.execute(query, params))


def views(home: Path) -> list[dict[str, Any]]:
    rows = sql(home, "SELECT leaf FROM event WHERE kind = 'viewed' ORDER BY idx")
    return [json.loads(leaf) for (leaf,) in rows]


@pytest.fixture
def items(bwc, home: Path, camera: Path) -> list[str]:  # type: ignore[no-untyped-def]
    r = bwc("ingest", camera / "DCIM", "--json")
    assert r.code == 0, r.err
    return sorted(x["sha256"] for x in json.loads(r.out)["results"] if x["status"] == "ingested")


def test_show_and_proof_are_recorded_and_signed(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a = items[0]
    r = bwc("show", a[:12])
    assert r.code == 0, r.err
    (v,) = views(home)
    assert (v["kind"], v["item"], v["actor"], v["station"]) == (
        "viewed",
        a,
        "test-clerk",
        "st-test",
    )
    assert v["details"] == {"what": "show"}
    # signed into a checkpoint: the item still verifies, with the view in its chain
    (size,) = sql(home, "SELECT max(size) FROM checkpoint")[0]
    assert size == v["index"] + 1
    r = bwc("log", "proof", a[:12], "--json")
    assert r.code == 0, r.err
    proof = json.loads(r.out)
    assert [e["kind"] for e in proof["events"]][-2:] == ["viewed", "viewed"]
    assert all(e["covered"] for e in proof["events"])  # the request itself is proven
    assert views(home)[-1]["details"] == {"what": "proof"}
    assert bwc("verify", a[:12], "--no-record").code == 0
    assert bwc("log", "verify").code == 0


def test_no_record_leaves_no_event(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a = items[0]
    assert bwc("case", "link", "OP-1", a[:12], "--reason", "x", "--new-case").code == 0
    before = sql(home, "SELECT count(*), (SELECT count(*) FROM checkpoint) FROM event")
    for args in (("show", a[:12]), ("log", "proof", a[:12]), ("case", "show", "OP-1")):
        r = bwc(*args, "--no-record")
        assert r.code == 0, (args, r.err)
    assert sql(home, "SELECT count(*), (SELECT count(*) FROM checkpoint) FROM event") == before
    assert views(home) == []
    for cmd in (("show",), ("log", "proof"), ("case", "show")):
        r = bwc(*cmd, "--help")
        assert "Not logged: for read-only diagnostics" in " ".join(r.out.split()), cmd
        assert "--no-record" in r.out, cmd


def test_case_show_records_one_view_per_item(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a, b, c = items
    assert bwc("case", "link", "OP-1", a[:12], b[:12], "--reason", "x", "--new-case").code == 0
    r = bwc("case", "show", "OP-1")
    assert r.code == 0, r.err
    got = views(home)
    assert sorted(v["item"] for v in got) == sorted([a, b])
    assert all(v["details"] == {"what": "case-show", "case": "OP-1"} for v in got)
    # the trail of the case: who looked, at what
    r = bwc("access", "--case", "OP-1", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["ok"] is True
    assert sorted(data["items"]) == sorted([a, b])
    assert [(e["what"], e["actor"]) for e in data["access"]] == [("case-show", "test-clerk")] * 2
    assert all(e["problem"] is None for e in data["access"])
    r = bwc("access", "--case", "OP-1")
    assert r.code == 0, r.err
    assert all(len(line) <= 80 for line in r.out.splitlines()), r.out
    assert "2 accesses to 2 items" in r.out
    assert c[:10] not in r.out


def test_access_of_an_item(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = items
    assert bwc("show", a[:12]).code == 0
    assert bwc("log", "proof", a[:12]).code == 0
    assert bwc("show", b[:12]).code == 0
    r = bwc("--actor", "legal-7", "show", a[:12], "--json")
    assert r.code == 0
    data = json.loads(bwc("access", a[:12], "--json").out)
    assert [(e["what"], e["actor"]) for e in data["access"]] == [
        ("show", "test-clerk"),
        ("proof", "test-clerk"),
        ("show", "legal-7"),
    ]
    r = bwc("access", a[:12])
    assert r.code == 0, r.err
    assert "legal-7" in r.out and "3 accesses to 1 item" in r.out
    # viewing is not a fact retention or attribution rests on: nothing else changed
    assert json.loads(bwc("retention", "show", a[:12], "--json").out)["matches_log"] is True


def test_a_tampered_view_row_is_named(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a = items[0]
    assert bwc("show", a[:12]).code == 0
    idx = views(home)[0]["index"]
    sql(home, "UPDATE event SET actor = 'someone-else' WHERE idx = ?", idx)
    r = bwc("access", a[:12])
    assert r.code == 1
    assert f"#{idx}" in r.out and "catalog actor someone-else differs from the log" in r.out
    # the row relabelled to hide the view: still listed, and named
    sql(home, "UPDATE event SET actor = 'test-clerk', kind = 'verified' WHERE idx = ?", idx)
    r = bwc("access", a[:12], "--json")
    assert r.code == 1
    (e,) = json.loads(r.out)["access"]
    assert e["kind"] == "viewed" and "catalog kind verified differs" in e["problem"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("access",), 2, "name an item"),
        (("access", "ITEM", "--case", "X"), 2, "not both"),
        (("access", "0123456789ab"), 3, "no evidence item"),
        (("show", "0123456789ab"), 3, "no evidence item"),
        (("log", "proof", "0123456789ab"), 3, "no evidence item"),
    ],
)
def test_bad_input(
    bwc, home: Path, items: list[str], args: tuple[str, ...], code: int, says: str
) -> None:  # type: ignore[no-untyped-def]
    before = sql(home, "SELECT count(*) FROM event")
    r = bwc(*(items[0][:12] if a == "ITEM" else a for a in args))
    assert r.code == code, (r.out, r.err)
    assert says in r.err and len(r.err.strip().splitlines()) == 1
    assert sql(home, "SELECT count(*) FROM event") == before


def test_a_view_that_cannot_be_logged_fails(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    """A catalog that takes no writes (another writer holds SQLite's lock past the wait):
    the view fails with one line and the catalog's exit code, showing nothing, rather than
    leave no trace; --no-record still reads."""
    a = items[0]
    cfg = home / "bwc.toml"
    cfg.write_text(
        cfg.read_text("utf-8").replace("catalog_wait_seconds = 60.0", "catalog_wait_seconds = 0.5")
    )
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite", isolation_level=None)) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            r = bwc("show", a[:12])
            assert r.code == 8, (r.out, r.err)
            assert "evidence item" not in r.out
            assert len(r.err.strip().splitlines()) == 1
            r = bwc("show", a[:12], "--no-record")
            assert r.code == 0, r.err
            assert "evidence item" in r.out
        finally:
            con.execute("ROLLBACK")
    assert views(home) == []


def test_get_copies_checks_and_records(bwc, home: Path, items: list[str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = items[0]
    out = tmp_path / "copy.mp4"
    r = bwc("get", a[:12], "--out", out)
    assert r.code == 0, r.err
    assert hashlib.sha256(out.read_bytes()).hexdigest() == a
    (v,) = views(home)
    assert v["details"] == {"what": "get", "file": "copy.mp4"}
    assert bwc("verify", a[:12], "--no-record").code == 0
    # never over an existing file
    r = bwc("get", a[:12], "--out", out)
    assert r.code == 2 and "already exists" in r.err
    assert len(views(home)) == 1
    # --no-record: the copy, no event
    assert bwc("get", a[:12], "--out", tmp_path / "diag.mp4", "--no-record").code == 0
    assert len(views(home)) == 1


def test_get_refuses_bytes_that_do_not_match(
    bwc, home: Path, items: list[str], tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    a = items[0]
    (obj,) = (home / "store" / "objects").glob(f"*/{a}")
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[100] ^= 1
    obj.write_bytes(bytes(data))
    out = tmp_path / "copy.mp4"
    r = bwc("get", a[:12], "--out", out)
    assert r.code == 1
    assert "does not match its id" in r.err and len(r.err.strip().splitlines()) == 1
    assert not out.exists()
    assert list(tmp_path.glob(".copy.mp4*")) == []
    assert views(home) == []


def test_the_trail_names_every_one_whole_at_80_columns(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Who saw it and for whom it was exported are what the trail is read for: a long actor
    or recipient wraps onto further lines, never cut to an ellipsis."""
    from rich.cells import cell_len

    actor = "legal-officer-zhang-wei-huangpu-district"
    assert bwc("--actor", actor, "show", items[0][:12]).code == 0
    r = bwc("access", items[0][:12])
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), r.out
    assert "…" not in r.out
    # the folded name, read down its column, is the whole name
    folded = [lines[1].split()[3]] + [x.split()[0] for x in lines[2:] if x.startswith(" ")]
    assert "".join(folded) == actor
