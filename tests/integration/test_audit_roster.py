"""Roster management on a real catalog (issue 15.16): officers who left (`bwc audit officers
deactivate`, the roster's `active` column) drop out of the equipage count but keep their
cases; the lists of officers and of a month's cases; a row changed behind bwc's back is
caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.cells import cell_len

from bwc.evidence.models import Officer
from tests.integration.test_audit_cli import OFFICERS, city, sql, station, write

pytestmark = pytest.mark.integration


def summary(bwc) -> dict[str, int]:  # type: ignore[no-untyped-def]
    r = bwc("audit", "report", "--month", "2026-10", "--format", "json")
    assert r.code == 0, r.err
    s = json.loads(r.out)["summary"]
    return {k: s[k] for k in ("cases", "frontline", "equipped")}


def officer(home: Path, oid: str) -> Officer:
    with station(home).session() as s:
        o = s.get(Officer, oid)
        assert o is not None
        return o


def test_deactivated_officer_leaves_the_equipage_count_not_the_cases(
    bwc,  # type: ignore[no-untyped-def]
    home: Path,
    tmp_path: Path,
) -> None:
    city(bwc, home, tmp_path)
    assert summary(bwc) == {"cases": 4, "frontline": 2, "equipped": 2}

    # left on Oct 20: staff for part of October (still counted), not in November
    r = bwc("audit", "officers", "deactivate", "110024", "--reason", "调离", "--from", "2026-10-20")
    assert r.code == 0, r.err
    assert "inactive from 2026-10-20 00:00 +08:00" in r.out
    o = officer(home, "110024")
    assert (o.active, o.inactive_reason) == (False, "调离")
    assert o.inactive_from is not None
    assert o.inactive_from.isoformat() == "2026-10-19T16:00:00+00:00"
    assert summary(bwc) == {"cases": 4, "frontline": 2, "equipped": 2}
    r = bwc("audit", "report", "--month", "2026-11", "--format", "json")
    assert json.loads(r.out)["summary"]["frontline"] == 1

    # the log has it: verify passes, and the event says who, why, from when
    assert bwc("audit", "verify").code == 0

    # twice: refused, nothing changed
    r = bwc("audit", "officers", "deactivate", "110024", "--reason", "again")
    assert r.code == 2 and "already inactive" in r.err and "Traceback" not in r.err
    assert officer(home, "110024").inactive_reason == "调离"


def test_inactive_for_the_whole_month_is_not_staff(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city(bwc, home, tmp_path)
    r = bwc("audit", "officers", "deactivate", "110024", "--reason", "退休", "--from", "2026-10-01")
    assert r.code == 0, r.err
    # not staff in October (inactive from its first instant); the case still counts
    assert summary(bwc) == {"cases": 4, "frontline": 1, "equipped": 1}
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en")
    assert "110024" in r.out


def test_deactivate_bad_input_changes_nothing(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city(bwc, home, tmp_path)
    for args, code, words in (
        (("NOPE", "--reason", "x"), 3, "no officer 'NOPE'"),
        (("110024", "--reason", "  "), 2, "--reason is empty"),
        (("110024", "--reason", "x", "--from", "yesterday"), 2, "--from 'yesterday'"),
    ):
        r = bwc("audit", "officers", "deactivate", *args)
        assert r.code == code, (args, r.err)
        assert words in r.err and "Traceback" not in r.err and r.err.count("\n") <= 2, r.err
    assert officer(home, "110024").active


def test_a_deactivation_behind_bwcs_back_is_caught(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city(bwc, home, tmp_path)
    sql(home, "UPDATE officer SET active = 0 WHERE officer_id = '110024'")
    r = bwc("audit", "verify")
    assert r.code == 1 and "FAIL officers: " in r.out and "110024" in r.out, r.out
    assert bwc("audit", "report", "--month", "2026-10").code == 1

    # and reactivating one bwc deactivated
    sql(home, "UPDATE officer SET active = 1 WHERE officer_id = '110024'")
    assert bwc("audit", "verify").code == 0
    assert bwc("audit", "officers", "deactivate", "110024", "--reason", "调离").code == 0
    assert bwc("audit", "verify").code == 0
    sql(home, "UPDATE officer SET active = 1, inactive_from = NULL WHERE officer_id = '110024'")
    r = bwc("audit", "verify")
    assert r.code == 1 and "110024 differs from the log" in r.out, r.out


def test_roster_active_column(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city(bwc, home, tmp_path)
    assert bwc("audit", "officers", "deactivate", "110024", "--reason", "调离").code == 0
    before = officer(home, "110024").inactive_from
    # a roster without the column keeps the deactivation (a monthly re-import must not
    # bring back who left)
    r = bwc("audit", "import", "officers", write(tmp_path, "o2.csv", OFFICERS))
    assert r.code == 0 and "0 changed" in r.out, r.out
    assert officer(home, "110024").inactive_from == before

    with_column = (
        "officer_id,name,unit,county,frontline,active\n"
        "110023,张三,城东中队,东城区,是,否\n"
        "110024,李四,城东中队,东城区,是,是\n"
        "110026,赵六,城西中队,西城区,是,\n"
    )
    r = bwc("audit", "import", "officers", write(tmp_path, "o3.csv", with_column))
    assert r.code == 0, r.err
    assert "1 new, 2 changed" in r.out, r.out
    a, b, d = officer(home, "110023"), officer(home, "110024"), officer(home, "110026")
    assert (a.active, a.inactive_from) == (False, None)  # left, no date: every month
    assert (b.active, b.inactive_from, b.inactive_reason) == (True, None, None)
    assert d.active
    assert bwc("audit", "verify").code == 0
    assert summary(bwc)["frontline"] == 2  # 110024, 110026

    bad = "officer_id,name,unit,county,frontline,active\n1,a,u,c,是,也许\n"
    r = bwc("audit", "import", "officers", write(tmp_path, "bad.csv", bad))
    assert r.code == 6 and "line 2: active: '也许' is not" in r.err, r.err
    assert r.err.count("\n") <= 2


def lines_fit(text: str) -> None:
    for line in text.splitlines():
        assert cell_len(line) <= 80, line


def test_officers_list(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city(bwc, home, tmp_path)
    assert (
        bwc(
            "audit", "officers", "deactivate", "110024", "--reason", "调离", "--from", "2026-10-20"
        ).code
        == 0
    )
    r = bwc("audit", "officers", "list")
    assert r.code == 0, r.err
    lines_fit(r.out)
    assert "left 2026-10-20 调离" in r.out and "3 officers (1 inactive)" in r.out, r.out
    assert "Asia/Shanghai (UTC+08:00)" in r.out

    r = bwc("audit", "officers", "list", "--inactive", "--json")
    data = json.loads(r.out)
    assert [o["officer_id"] for o in data] == ["110024"]
    assert data[0]["inactive_from"] == "2026-10-19T16:00:00Z"

    r = bwc("audit", "officers", "list", "--unit", "城西中队", "--json")
    assert [o["officer_id"] for o in json.loads(r.out)] == ["110025"]
    r = bwc("audit", "officers", "list", "--unit", "城西")
    assert r.code == 2 and "unknown unit '城西'" in r.err and "城东中队" in r.err, r.err


def test_cases_list(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city(bwc, home, tmp_path)
    r = bwc("audit", "cases", "list", "--month", "2026-10")
    assert r.code == 0, r.err
    lines_fit(r.out)
    # October's cases by start, local time (C0 is September's)
    body = r.out.splitlines()
    assert "start +08:00" in body[0]
    ids = [ln.split()[0] for ln in body[1:-1]]
    assert ids == ["C3", "C1", "C2"], r.out
    assert "2026-10-15 09:30" in r.out and "3 cases starting in 2026-10" in r.out

    r = bwc("audit", "cases", "list", "--month", "2026-10", "--unit", "城西中队", "--json")
    data = json.loads(r.out)
    assert [c["case_id"] for c in data] == ["C2"]
    assert data[0]["start"] == "2026-10-15T06:00:00Z" and data[0]["officers"] == ["110025"]

    for args, words in (
        (("--month", "2026-13"), "--month '2026-13'"),
        (("--month", "2026-10", "--unit", "城北中队"), "unknown unit '城北中队'"),
    ):
        r = bwc("audit", "cases", "list", *args)
        assert r.code == 2 and words in r.err and "Traceback" not in r.err, r.err


def test_migration_keeps_logged_officers_verified(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """0012 adds the columns with every officer active: a roster logged before it (by an
    older bwc: here, imported, then the columns dropped by 0012's downgrade) still verifies
    after the upgrade, since an active officer's fact digests as it always did."""
    from alembic import command

    from bwc.evidence import db

    city(bwc, home, tmp_path)
    engine = db.make_engine(f"sqlite:///{home / 'catalog.sqlite'}", 5.0)
    cfg = db._alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
        cols = [r[1] for r in conn.exec_driver_sql("PRAGMA table_info(officer)")]
        assert "active" not in cols
        command.upgrade(cfg, "0012")
        rows = conn.exec_driver_sql("SELECT DISTINCT active, inactive_from FROM officer").all()
        assert [tuple(r) for r in rows] == [(1, None)]
        command.upgrade(cfg, "heads")  # the later migrations, as `bwc init` runs them
    engine.dispose()
    r = bwc("audit", "verify")
    assert r.code == 0, r.out
