"""Cases as first-class links (issue 14, item 1): `bwc case link/unlink/show/classify/hold/
release`, `bwc list --case`, `classify --case` linking, and links checked against the log
(a link row with no `case-linked` event fails `bwc verify` and `bwc case show`, and
`items_of_case` leaves it out). Real SQLite catalog, real ffmpeg clips."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bwc.evidence.cases import items_of_case
from bwc.evidence.station import Station
from tests.integration.test_postgres import pg_databases, pg_db  # noqa: F401

pytestmark = pytest.mark.integration

OFFICERS = """officer_id,name,unit,county,frontline
110023,张三,城东中队,东城区,是
110024,李四,城东中队,东城区,是
"""
CASES = """case_id,category,unit,officers,start,end,location
C-2026-0001,占道经营,城东中队,110023;110024,2026-10-15T09:30:00,2026-10-15T09:40:00,人民路
C-2026-0002,违章搭建,城东中队,110023,2026-10-15T14:00:00,2026-10-15T14:10:00,解放路
"""


def sql(home: Path, query: str, *params: Any) -> list[Any]:
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con, con:
        return list(con.execute(query, params))


def kinds(home: Path, sha: str) -> list[str]:
    return [
        k for (k,) in sql(home, "SELECT kind FROM event WHERE item_sha256 = ? ORDER BY idx", sha)
    ]


@pytest.fixture
def items(bwc, home: Path, camera: Path, tmp_path: Path) -> list[str]:  # type: ignore[no-untyped-def]
    for kind, text in (("officers", OFFICERS), ("cases", CASES)):
        p = tmp_path / f"{kind}.csv"
        p.write_text(text, encoding="utf-8")
        r = bwc("audit", "import", kind, p)
        assert r.code == 0, r.err
    r = bwc("ingest", camera / "DCIM", "--json")
    assert r.code == 0, r.err
    return sorted(x["sha256"] for x in json.loads(r.out)["results"] if x["status"] == "ingested")


def link(bwc, case: str, *ids: str, extra: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return bwc("case", "link", case, *ids, "--reason", "on scene", *extra)


def test_link_logs_each_new_link_once(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = items
    r = link(bwc, "C-2026-0001", a[:12], b[:12])
    assert r.code == 0, r.err
    assert "linked to case C-2026-0001" in r.out
    leaves = sql(home, "SELECT leaf FROM event WHERE kind = 'case-linked' ORDER BY idx")
    assert len(leaves) == 2
    d = json.loads(leaves[0][0])
    assert d["details"] == {"case": "C-2026-0001", "reason": "on scene"}
    assert d["actor"] == "test-clerk"
    # again: said so, nothing logged
    r = link(bwc, "C-2026-0001", a[:12])
    assert r.code == 0, r.err
    assert "already linked" in r.out
    assert len(sql(home, "SELECT idx FROM event WHERE kind = 'case-linked'")) == 2
    # an item belongs to several cases
    assert link(bwc, "C-2026-0002", a[:12]).code == 0
    listed = json.loads(bwc("list", "--case", "C-2026-0001", "--json").out)
    assert sorted(i["sha256"] for i in listed) == sorted([a, b])
    assert [
        i["sha256"] for i in json.loads(bwc("list", "--case", "C-2026-0002", "--json").out)
    ] == [a]
    assert bwc("verify", a[:12], b[:12]).code == 0
    with Station.open(home, actor="t", passphrase=None).session() as s:
        assert items_of_case(s, "C-2026-0001") == sorted([a, b])


def test_unknown_case_is_refused_without_new_case(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    before = sql(home, "SELECT count(*) FROM event")
    r = link(bwc, "C-2026-001", items[0][:12])  # a digit short
    assert r.code == 3
    assert "not among the imported cases" in r.err
    assert "C-2026-0001" in r.err  # a close match named
    assert len(r.err.strip().splitlines()) == 1
    assert sql(home, "SELECT count(*) FROM event") == before
    assert sql(home, "SELECT count(*) FROM case_link") == [(0,)]
    r = link(bwc, "POLICE-OP-7", items[0][:12], extra=("--new-case",))
    assert r.code == 0, r.err
    assert sql(home, "SELECT case_id FROM case_link") == [("POLICE-OP-7",)]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("case", "link", "C-2026-0001", "0123456789ab", "--reason", "x"), 3, "no evidence item"),
        (("case", "link", "C-2026-0001", "xyz", "--reason", "x"), 2, "not an evidence id"),
        (("case", "link", "C-2026-0001", "ITEM", "--reason", "  "), 2, "--reason is empty"),
        (("case", "link", "C-2026-0001", "ITEM", "--reason", "a\x1bb"), 2, "control character"),
        (("case", "link", "", "ITEM", "--reason", "x"), 2, "CASE is empty"),
        (("case", "unlink", "C-2026-0001", "ITEM", "--reason", ""), 2, "--reason is empty"),
        (("case", "show", "NO-SUCH"), 3, "no case"),
        (("case", "hold", "C-2026-0002", "--reason", "x"), 3, "no item is linked"),
        (("list", "--case", "a\x07"), 2, "control character"),
    ],
)
def test_bad_input(
    bwc, home: Path, items: list[str], args: tuple[str, ...], code: int, says: str
) -> None:  # type: ignore[no-untyped-def]
    before = sql(home, "SELECT count(*) FROM event")
    r = bwc(*(items[0][:12] if a == "ITEM" else a for a in args))
    assert r.code == code, (r.out, r.err)
    assert says in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert sql(home, "SELECT count(*) FROM event") == before
    assert sql(home, "SELECT count(*) FROM case_link") == [(0,)]


def test_unlink(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = items
    assert link(bwc, "C-2026-0001", a[:12], b[:12]).code == 0
    r = bwc("case", "unlink", "C-2026-0001", a[:12], "--reason", "wrong case")
    assert r.code == 0, r.err
    assert "unlinked from case" in r.out
    assert kinds(home, a)[-1] == "case-unlinked"
    r = bwc("case", "unlink", "C-2026-0001", a[:12], "--reason", "again")
    assert r.code == 0 and "was not linked" in r.out
    assert kinds(home, a).count("case-unlinked") == 1
    assert [
        i["sha256"] for i in json.loads(bwc("list", "--case", "C-2026-0001", "--json").out)
    ] == [b]
    assert bwc("verify", a[:12], b[:12]).code == 0


def test_classify_case_links_and_unlink_clears_it(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a = items[0]
    r = bwc("classify", a[:12], "--class", "evidence", "--case", "ANY-TEXT-1", "--reason", "fight")
    assert r.code == 0, r.err
    assert kinds(home, a)[-2:] == ["retention-changed", "case-linked"]
    assert sql(home, "SELECT case_id FROM case_link WHERE sha256 = ?", a) == [("ANY-TEXT-1",)]
    assert link(bwc, "C-2026-0001", a[:12]).code == 0
    assert bwc("case", "unlink", "ANY-TEXT-1", a[:12], "--reason", "typo").code == 0
    # the retention row's case goes with the link, as the log folds it
    assert sql(home, "SELECT case_id FROM item_retention WHERE sha256 = ?", a) == [(None,)]
    assert bwc("verify", a[:12]).code == 0
    assert json.loads(bwc("retention", "show", a[:12], "--json").out)["matches_log"] is True
    r = bwc("classify", a[:12], "--class", "obstruction", "--reason", "more")
    assert r.code == 0, r.err  # its record (class, case) still agrees with the log
    assert bwc("verify", a[:12]).code == 0


@pytest.mark.parametrize("tamper", ["row-inserted", "row-deleted", "row-moved"])
def test_link_rows_are_checked_against_the_log(
    bwc, home: Path, items: list[str], tamper: str
) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = items
    assert link(bwc, "C-2026-0001", a[:12]).code == 0
    if tamper == "row-inserted":  # linked in the catalog alone
        sql(
            home,
            "INSERT INTO case_link (case_id, sha256, linked_at, linked_by) "
            "VALUES ('C-2026-0001', ?, '2026-10-15 01:00:00.000000', 'x')",
            b,
        )
        victim, says = b, "has no `case-linked` custody event"
    elif tamper == "row-deleted":
        sql(home, "DELETE FROM case_link WHERE sha256 = ?", a)
        victim, says = a, "missing from the catalog"
    else:
        sql(home, "UPDATE case_link SET case_id = 'C-2026-0002' WHERE sha256 = ?", a)
        victim, says = a, "'C-2026-0002' in the catalog has no `case-linked`"
    r = bwc("verify", victim[:12])
    assert r.code == 1
    assert f"FAIL {victim}: cases:" in r.out
    assert says in r.out
    r = bwc("verify", "--all", "--no-record")
    assert r.code == 1
    assert f"FAIL {victim}: cases:" in r.out
    with Station.open(home, actor="t", passphrase=None).session() as s:
        assert victim not in items_of_case(s, "C-2026-0001")
        assert victim not in items_of_case(s, "C-2026-0002")
    if tamper == "row-inserted":
        r = bwc("case", "show", "C-2026-0001", "--no-record")
        assert r.code == 1
        assert b[:16] in r.err and "no `case-linked` custody event" in r.err
        # a whole-case change rests on the links: refused, nothing changed
        before = sql(home, "SELECT count(*) FROM event")
        r = bwc("case", "hold", "C-2026-0001", "--reason", "court")
        assert r.code == 1 and b[:16] in r.err and "nothing was changed" in r.err
        assert sql(home, "SELECT count(*) FROM event") == before
        assert sql(home, "SELECT count(*) FROM legal_hold") == [(0,)]


def test_case_show(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = items
    assert link(bwc, "C-2026-0001", a[:12], b[:12]).code == 0
    assert bwc("hold", a[:12], "--reason", "complaint").code == 0
    assert bwc("verify", a[:12]).code == 0  # a recorded run covers a, not b
    r = bwc("case", "show", "C-2026-0001", "--no-record")
    assert r.code == 0, r.err
    assert "占道经营" in r.out and "110023, 110024" in r.out
    assert "as of the last recorded verification run" in r.out
    assert all(len(line) <= 80 for line in r.out.splitlines()), r.out
    rows = {line.split()[0]: line for line in r.out.splitlines() if line[:10] in (a[:10], b[:10])}
    assert rows[a[:10]].split()[-2:] == ["yes", "ok"]
    assert rows[b[:10]].split()[-1] == "-"
    data = json.loads(bwc("case", "show", "C-2026-0001", "--check", "--json", "--no-record").out)
    assert data["verification"] == "checked now"
    assert {i["sha256"]: i["verified"] for i in data["items"]} == {a: True, b: True}
    assert {i["sha256"]: i["legal_hold"] for i in data["items"]} == {a: True, b: False}


def test_whole_case_classify_hold_release(bwc, home: Path, items: list[str]) -> None:  # type: ignore[no-untyped-def]
    a, b, c = items
    assert link(bwc, "C-2026-0001", a[:12], b[:12]).code == 0
    assert bwc("hold", a[:12], "--reason", "earlier").code == 0
    r = bwc("case", "hold", "C-2026-0001", "--reason", "court order 7")
    assert r.code == 0, r.err
    assert "1 of 2 items changed" in r.out and "already on legal hold" in r.out
    assert kinds(home, b).count("hold-placed") == 1
    assert kinds(home, c).count("hold-placed") == 0
    r = bwc("case", "classify", "C-2026-0001", "--class", "evidence", "--reason", "trial")
    assert r.code == 0, r.err
    for sha in (a, b):
        assert json.loads(bwc("retention", "show", sha[:12], "--json").out)["class"] == "evidence"
    assert json.loads(bwc("retention", "show", c[:12], "--json").out)["class"] != "evidence"
    (leaf,) = sql(
        home, "SELECT leaf FROM event WHERE kind = 'retention-changed' AND item_sha256 = ?", b
    )
    assert json.loads(leaf[0])["details"]["reason"] == "case C-2026-0001: trial"
    # shortening needs --force: refused for the whole case before anything changes
    before = sql(home, "SELECT count(*) FROM event")
    r = bwc("case", "classify", "C-2026-0001", "--class", "standard", "--reason", "x")
    assert r.code == 2 and "nothing was changed" in r.err
    assert sql(home, "SELECT count(*) FROM event") == before
    r = bwc("case", "release", "C-2026-0001", "--reason", "acquitted")
    assert r.code == 0, r.err
    assert "2 of 2 items changed" in r.out
    assert sql(home, "SELECT count(*) FROM legal_hold WHERE released_at IS NULL") == [(0,)]
    assert bwc("verify", a[:12], b[:12], c[:12]).code == 0


def test_migration_links_existing_case_ids(tmp_path: Path) -> None:
    """0011 turns item_retention.case_id into links and logs nothing for them; `bwc verify`
    then accepts them (their `retention-changed` event records the case)."""
    from alembic import command

    from bwc.evidence import db

    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    engine = db.make_engine(url, 5.0)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
        conn.exec_driver_sql(
            "INSERT INTO item (sha256, size, manifest, signature, key_id, station_id, "
            "original_path, ingested_at, flags) VALUES ('ab', 1, x'00', x'00', 'k', 's', 'p', "
            "'2026-10-15 01:00:00.000000', '')"
        )
        conn.exec_driver_sql(
            "INSERT INTO item_retention (sha256, class_name, case_id, changed_at, changed_by) "
            "VALUES ('ab', 'evidence', 'C-9', '2026-10-16 01:00:00.000000', 'clerk')"
        )
        n = conn.exec_driver_sql("SELECT count(*) FROM event").scalar()
        command.upgrade(cfg, "0011")
        rows = conn.exec_driver_sql("SELECT case_id, sha256, linked_by FROM case_link").all()
        assert [tuple(r) for r in rows] == [("C-9", "ab", "clerk")]
        assert conn.exec_driver_sql("SELECT count(*) FROM event").scalar() == n
        command.downgrade(cfg, "0010")
    engine.dispose()


def test_migration_and_links_on_postgres(  # type: ignore[no-untyped-def]
    bwc, request: pytest.FixtureRequest, camera: Path
) -> None:
    """0011 on PostgreSQL: existing case ids become links (nothing logged); then a home on
    that catalog links, and a link row inserted behind bwc's back fails `bwc verify`."""
    from alembic import command

    from bwc.evidence import db
    from tests.integration import pg

    dbname: str = request.getfixturevalue("pg_db")  # the test_postgres fixtures, imported
    engine = db.make_engine(pg.sqlalchemy_url(dbname), 5.0)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0010")
        conn.exec_driver_sql(
            "INSERT INTO item (sha256, size, manifest, signature, key_id, station_id, "
            "original_path, ingested_at, flags) VALUES ('ab', 1, '\\x00', '\\x00', 'k', 's', "
            "'p', now(), '')"
        )
        conn.exec_driver_sql(
            "INSERT INTO item_retention (sha256, class_name, case_id, changed_at, changed_by) "
            "VALUES ('ab', 'evidence', 'C-9', now(), 'clerk')"
        )
        command.upgrade(cfg, "0011")
        rows = conn.exec_driver_sql("SELECT case_id, sha256, linked_by FROM case_link").all()
        assert [tuple(r) for r in rows] == [("C-9", "ab", "clerk")]
        assert conn.exec_driver_sql("SELECT count(*) FROM event").scalar() == 0
        # back to an empty catalog for the station below
        conn.exec_driver_sql("DELETE FROM case_link")
        conn.exec_driver_sql("DELETE FROM item_retention")
        conn.exec_driver_sql("DELETE FROM item")
    engine.dispose()
    assert bwc("init", "--station-id", "st-pg").code == 0
    r = bwc("ingest", camera / "DCIM", "--json")
    assert r.code == 0, r.err
    a, b, _ = sorted(x["sha256"] for x in json.loads(r.out)["results"] if x["status"] == "ingested")
    assert link(bwc, "OP-1", a[:12], extra=("--new-case",)).code == 0
    assert [i["sha256"] for i in json.loads(bwc("list", "--case", "OP-1", "--json").out)] == [a]
    assert bwc("verify", a[:12], b[:12]).code == 0
    with pg.connect(dbname) as con:
        con.execute(
            "INSERT INTO case_link (case_id, sha256, linked_at, linked_by) "
            "VALUES ('OP-1', %s, now(), 'x')",
            (b,),
        )
    r = bwc("verify", b[:12])
    assert r.code == 1
    assert f"FAIL {b}: cases:" in r.out


