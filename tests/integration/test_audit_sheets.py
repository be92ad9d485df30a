"""Issue 15.13 and 15.14 on a real catalog: spreadsheets Chinese Excel opens (CSV with a BOM
or in GB18030/GBK, .xlsx read back with openpyxl), the explanation workflow (submitted,
approved or rejected by a named supervisor, each a custody event) and the problem list
(问题清单) in every format."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from sqlmodel import col, func, select

from bwc.evidence.models import Event, Explanation
from tests.integration.test_audit_cli import city, count, sql, station, unbom, write
from tests.integration.test_audit_html import chromium

pytestmark = pytest.mark.integration

HOSTILE = "=cmd|' /C calc'!A0"


def events(home: Path, kind: str) -> int:
    with station(home).session() as s:
        q = select(func.count()).select_from(Event).where(col(Event.kind) == kind)
        return int(s.exec(q).one())


# ------------------------------------------------------------------------------ CSV


def test_csv_has_a_bom_and_chinese_headers_under_zh(bwc, home: Path, tmp_path: Path) -> None:
    city(bwc, home, tmp_path)
    out = tmp_path / "r.csv"
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--out", out)
    assert r.code == 0, r.err
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0])[:5] == ["警号", "姓名", "单位", "区县", "应录人次"]
    assert {r["警号"]: r["全过程记录率"] for r in rows}["110023"] == "1.0000"
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--by", "county")
    assert r.out.startswith("\ufeff区县,人数,应录人次")  # stdout: the same bytes

    # GB18030: what Excel on Chinese Windows reads as ANSI
    out = tmp_path / "r-gb.csv"
    r = bwc(
        "audit",
        "report",
        "--month",
        "2026-10",
        "--format",
        "csv",
        "--encoding",
        "gb18030",
        "--out",
        out,
    )
    assert r.code == 0, r.err
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and "张三".encode("gb18030") in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("gb18030"))))
    assert {r["警号"]: r["姓名"] for r in rows}["110023"] == "张三"
    r = bwc("audit", "report", "--month", "2026-10", "--format", "json", "--encoding", "gbk")
    assert r.code == 2 and "--encoding is for --format csv" in r.err


def test_a_name_gbk_lacks_is_never_dropped(bwc, home: Path, tmp_path: Path) -> None:
    """𠀀 (U+20000) is outside GBK: --encoding gbk refuses naming the row and column (no file
    written), gb18030 keeps it, byte for byte."""
    rare = "officer_id,name,unit,county,frontline\n7,王𠀀,一中队,东城区,是\n"
    cases = "case_id,officers,start,end\nK1,7,2026-10-15T09:30:00,2026-10-15T09:40:00\n"
    for kind, text in (("officers", rare), ("cases", cases)):
        assert bwc("audit", "import", kind, write(tmp_path, f"{kind}.csv", text)).code == 0
    out = tmp_path / "gbk.csv"
    base = ("audit", "report", "--month", "2026-10", "--format", "csv", "--out", out)
    r = bwc(*base, "--encoding", "gbk")
    assert r.code == 2, r.err
    assert "row 2 (7), column 姓名" in r.err and "U+20000" in r.err and "gb18030" in r.err
    assert len(r.err.strip().splitlines()) <= 2 and not out.exists()
    r = bwc(*base, "--encoding", "gb18030")
    assert r.code == 0, r.err
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("gb18030"))))
    assert rows[1][1] == "王𠀀"


def test_csv_fields_with_commas_quotes_and_line_breaks_round_trip(
    bwc,  # type: ignore[no-untyped-def]
    home: Path,
    tmp_path: Path,
) -> None:
    name = 'Zhang, "Big"\nSan'
    officers = 'officer_id,name,unit,county,frontline\n7,"Zhang, ""Big""\nSan",U,C,是\n'
    cases = "case_id,officers,start,end\nK1,7,2026-10-15T09:30:00,2026-10-15T09:40:00\n"
    for kind, text in (("officers", officers), ("cases", cases)):
        assert bwc("audit", "import", kind, write(tmp_path, f"{kind}.csv", text)).code == 0
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en")
    assert r.code == 0, r.err
    (row,) = list(csv.DictReader(io.StringIO(unbom(r.out))))
    assert row["name"] == name and row["cases"] == "1"


# ------------------------------------------------------------------------------ xlsx


def test_xlsx_report_reads_back_with_numbers_as_numbers(
    bwc,  # type: ignore[no-untyped-def]
    home: Path,
    tmp_path: Path,
) -> None:
    city(bwc, home, tmp_path)
    out = tmp_path / "r.xlsx"
    r = bwc("audit", "report", "--month", "2026-10", "--format", "xlsx", "--out", out)
    assert r.code == 0, r.err
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["概况", "各区县", "各单位", "人员", "未完整记录案件"]
    ws = wb["人员"]
    head = [c.value for c in ws[1]]
    assert head[:5] == ["警号", "姓名", "单位", "区县", "应录人次"]
    assert all(c.font.b for c in ws[1]) and ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width >= 10
    rows = {r[0]: dict(zip(head, r, strict=True)) for r in ws.iter_rows(2, values_only=True)}
    b = rows["110024"]
    assert b["应录人次"] == 1 and isinstance(b["应录人次"], int)
    assert b["平均覆盖率"] == pytest.approx(0.7) and isinstance(b["平均覆盖率"], float)
    assert rows["110023"]["全过程记录率"] == 1
    cov = next(c for c in ws[2] if c.column == head.index("全过程记录率") + 1)
    assert cov.number_format == "0.0%"

    ws = wb["各区县"]
    head = [c.value for c in ws[1]]
    east = {r[0]: dict(zip(head, r, strict=True)) for r in ws.iter_rows(2, values_only=True)}
    assert east["东城区"]["应录人次"] == 3 and east["西城区"]["应录人次"] == 1

    ws = wb["未完整记录案件"]
    cases = list(ws.iter_rows(2, values_only=True))
    (c1,) = [c for c in cases if c[0] == "C1"]
    # real date-times, in local (Shanghai) time
    assert c1[2] == datetime(2026, 10, 15, 9, 30) and c1[3] == datetime(2026, 10, 15, 9, 40)
    assert ws["C2"].number_format == "yyyy-mm-dd hh:mm:ss" and ws["C2"].is_date
    assert c1[4] == "部分记录" and c1[5] == pytest.approx(0.7)

    summary = {r[0]: r[1] for r in wb["概况"].iter_rows(2, values_only=True)}
    assert summary["月份"] == "2026-10" and summary["应录人次"] == 4
    assert summary["全过程记录率"] == pytest.approx(0.5)

    r = bwc(
        "audit", "report", "--month", "2026-10", "--format", "xlsx", "--lang", "en", "--out", out
    )
    assert r.code == 0, r.err
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[:4] == ["Summary", "Counties", "Units", "Officers"]
    assert [c.value for c in wb["Officers"][1]][:2] == ["officer_id", "name"]

    r = bwc("audit", "report", "--month", "2026-10", "--format", "xlsx")
    assert r.code == 2 and "--out" in r.err and r.out == ""


def test_hostile_cells_are_text_never_formulas(bwc, home: Path, tmp_path: Path) -> None:
    """OWASP CSV injection: cells starting with = + - @ never become formulas: in CSV a
    leading ' ; in xlsx a string cell with Excel's quote prefix, no <f> element anywhere."""
    quoted = HOSTILE.replace('"', '""')
    officers = f'officer_id,name,unit,county,frontline\n@7,"{quoted}",+U,-C,是\n'
    cases = f'case_id,officers,start,end\n"{quoted}",@7,2026-10-15T09:30:00,2026-10-15T09:40:00\n'
    for kind, text in (("officers", officers), ("cases", cases)):
        r = bwc("audit", "import", kind, write(tmp_path, f"{kind}.csv", text))
        assert r.code == 0, r.err
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--lang", "en")
    (row,) = list(csv.DictReader(io.StringIO(unbom(r.out))))
    assert row["name"] == "'" + HOSTILE and row["officer_id"] == "'@7"

    out = tmp_path / "r.xlsx"
    r = bwc("audit", "report", "--month", "2026-10", "--format", "xlsx", "--out", out)
    assert r.code == 0, r.err
    with zipfile.ZipFile(out) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name
    wb = openpyxl.load_workbook(out)
    cell = wb["人员"]["B2"]
    assert cell.value == HOSTILE and cell.data_type == "s" and cell.quotePrefix
    assert wb["人员"]["A2"].value == "@7" and wb["人员"]["A2"].data_type == "s"
    assert wb["未完整记录案件"]["A2"].value == HOSTILE

    out = tmp_path / "i.xlsx"
    r = bwc("audit", "issues", "--month", "2026-10", "--format", "xlsx", "--out", out)
    assert r.code == 0, r.err
    ws = openpyxl.load_workbook(out).active
    assert ws is not None
    values = [c.value for c in ws[2]]
    assert HOSTILE in values and all(c.data_type != "f" for c in ws[2])


# ------------------------------------------------------------------------------ explanations


def test_explanations_are_approved_or_rejected_by_a_named_supervisor(
    bwc,  # type: ignore[no-untyped-def]
    home: Path,
    tmp_path: Path,
) -> None:
    city(bwc, home, tmp_path)
    # C1 was recorded in full by 110023: no explanation needed, nothing stored or logged
    n0 = events(home, "explained")
    r = bwc("audit", "explain", "C1", "110023", "--reason", "x")
    assert r.code == 0 and "not needed" in r.out, r.err
    assert count(home, Explanation) == 0 and events(home, "explained") == n0

    # bad input: one line, a documented exit code, nothing changed
    bad = [
        (("C9", "110024", "--by", "王队长"), 3, "no case 'C9'"),
        (("C1", "110025", "--by", "王队长"), 3, "not on case"),
        (("C1", "110024", "--by", "王队长"), 3, "no explanation for case 'C1'"),
        (("C1", "110024", "--by", " "), 2, "--by is empty"),
        (("C1", "110024", "--by", "王队长", "--reject"), 2, "--reject needs --reason"),
    ]
    for args, code, msg in bad:
        r = bwc("audit", "approve", *args)
        assert r.code == code and msg in r.err and "Traceback" not in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) <= 2
    assert events(home, "explanation-reviewed") == 0

    assert bwc("audit", "explain", "C1", "110024", "--reason", "电池耗尽").code == 0
    r = bwc("audit", "approve", "C1", "110024", "--by", "王队长", "--reject", "--reason", "太笼统")
    assert r.code == 0 and "rejected by 王队长" in r.out, r.err
    assert re.search(r"rejected by 王队长 at \S+ \S+ \+08:00: 太笼统", r.out), r.out
    r = bwc("audit", "approve", "C1", "110024", "--by", "王队长")
    assert r.code == 2 and "already rejected by 王队长" in r.err
    assert bwc("audit", "explain", "C1", "110024", "--reason", "电池耗尽，09:33 换电池").code == 0
    r = bwc("audit", "approve", "C1", "110024", "--by", "王队长", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert (data["status"], data["reviewed_by"]) == ("approved", "王队长")
    r = bwc("audit", "approve", "C1", "110024", "--by", "李科长")
    assert r.code == 2 and "already approved by 王队长" in r.err  # approving twice
    assert events(home, "explained") == n0 + 2 and events(home, "explanation-reviewed") == 2

    r = bwc("audit", "case", "C1", "--json")
    (me,) = [o for o in json.loads(r.out)["officers"] if o["officer_id"] == "110024"]
    assert me["explained"] is True
    assert [e["status"] for e in me["explanations"]] == ["rejected", "approved"]
    r = bwc("audit", "case", "C1")
    assert "approved by 王队长" in r.out and "rejected by 王队长" in r.out
    # who explained and who reviewed, when: in the case's zone with its offset, as above
    assert re.search(r"explained by \S+ at \S+ \S+ \+08:00: 电池耗尽", r.out), r.out
    assert re.search(r"approved by 王队长 at \S+ \S+ \+08:00\)", r.out), r.out
    r = bwc("audit", "verify")
    assert r.code == 0, r.out


def test_an_approval_without_its_event_does_not_verify(bwc, home: Path, tmp_path: Path) -> None:
    city(bwc, home, tmp_path)
    assert bwc("audit", "explain", "C1", "110024", "--reason", "电池耗尽").code == 0
    assert bwc("audit", "verify").code == 0
    sql(home, "UPDATE explanation SET status = 'approved', reviewed_by = 'nobody'")
    r = bwc("audit", "verify")
    assert r.code == 1 and "FAIL explanations: " in r.out and "differs from the log" in r.out
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv")
    assert r.code == 1 and r.out == "" and "explanations:" in r.err


def test_a_rejection_changed_to_an_approval_does_not_verify(
    bwc,  # type: ignore[no-untyped-def]
    home: Path,
    tmp_path: Path,
) -> None:
    city(bwc, home, tmp_path)
    assert bwc("audit", "explain", "C1", "110024", "--reason", "电池耗尽").code == 0
    r = bwc("audit", "approve", "C1", "110024", "--by", "王队长", "--reject", "--reason", "否")
    assert r.code == 0, r.err
    assert bwc("audit", "verify").code == 0
    sql(home, "UPDATE explanation SET status = 'approved'")
    r = bwc("audit", "verify")
    assert r.code == 1 and "FAIL explanations: " in r.out


# ------------------------------------------------------------------------------ the problem list


def test_the_problem_list(bwc, home: Path, tmp_path: Path) -> None:
    city(bwc, home, tmp_path)
    r = bwc("audit", "issues", "--month", "2026-10", "--format", "csv", "--lang", "en")
    assert r.code == 0, r.err
    rows = list(csv.DictReader(io.StringIO(unbom(r.out))))
    # the two partial pairs; 110023's full cases are not there
    assert [(x["case_id"], x["officer_id"]) for x in rows] == [("C1", "110024"), ("C2", "110025")]
    c1 = rows[0]
    assert (c1["verdict"], c1["coverage"], c1["explanation"]) == (
        "partial",
        "0.7000",
        "none submitted",
    )
    assert (c1["start"], c1["end"]) == ("2026-10-15 09:30:00", "2026-10-15 09:40:00")
    assert c1["gaps"] == "09:30:00–09:33:00 (180 s)"  # local time, not UTC
    assert (c1["unit"], c1["county"], c1["name"]) == ("城东中队", "东城区", "李四")

    assert bwc("audit", "explain", "C1", "110024", "--reason", "电池耗尽").code == 0
    r = bwc("audit", "issues", "--month", "2026-10")  # the table, in Chinese
    assert r.code == 0, r.err
    assert "问题清单 · 2026-10" in r.out and "共 2 条待说明" in r.out and "待审核" in r.out
    assert bwc("audit", "approve", "C1", "110024", "--by", "王队长").code == 0
    r = bwc("audit", "issues", "--month", "2026-10", "--format", "csv", "--unit", "城东中队")
    assert r.code == 0, r.err
    assert len(list(csv.reader(io.StringIO(unbom(r.out))))) == 1  # the header only
    r = bwc("audit", "issues", "--month", "2026-10", "--unit", "城北中队")
    assert r.code == 2 and "城东中队" in r.err

    out = tmp_path / "i.xlsx"
    r = bwc("audit", "issues", "--month", "2026-10", "--format", "xlsx", "--out", out)
    assert r.code == 0, r.err
    ws = openpyxl.load_workbook(out)["问题清单"]
    head = [c.value for c in ws[1]]
    (row,) = [dict(zip(head, r, strict=True)) for r in ws.iter_rows(2, values_only=True)]
    assert row["案件编号"] == "C2" and row["开始时间"] == datetime(2026, 10, 15, 14, 0)
    assert row["覆盖率"] == pytest.approx(0.4) and row["记录情况"] == "部分记录"
    assert ws.freeze_panes == "A2" and ws["A1"].font.b

    out = tmp_path / "i.html"
    r = bwc("audit", "issues", "--month", "2026-10", "--format", "html", "--out", out)
    assert r.code == 0, r.err
    dom = chromium(tmp_path, "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "问题清单 · 2026-10" in html and "<th>未记录时段</th>" in html
    assert html.count("<tr>") == 2  # the header and C2: C1's explanation was approved
    assert "14:04:00–14:10:00 (360秒)" in html and "待审核" not in html


def test_explanations_from_before_reviews_await_one(bwc, home: Path, tmp_path: Path) -> None:
    """Migration 0010_explanation_review on a catalog with an explanation: it becomes
    "submitted" (no longer counted), still verifies against its old `explained` event, and
    counts once approved."""
    from alembic import command
    from sqlalchemy import text

    from bwc.evidence.db import _alembic_config, make_engine

    city(bwc, home, tmp_path)
    assert bwc("audit", "explain", "C1", "110024", "--reason", "电池耗尽").code == 0
    engine = make_engine(f"sqlite:///{home / 'catalog.sqlite'}")
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009")
        cols = [r[1] for r in conn.execute(text("PRAGMA table_info(explanation)"))]
        assert "status" not in cols
    engine.dispose()
    r = bwc("audit", "verify")
    assert r.code == 8 and "bwc init" in r.err, r.err
    assert bwc("init").code == 0
    with station(home).session() as s:
        assert [e.status for e in s.exec(select(Explanation))] == ["submitted"]
    assert bwc("audit", "verify").code == 0
    r = bwc("audit", "report", "--month", "2026-10", "--format", "json")
    assert json.loads(r.out)["summary"]["explained"] == 0
    assert bwc("audit", "approve", "C1", "110024", "--by", "王队长").code == 0
    r = bwc("audit", "report", "--month", "2026-10", "--format", "json")
    assert json.loads(r.out)["summary"]["explained"] == 1
