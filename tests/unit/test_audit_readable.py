"""A report a bureau chief reads at a glance (issue 15.11), the pure parts: rates as
percentages, targets and colour bands by distance to them, the change since the month
before (Δ, percentage points), natural Chinese labels for the month and the time zone."""

from __future__ import annotations

import csv
import io

import pytest

from bwc.audit.config import rules_from, targets_of
from bwc.audit.engine import AuditResult, run_audit
from bwc.audit.html import month_label, render_html, zone_text
from bwc.audit.model import Case, Clip, Officer, Period, Rules, Targets, band
from bwc.audit.report import (
    DELTA,
    build_report,
    percent,
    points,
    table_rows,
    table_view,
    to_csv,
    to_json,
)
from bwc.config.settings import AuditSettings
from bwc.errors import HomeError
from tests.unit.test_audit_report import MIN, city, t

pytestmark = pytest.mark.unit


def test_percent_and_points() -> None:
    assert percent(0.77) == "77.0 %" and percent(1.0) == "100.0 %" and percent(None) == ""
    assert percent(2 / 3) == "66.7 %"
    assert points(0.8, 0.75) == "+5.0" and points(0.5, 1.0) == "-50.0"
    assert points(0.7, 0.7) == "0.0" and points(None, 0.5) == "" and points(0.5, None) == ""


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        (1.0, 1.0, "met"),
        (0.96, 0.95, "met"),
        (0.95, 0.95, "met"),  # exactly on target, despite binary fractions
        (0.95, 1.0, "near"),
        (0.90, 0.95, "near"),
        (0.94, 1.0, "below"),
        (0.85, 1.0, "below"),
        (0.849, 1.0, "far"),
        (0.0, 1.0, "far"),
        (None, 1.0, "none"),
    ],
)
def test_bands_are_distance_to_target(value: float | None, target: float, expected: str) -> None:
    assert band(value, target) == expected


def test_previous_month() -> None:
    assert Period(2026, 10, "Asia/Shanghai").previous() == Period(2026, 9, "Asia/Shanghai")
    assert Period(2026, 1, "UTC").previous() == Period(2025, 12, "UTC")


def test_labels_for_chinese_readers() -> None:
    oct_ = Period(2026, 10, "Asia/Shanghai")
    assert month_label(oct_, "zh") == "2026年10月" and month_label(oct_, "en") == "2026-10"
    assert zone_text(oct_, "zh") == "北京时间 (UTC+8)"
    assert zone_text(oct_, "en") == "Asia/Shanghai (UTC+8)"
    assert zone_text(Period(2026, 10, "Asia/Kolkata"), "zh") == "Asia/Kolkata (UTC+5:30)"
    assert zone_text(Period(2026, 1, "America/New_York"), "en") == "America/New_York (UTC-5)"


def september() -> AuditResult:
    """110023 recorded September's case fully, 110024 not at all."""
    s = t("2026-09-10T09:00:00")
    return run_audit(
        Period(2026, 9, "Asia/Shanghai"),
        Rules(),
        officers=[
            Officer("110023", "张三", "城东中队", "东城区", True),
            Officer("110024", "李四", "城东中队", "东城区", True),
        ],
        cases=[Case("S1", "", "城东中队", s, s + 10 * MIN, "", ("110023", "110024"))],
        clips=[Clip("110023", "D1", s, s + 10 * MIN, s + 11 * MIN)],
        assignments=[],
        clocks=[],
        explanations=set(),
    )


def test_table_shows_percentages_bands_and_the_change() -> None:
    rep = build_report(city(), previous=september(), targets=Targets(0.9, 1.0))
    header, rows, bands = table_view(rep, "officer")
    assert header[-1] == DELTA
    by_id = {r[0]: (r, b) for r, b in zip(rows, bands, strict=True)}
    row, b = by_id["110023"]
    full = header.index("full_rate")
    # October: C1 full, C3 explained but partial: 50 %; September 100 %
    assert (row[full], row[-1], b["full_rate"]) == ("50.0 %", "-50.0", "far")
    row, b = by_id["110024"]  # 0 % in September too
    assert (row[full], row[-1]) == ("0.0 %", "0.0")
    assert by_id["110026"][0][-1] == ""  # no case in either month: no change to show
    header, rows, _ = table_view(rep, "county")
    east = next(r for r in rows if r[0] == "东城区")
    assert east[header.index("full_rate")] == "33.3 %" and east[-1] == "-16.7"
    assert "-" not in next(r for r in rows if r[0] == "西城区")[-1]  # no September row

    # without a comparison: no Δ column; CSV keeps plain numbers
    header, _ = table_rows(build_report(city()), "officer")
    assert DELTA not in header
    csv_rows = list(csv.DictReader(io.StringIO(to_csv(rep))))
    assert {r["full_rate"] for r in csv_rows} >= {"0.5000", "0.0000"}
    assert all("%" not in v for r in csv_rows for v in r.values())


