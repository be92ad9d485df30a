"""Audit import files: schemas, CSV and JSON, times and zones, and every problem reported by
file and line, the whole file refused."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bwc.audit.model import AuditInputError
from bwc.audit.parse import (
    AssignmentIn,
    CaseIn,
    OfficerIn,
    load_rows,
    parse_rows,
    parse_time,
    sniff_format,
)
from bwc.errors import InputError

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")

OFFICERS = """officer_id,name,unit,county,frontline
110023,张三,城东中队,东城区,是
110024,李四,城东中队,东城区,true
110025,王五,城西中队,西城区,0
110026,赵六,城西中队,西城区,否
"""

CASES = """case_id,category,unit,officers,start,end,location
C1,占道经营,城东中队,110023;110024,2026-10-15T09:30:00,2026-10-15T09:40:00,人民路
C2,违章搭建,城西中队,110025,2026-10-16 10:00,2026-10-16T02:20:00Z,"解放路, 12号"
"""


def test_officers_csv() -> None:
    rows, problems = parse_rows("officers", OFFICERS.encode(), tz=SH, name="o.csv")
    assert problems == []
    assert rows == [
        OfficerIn(2, "110023", "张三", "城东中队", "东城区", True),
        OfficerIn(3, "110024", "李四", "城东中队", "东城区", True),
        OfficerIn(4, "110025", "王五", "城西中队", "西城区", False),
        OfficerIn(5, "110026", "赵六", "城西中队", "西城区", False),
    ]


def test_cases_csv_local_times_and_offsets() -> None:
    rows, problems = parse_rows("cases", CASES.encode(), tz=SH, name="c.csv")
    assert problems == []
    c1, c2 = rows
    assert isinstance(c1, CaseIn) and isinstance(c2, CaseIn)
    assert c1.officers == ("110023", "110024")
    assert c1.start == datetime(2026, 10, 15, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    assert c2.start == datetime(2026, 10, 16, 2, 0, tzinfo=UTC)
    assert c2.end == datetime(2026, 10, 16, 2, 20, tzinfo=UTC)
    assert c2.location == "解放路, 12号"


def test_bom_crlf_blank_lines_and_extra_columns() -> None:
    text = (
        "\ufeffofficer_id,name,unit,county,frontline,badge_color\r\n\r\n7,A,U,C,1,blue\r\n,,,,,\r\n"
    )
    rows, problems = parse_rows("officers", text.encode(), tz=SH)
    assert problems == []
    assert [r.line for r in rows] == [3]


def test_gbk_needs_its_encoding() -> None:
    data = OFFICERS.encode("gbk")
    rows, problems = parse_rows("officers", data, tz=SH, name="o.csv")
    assert rows == [] and problems[0].line == 2 and "--encoding" in problems[0].message
    rows, problems = parse_rows("officers", data, tz=SH, encoding="gbk")
    assert problems == [] and len(rows) == 4


def test_bad_rows_named_by_line_and_nothing_returned() -> None:
    text = (
        "case_id,category,unit,officers,start,end,location\n"
        "C1,a,u,110023,2026-10-15T09:30:00,2026-10-15T09:40:00,x\n"
        'C2,a,u,110023,2026-10-15T09:30:00,2026-10-15T09:40:00,"two\n'  # quoted, 2 lines
        'lines"\n'
        "C3,a,u,110023,2026-10-15T09:30:00,2026-10-15T09:30:00,x\n"  # zero length: line 5
        "C4,a,u,110023,2026-10-15T09:30:00,2026-10-15T09:00:00,x\n"  # inverted: line 6
        "C5,a,u,,2026-10-15T09:30:00,2026-10-15T09:40:00,x\n"  # no officers: line 7
        "C6,a,u,110023,2026-10-15,2026-10-15T09:40:00,x\n"  # date without time: line 8
        "C1,a,u,110023,2026-10-15T09:30:00,2026-10-15T09:40:00,x\n"  # duplicate id: line 9
        "C7,a,u\n"  # short row: line 10
    )
    rows, problems = parse_rows("cases", text.encode(), tz=SH, name="c.csv")
    assert [r.location for r in rows] == ["x", "two\nlines"]  # type: ignore[union-attr]
    assert [p.line for p in problems] == [5, 6, 7, 8, 9, 10]
    assert "zero length" in problems[0].message
    assert "ends before it starts" in problems[1].message
    assert "officers is empty" in problems[2].message
    assert "date and time" in problems[3].message
    assert "already on line 2" in problems[4].message
    assert "expected 7 fields, found 3" in problems[5].message
    with pytest.raises(AuditInputError) as e:
        load_rows("cases", text.encode(), tz=SH, name="c.csv")
    msg = str(e.value)
    assert msg.startswith("c.csv line 5: case C3 has zero length")
    assert "5 more problem(s), on line(s) 6, 7, 8, 9, 10" in msg
    assert "nothing was imported" in msg and "\n" not in msg
    assert isinstance(e.value, InputError) and e.value.exit_code == 6


def test_missing_column_and_mapping() -> None:
    text = "编号,类别,单位,人员,开始,结束,地点\nC1,a,u,1;2,2026-10-15T09:30,2026-10-15T09:40,x\n"
    _rows, problems = parse_rows("cases", text.encode(), tz=SH)
    assert problems[0].line == 1 and "missing column(s) case_id, officers, start, end" in (
        problems[0].message
    )
    mapping = {
        "编号": "case_id",
        "类别": "category",
        "单位": "unit",
        "人员": "officers",
        "开始": "start",
        "结束": "end",
        "地点": "location",
    }
    rows, problems = parse_rows("cases", text.encode(), tz=SH, columns=mapping)
    assert problems == [] and rows[0].officers == ("1", "2")  # type: ignore[union-attr]
    _rows, problems = parse_rows("cases", text.encode(), tz=SH, columns={"编码": "case_id"})
    assert "no column '编码'" in problems[0].message


def test_officer_separators_and_duplicates_in_a_case() -> None:
    text = "case_id,officers,start,end\nC1, 1；2 ;1;; ,2026-10-15T09:30,2026-10-15T09:40\n"
    rows, problems = parse_rows("cases", text.encode(), tz=SH)
    assert problems == []
    assert rows[0].officers == ("1", "2")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "ok"),
    [("true", True), ("FALSE", True), ("1", True), ("0", True), ("是", True), ("否", True),
     ("maybe", False), ("", False)],
)  # fmt: skip
def test_frontline_values(value: str, ok: bool) -> None:
    text = f"officer_id,name,unit,county,frontline\n1,a,u,c,{value}\n"
    _rows, problems = parse_rows("officers", text.encode(), tz=SH)
    assert (problems == []) is ok


def test_assignments_open_end_and_bad_end() -> None:
    text = (
        "officer_id,device_id,start,end\n"
        "1,D1,2026-10-15T08:00:00+08:00,\n"
        "2,D1,2026-10-15T12:00:00,2026-10-15T11:00:00\n"
    )
    rows, problems = parse_rows("assignments", text.encode(), tz=SH)
    assert [p.line for p in problems] == [3]
    assert "not after start" in problems[0].message
    a = rows[0]
    assert isinstance(a, AssignmentIn) and a.end is None
    assert a.start == datetime(2026, 10, 15, 0, 0, tzinfo=UTC)


def test_json_array_lines_and_types() -> None:
    text = """[
  {"case_id": "C1", "officers": ["110023", 110024], "start": "2026-10-15T09:30:00",
   "end": "2026-10-15T09:40:00", "category": "a"},

  {"case_id": "C2", "officers": "110023",
   "start": "2026-10-15T09:40:00", "end": "2026-10-15T09:30:00"},
  {"case_id": 3, "officers": "9", "start": "x", "end": "2026-10-15T09:30:00"}
]"""
    rows, problems = parse_rows("cases", text.encode(), tz=SH, name="c.json")
    assert [p.line for p in problems] == [5, 7]
    assert rows[0].officers == ("110023", "110024")  # type: ignore[union-attr]


def test_json_lines_and_invalid_json() -> None:
    text = (
        '{"officer_id": 1, "name": "a", "unit": "u", "county": "c", "frontline": true}\n'
        '{"officer_id": 2, "name": "b", "unit": "u", "county": "c", "frontline": "否"}\n'
    )
    rows, problems = parse_rows("officers", text.encode(), tz=SH, name="o.jsonl")
    assert problems == [] and [r.officer_id for r in rows] == ["1", "2"]  # type: ignore[union-attr]
    bad = text + '{"officer_id": 3, "name": \n'
    _rows, problems = parse_rows("officers", bad.encode(), tz=SH, name="o.jsonl")
    assert problems[0].line in (3, 4) and "invalid JSON" in problems[0].message
    _rows, problems = parse_rows("officers", b'[{"officer_id": 1}]', tz=SH, name="o.json")
    assert "missing field(s) name, unit, county, frontline" in problems[0].message


def test_sniffing() -> None:
    assert sniff_format("x.csv", b"[") == "csv"
    assert sniff_format("x.JSON", b"a") == "json"
    assert sniff_format("export", b"\xef\xbb\xbf  [") == "json"
    assert sniff_format("export", b"case_id,") == "csv"


def test_times_in_offset_zones_and_dst() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # +05:45, no DST
    assert parse_time("2026-10-01T00:00", kathmandu) == datetime(2026, 9, 30, 18, 15, tzinfo=UTC)
    assert parse_time("2026-10-01 00:00:00+05:45", SH) == datetime(2026, 9, 30, 18, 15, tzinfo=UTC)
    ny = ZoneInfo("America/New_York")
    with pytest.raises(ValueError, match="does not exist"):
        parse_time("2026-03-08T02:30:00", ny)  # clocks jump 02:00 -> 03:00
    # an ambiguous fall-back time takes the earlier instant (EDT)
    assert parse_time("2026-11-01T01:30:00", ny) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("2026-10-01", SH)


def test_json_nested_past_the_stack_is_a_problem_not_a_crash() -> None:
    """Issue 12's class (a structure deeper than the recursion limit): the record's line is
    named, no RecursionError (exit 10)."""
    good = '{"officer_id": 1, "name": "a", "unit": "u", "county": "c", "frontline": true}\n'
    deep = '{"officer_id": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    _rows, problems = parse_rows("officers", (good + deep).encode(), tz=SH, name="o.jsonl")
    assert [(p.line, p.message) for p in problems] == [(2, "invalid JSON: nested too deeply")]