def test_a_link_from_before_links_were_logged_survives_a_new_case(  # type: ignore[no-untyped-def]
    bwc, home: Path, items: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item classified with --case by a bwc before case links (only `retention-changed`
    records the case; migration 0011 made its link row): it verifies, and a later
    `classify --case` with another case keeps the earlier link, logging it explicitly."""
    from bwc.evidence import cases

    a = items[0]
    with monkeypatch.context() as m:  # the older bwc: no link row, no case-linked event
        m.setattr(cases, "add_link_row", lambda *_args: False)
        r = bwc("classify", a[:12], "--class", "evidence", "--case", "OLD-1", "--reason", "x")
        assert r.code == 0, r.err
    assert "case-linked" not in kinds(home, a)
    sql(  # what 0011 does with item_retention.case_id
        home,
        "INSERT INTO case_link (case_id, sha256, linked_at, linked_by) "
        "SELECT case_id, sha256, changed_at, changed_by FROM item_retention WHERE sha256 = ?",
        a,
    )
    assert bwc("verify", a[:12]).code == 0
    r = bwc("classify", a[:12], "--class", "obstruction", "--case", "NEW-2", "--reason", "y")
    assert r.code == 0, r.err
    assert kinds(home, a)[-3:] == ["retention-changed", "case-linked", "case-linked"]
    r = bwc("verify", a[:12])
    assert r.code == 0, r.out
    with Station.open(home, actor="t", passphrase=None).session() as s:
        assert items_of_case(s, "OLD-1") == [a]
        assert items_of_case(s, "NEW-2") == [a]