def test_json_has_targets_and_the_month_before() -> None:
    data = to_json(build_report(city(), previous=september(), targets=Targets(0.9, 0.95)))
    assert data["targets"] == {"full_rate": 0.9, "on_time_rate": 0.95}
    assert data["previous"]["month"] == "2026-09"
    assert data["previous"]["summary"]["full_rate"] == 0.5
    assert to_json(build_report(city()))["previous"] is None


def test_html_percentages_target_line_and_change() -> None:
    rep = build_report(city(), previous=september(), targets=Targets(0.9, 1.0))
    html = render_html(rep, lang="zh")
    assert "2026年10月" in html and "时区：北京时间 (UTC+8)" in html
    for label in ("应录人次", "全过程记录率", "按时导入率", "导入延迟（P95，小时）"):
        assert label in html, label
    assert 'class="tgt"' in html and "目标 90 %" in html
    assert "较2026年9月 -30.0 个百分点" in html  # the summary card's change
    assert "0.5000" not in html and "%" in html
    assert 'class="b-far"' in html  # 40 % full against a 90 % target
    html = render_html(build_report(city(), targets=Targets(0.2, 1.0)), lang="en")
    assert "target 20 %" in html and "Δ" not in html


def test_the_rules_said_in_words() -> None:
    """The rules line reads as a sentence, in the report's language, with the values used
    (not "max_gap_s = 5")."""
    rep = build_report(city())
    rules = rep.result.rules.as_dict()
    zh = render_html(rep, lang="zh")
    assert (
        f"审计规则：片段间隔不超过 {rules['max_gap_s']:g} 秒视为连续；"
        f"开始宽限 {rules['start_grace_s']:g} 秒、结束宽限 {rules['end_grace_s']:g} 秒"
        f"（各不超过案件时长的 25%）；视频结束后 {rules['upload_limit_h']:g} 小时内导入为按时导入。"
    ) in zh
    assert "max_gap" not in zh and " = " not in zh.split('id="rules"')[1].split("</p>")[0]
    en = render_html(rep, lang="en")
    assert f"Rules: clips at most {rules['max_gap_s']:g} s apart count as one recording" in en


def test_targets_from_the_config() -> None:
    assert targets_of(AuditSettings()) == Targets(1.0, 1.0)
    assert targets_of(AuditSettings(target_full_pct=95, target_on_time_pct=90)) == Targets(
        0.95, 0.9
    )
    with pytest.raises(HomeError, match=r"audit\.target_full_pct"):
        rules_from({"target_full_pct": 120})


def test_warnings_in_chinese() -> None:
    """issue 15.11: the zh HTML and xlsx say the warnings in Chinese."""
    rep = build_report(city(), undated=2)
    zh = rep.warnings_in("zh")
    assert len(zh) == len(rep.warnings) == 2
    assert "999（1 人次）" in zh[0] and "不在名册" in zh[0]
    assert zh[1] == "本月导入的 2 个文件没有录制时间"
    html = render_html(rep, lang="zh")
    assert "本月导入的 2 个文件没有录制时间" in html and "no recorded time" not in html
    assert "no recorded time" in render_html(rep, lang="en")


def test_counts_and_hours_in_the_html_are_grouped_the_csv_plain() -> None:
    """A city's month has thousands of uploads: the cards say 1,200 and 1,200.00 hours; the
    CSV, which spreadsheets read as numbers, keeps 1200."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bwc.audit.model import to_ms

    s = to_ms(datetime(2026, 10, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    hour = 3_600_000
    clips = [
        Clip("110023", "D1", s + i * hour, s + (i + 1) * hour, s + 500 * hour) for i in range(600)
    ]
    clips += [
        Clip("110024", "D2", s + i * hour, s + (i + 1) * hour, s + 600 * hour) for i in range(600)
    ]
    result = run_audit(
        Period(2026, 10, "Asia/Shanghai"),
        Rules(),
        officers=[Officer("110023", "张三", "城东中队", "东城区", True)],
        cases=[],
        clips=clips,
        assignments=[],
        clocks=[],
        explanations=set(),
    )
    rep = build_report(result)
    html = render_html(rep, lang="zh")
    assert 'id="card-uploads">导入数<b>1,200</b>' in html
    assert 'id="card-outside">' in html and "<b>1,200.00</b>" in html.split('id="card-outside">')[1]
    rows = list(csv.DictReader(io.StringIO(to_csv(rep))))
    assert sum(int(r["uploads"]) for r in rows) == 1200
