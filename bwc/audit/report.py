"""Reports from an audit result: the report value, CSV, JSON and the rows of the terminal
table. Pure: values in, text/values out (the CLI prints; the HTML lives in bwc.audit.html).

Number formats: counts are integers; rates and coverage are plain decimals with 4 places
(0.9375); hours have 2 places; a rate with nothing to divide by is empty (CSV) / null (JSON).
CSV text cells a spreadsheet would run as a formula get a leading ' (spreadsheet_safe).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from bwc.audit.engine import AuditResult, OfficerAudit, PairResult
from bwc.audit.metrics import (
    Metrics,
    aggregate,
    group_by,
    select,
    worst_first,
    worst_first_officers,
)
from bwc.audit.model import HOUR_MS, Pair, Targets, band, from_ms, zone
from bwc.errors import UsageError
from bwc.evidence.overdue import Stretch
from bwc.evidence.timefmt import format_local, format_utc

By = Literal["officer", "unit", "county"]

# what every row counts, per officer or per group of them
_COUNTS = (
    "cases",
    "full",
    "partial",
    "none",
    "explained",
    "full_rate",
    "mean_coverage",
    "uploads",
    "on_time",
    "on_time_rate",
)
OFFICER_COLUMNS = ("officer_id", "name", "unit", "county", *_COUNTS)
GROUP_COLUMNS = (
    "officers",
    *_COUNTS,
    "p95_upload_delay_h",
    "frontline",
    "equipped",
    "equipage_rate",
    "officers_without_footage",
    "footage_h",
    "footage_h_outside_cases",
)


@dataclass
class Report:
    """What a report shows. Group metrics are computed when first asked for (a CSV per
    officer needs none of them)."""

    result: AuditResult
    unit: str | None
    county: str | None
    chosen: list[OfficerAudit]  # the officers in scope, by id
    undated: int = 0
    unverified: list[str] = field(default_factory=list)  # inputs the log does not vouch for
    # per pair with explanations: "approved", or the latest one's "submitted" / "rejected"
    explanation_states: dict[Pair, str] = field(default_factory=dict)
    targets: Targets = field(default_factory=Targets)
    previous: AuditResult | None = None  # the month before, for the changes (Δ)
    # checked-out cameras not docked for longer than dock_limit_h (bwc.evidence.overdue)
    not_docked: list[Stretch] = field(default_factory=list)
    dock_limit_h: float = 24.0

    @cached_property
    def before(self) -> Report | None:
        """The month before as a report of the same scope (None: not compared)."""
        if self.previous is None:
            return None
        return build_report(self.previous, unit=self.unit, county=self.county)

    def previous_metrics(self, by: By | Literal["all"], key: str) -> Metrics | None:
        """The month before's figures for a row (None: not compared, or no such row then)."""
        b = self.before
        if b is None:
            return None
        if by == "all":
            return b.summary
        if by == "officer":
            a = b.result.officers.get(key)
            return None if a is None else aggregate(key, [a])
        return {m.key: m for m in (b.units if by == "unit" else b.counties)}.get(key)

    @property
    def filtered(self) -> bool:
        return self.unit is not None or self.county is not None

    @cached_property
    def summary(self) -> Metrics:
        return aggregate("all", self.chosen)

    @cached_property
    def in_roster(self) -> list[OfficerAudit]:
        """The chosen officers the roster knows: only they have a unit and a county. The
        others count in the whole (their cases happened) and are named in a warning, never
        grouped as a unit or county of their own (issue 15.12)."""
        return [a for a in self.chosen if a.in_roster]

    @cached_property
    def counties(self) -> list[Metrics]:
        return group_by(self.in_roster, lambda a: a.county)

    @cached_property
    def units(self) -> list[Metrics]:
        return group_by(self.in_roster, lambda a: a.unit)

    @cached_property
    def officers(self) -> list[OfficerAudit]:
        """Worst first."""
        return worst_first_officers(self.chosen)

    @cached_property
    def non_full(self) -> list[PairResult]:
        """Pairs not fully recorded, lowest coverage first."""
        ids = {a.officer_id for a in self.chosen}
        return sorted(
            (p for p in self.result.pairs if p.verdict != "full" and p.officer_id in ids),
            key=lambda p: (p.covered / (p.end - p.start), p.start, p.case_id, p.officer_id),
        )

    @cached_property
    def not_in_roster(self) -> list[str]:
        """Ids of the chosen officers on cases who are not in the roster."""
        return [a.officer_id for a in self.missing_from_roster if a.cases]

    @cached_property
    def missing_from_roster(self) -> list[OfficerAudit]:
        """Chosen officers (on cases, or with footage) the roster does not know, by id."""
        return [a for a in self.chosen if not a.in_roster]

    @cached_property
    def warnings(self) -> list[str]:
        return self.warnings_in("en")

    def warnings_in(self, lang: Lang) -> list[str]:
        """The warnings in ``lang`` (the terminal, JSON and CSV use English; the HTML, PDF
        and xlsx the report's language). What comes from the catalog is quoted as it is."""
        if lang == "zh":
            return self._warnings_zh()
        out: list[str] = [f"UNVERIFIED INPUT: {u}" for u in self.unverified]
        if self.filtered and not self.chosen:
            what = " and ".join(
                f"{k} {v!r}" for k, v in (("unit", self.unit), ("county", self.county)) if v
            )
            out.append(f"no officer has {what} (units and counties come from the roster)")
        nir = self.missing_from_roster
        if nir:
            cases = sum(a.cases for a in nir)
            named = [
                f"{a.officer_id} ({a.cases} case{'' if a.cases == 1 else 's'}"
                + (f", {a.uploads} upload{'' if a.uploads == 1 else 's'}" if a.uploads else "")
                + ")"
                for a in sorted(nir, key=lambda a: (-a.cases, a.officer_id))
            ]
            out.append(
                f"{len(nir)} officer(s) are not in the roster, so in no unit or county "
                f"(their {cases} case-officer pair(s) count in the totals only; import them "
                "with `bwc audit import officers`): "
                + ", ".join(named[:20])
                + (f", ... ({len(named) - 20} more)" if len(named) > 20 else "")
            )
        if self.not_docked:
            out.append(
                f"{len(self.not_docked)} time(s) a checked-out camera went longer than "
                f"{self.dock_limit_h:g} h without docking (footage is due within "
                f"{self.dock_limit_h:g} h): "
                + "; ".join(self._not_docked_en(x) for x in self.not_docked[:20])
                + (f"; ... ({len(self.not_docked) - 20} more)" if len(self.not_docked) > 20 else "")
            )
        if self.undated:
            out.append(f"{self.undated} item(s) ingested this month have no recorded time")
        if self.result.invalid_clips:
            out.append(f"{self.result.invalid_clips} item(s) end before they start: skipped")
        return out

    def _warnings_zh(self) -> list[str]:
        out: list[str] = [f"输入未通过校验：{u}" for u in self.unverified]
        if self.filtered and not self.chosen:
            what = "、".join(
                f"{k}“{v}”" for k, v in (("单位", self.unit), ("区县", self.county)) if v
            )
            out.append(f"没有属于{what}的人员（单位和区县以名册为准）")
        nir = self.missing_from_roster
        if nir:
            cases = sum(a.cases for a in nir)
            named = [
                f"{a.officer_id}（{a.cases} 人次"
                + (f"，导入 {a.uploads} 个" if a.uploads else "")
                + "）"
                for a in sorted(nir, key=lambda a: (-a.cases, a.officer_id))
            ]
            out.append(
                f"{len(nir)} 名人员不在名册中，不计入任何单位或区县（其 {cases} 个应录人次只计入"
                "总数；请用 `bwc audit import officers` 导入名册）："
                + "、".join(named[:20])
                + (f"……（另有 {len(named) - 20} 名）" if len(named) > 20 else "")
            )
        if self.not_docked:
            out.append(
                f"已领用的记录仪 {len(self.not_docked)} 次超过 {self.dock_limit_h:g} 小时未接入"
                f"（应在 {self.dock_limit_h:g} 小时内导入）："
                + "；".join(self._not_docked_zh(x) for x in self.not_docked[:20])
                + (
                    f"……（另有 {len(self.not_docked) - 20} 次）"
                    if len(self.not_docked) > 20
                    else ""
                )
            )
        if self.undated:
            out.append(f"本月导入的 {self.undated} 个文件没有录制时间")
        if self.result.invalid_clips:
            out.append(f"{self.result.invalid_clips} 个文件结束时间早于开始时间，已跳过")
        return out

    def _local(self, t: datetime) -> str:
        return format_local(t, zone(self.result.period.tz))

    def _not_docked_en(self, x: Stretch) -> str:
        since = ("checked out " if x.since_checkout else "last docked ") + self._local(x.since)
        until = "still not docked" if x.until is None else f"until {self._local(x.until)}"
        return f"{x.device_id} (officer {x.officer_id}) {x.hours:.0f} h, {since}, {until}"

    def _not_docked_zh(self, x: Stretch) -> str:
        since = ("领用于 " if x.since_checkout else "上次接入 ") + self._local(x.since)
        until = "至今未接入" if x.until is None else f"至 {self._local(x.until)}"
        return f"{x.device_id}（警号 {x.officer_id}）{x.hours:.0f} 小时，{since}，{until}"


def build_report(
    result: AuditResult,
    *,
    unit: str | None = None,
    county: str | None = None,
    undated: int = 0,
    unverified: list[str] | None = None,
    explanation_states: dict[Pair, str] | None = None,
    targets: Targets | None = None,
    previous: AuditResult | None = None,
    not_docked: list[Stretch] | None = None,
    dock_limit_h: float = 24.0,
) -> Report:
    return Report(
        result,
        unit,
        county,
        select(result, unit, county),
        undated,
        unverified or [],
        explanation_states or {},
        targets or Targets(),
        previous,
        not_docked or [],
        dock_limit_h,
    )


# ------------------------------------------------------------------------------ formats


def rate(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def percent(x: float | None) -> str:
    """A rate for people: '77.0 %' (one decimal, rounded half to even as Python does); ''
    when there is nothing to divide by. CSV, xlsx and JSON keep the plain number."""
    return "" if x is None else f"{x * 100:.1f} %"


def target_text(x: float) -> str:
    """A target as people set it: '100 %', '97.5 %'."""
    return f"{x * 100:g} %"


def points(now: float | None, then: float | None) -> str:
    """The change of a rate in percentage points, '+3.2' / '-1.0' / '0.0'; '' when either
    month has no rate."""
    if now is None or then is None:
        return ""
    d = round((now - then) * 100, 1)
    return "0.0" if d == 0 else f"{d:+.1f}"


def hours(ms: int | None) -> str:
    return "" if ms is None else f"{ms / HOUR_MS:.2f}"


def _rate_json(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _hours_json(ms: int | None) -> float | None:
    return None if ms is None else round(ms / HOUR_MS, 2)


RateFormat = Callable[[float | None], str]


def officer_values(a: OfficerAudit, rate: RateFormat = rate) -> list[str]:
    return [
        a.officer_id,
        a.name,
        a.unit,
        a.county,
        str(a.cases),
        str(a.full),
        str(a.partial),
        str(a.none),
        str(a.explained),
        rate(a.full / a.cases if a.cases else None),
        rate(a.coverage_sum / a.cases if a.cases else None),
        str(a.uploads),
        str(a.on_time),
        rate(a.on_time / a.uploads if a.uploads else None),
    ]


NOT_IN_ROSTER = "(not in roster)"


def ranking_values(a: OfficerAudit, mark: str, rate: RateFormat = percent) -> list[str]:
    """``officer_values`` for a ranking people read: rates as percentages, and an officer the
    roster does not know has ``mark`` for a unit (CSV and JSON keep the empty unit, the
    plain numbers and ``in_roster``)."""
    values = officer_values(a, rate)
    if not a.in_roster:
        values[2] = mark
    return values


def group_values(m: Metrics, rate: RateFormat = rate) -> list[str]:
    return [
        str(m.officers),
        str(m.cases),
        str(m.full),
        str(m.partial),
        str(m.none),
        str(m.explained),
        rate(m.full_rate),
        rate(m.mean_coverage),
        str(m.uploads),
        str(m.on_time),
        rate(m.on_time_rate),
        hours(m.p95_delay_ms),
        str(m.frontline),
        str(m.equipped),
        rate(m.equipage_rate),
        str(m.no_footage),
        hours(m.footage_ms),
        hours(m.outside_cases_ms),
    ]


# what a spreadsheet reads as the start of a formula (OWASP, "CSV Injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text, never runs: names, units and case ids come from
    imported files, and =HYPERLINK(...) in one would run on the inspector's machine. A leading
    ' is what Excel and LibreOffice take as "this is text"; a real number (-3, +0.5) stays a
    number."""
    if cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


class _SafeWriter:
    """csv.writer whose every cell goes through spreadsheet_safe. The csv module quotes a
    cell holding a comma, a quote or a line break, so every cell reads back as written."""

    def __init__(self, buf: io.StringIO) -> None:
        self._w = csv.writer(buf, lineterminator="\n")

    def writerow(self, row: Iterable[str]) -> None:
        self._w.writerow([spreadsheet_safe(c) for c in row])


Lang = Literal["zh", "en"]
Encoding = Literal["utf-8", "gb18030", "gbk"]

# Column headers people read. English headers are the column keys (stable for scripts and
# diffs); Chinese ones are what a bureau's spreadsheet shows (issue 15.11, 15.14).
COLUMN_LABELS_ZH: dict[str, str] = {
    "officer_id": "警号",
    "name": "姓名",
    "unit": "单位",
    "county": "区县",
    "officers": "人数",
    "cases": "应录人次",
    "full": "全过程记录",
    "partial": "部分记录",
    "none": "未记录",
    "explained": "已说明",
    "full_rate": "全过程记录率",
    "mean_coverage": "平均覆盖率",
    "uploads": "导入数",
    "on_time": "按时导入",
    "on_time_rate": "按时导入率",
    "p95_upload_delay_h": "导入延迟（P95，小时）",
    "frontline": "一线人员",
    "equipped": "已配备",
    "equipage_rate": "配备率",
    "officers_without_footage": "有案件无视频人员",
    "footage_h": "视频时长（小时）",
    "footage_h_outside_cases": "案件外视频（小时）",
    "case_id": "案件编号",
    "category": "案件类别",
    "location": "地点",
    "start": "开始时间",
    "end": "结束时间",
    "verdict": "记录情况",
    "coverage": "覆盖率",
    "recorded_s": "已记录（秒）",
    "gaps": "未记录时段",
    "explanation": "情况说明状态",
}


def headers(columns: Iterable[str], lang: Lang) -> list[str]:
    """The header row in ``lang``: the keys in English, their labels in Chinese."""
    return [COLUMN_LABELS_ZH.get(c, c) if lang == "zh" else c for c in columns]


def csv_table(report: Report, by: By = "officer") -> tuple[list[str], list[list[str]]]:
    """The CSV's column keys and rows, sorted by key (stable across runs, easy to diff)."""
    if by == "officer":
        return list(OFFICER_COLUMNS), [officer_values(a) for a in report.chosen]
    if by == "unit":
        return ["unit", "county", *GROUP_COLUMNS], [
            [m.key, "/".join(m.counties), *group_values(m)] for m in report.units
        ]
    return ["county", *GROUP_COLUMNS], [[m.key, *group_values(m)] for m in report.counties]


def csv_text(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    buf = io.StringIO()
    w = _SafeWriter(buf)
    w.writerow(header)
    for row in rows:
        w.writerow(row)
    return buf.getvalue()


def to_csv(report: Report, by: By = "officer", lang: Lang = "en") -> str:
    """CSV sorted by key (stable across runs, easy to diff); header first."""
    columns, rows = csv_table(report, by)
    return csv_text(headers(columns, lang), rows)


def csv_bytes(
    header: Sequence[str], rows: Iterable[Sequence[str]], encoding: Encoding = "utf-8"
) -> bytes:
    """CSV for spreadsheets: UTF-8 with a BOM (how Excel knows it is UTF-8), or GB18030 or
    GBK, what Excel on Chinese Windows reads as "ANSI". GB18030 encodes every character;
    GBK lacks some (rare characters in names, e.g. 𠀀): a row with one is refused, naming the
    row and the column, never written with the character dropped or replaced."""
    out = [b"\xef\xbb\xbf"] if encoding == "utf-8" else []
    for n, row in enumerate([header, *rows], start=1):
        text = csv_text(row, ())  # one record (quoted line breaks and all)
        try:
            out.append(text.encode(encoding))
        except UnicodeEncodeError as e:
            bad = text[e.start]
            col = next((header[i] for i, c in enumerate(row) if bad in c and i < len(header)), "?")
            key = f" ({row[0]})" if n > 1 and row else ""
            raise UsageError(
                f"row {n}{key}, column {col}: {bad!r} (U+{ord(bad):04X}) has no {encoding.upper()}"
                " code, so the file cannot be written in it without losing it",
                hint="use --encoding gb18030 (Chinese Excel reads it; it encodes every "
                "character) or utf-8",
            ) from e
    return b"".join(out)


def metrics_json(m: Metrics) -> dict[str, Any]:
    return {
        "officers": m.officers,
        "cases": m.cases,
        "full": m.full,
        "partial": m.partial,
        "none": m.none,
        "explained": m.explained,
        "full_rate": _rate_json(m.full_rate),
        "mean_coverage": _rate_json(m.mean_coverage),
        "uploads": m.uploads,
        "on_time": m.on_time,
        "on_time_rate": _rate_json(m.on_time_rate),
        "p95_upload_delay_h": _hours_json(m.p95_delay_ms),
        "frontline": m.frontline,
        "equipped": m.equipped,
        "equipage_rate": _rate_json(m.equipage_rate),
        "officers_without_footage": m.no_footage,
        "footage_h": _hours_json(m.footage_ms),
        "footage_h_outside_cases": _hours_json(m.outside_cases_ms),
    }


def officer_json(a: OfficerAudit) -> dict[str, Any]:
    m = aggregate(a.officer_id, [a])
    return {
        "officer_id": a.officer_id,
        "name": a.name,
        "unit": a.unit,
        "county": a.county,
        "frontline": a.frontline,
        "in_roster": a.in_roster,
        "on_staff": a.on_staff,  # False: inactive (left) for the whole month
        "equipped": a.equipped,
        **{k: v for k, v in metrics_json(m).items() if k not in ("officers", "frontline")},
    }


def pair_json(p: PairResult) -> dict[str, Any]:
    return {
        "case_id": p.case_id,
        "officer_id": p.officer_id,
        "start": format_utc(from_ms(p.start)),
        "end": format_utc(from_ms(p.end)),
        "coverage": round(p.coverage, 4),
        "recorded_s": p.covered / 1000,
        "verdict": p.verdict,
        "explained": p.explained,
    }


def to_json(report: Report) -> dict[str, Any]:
    r = report.result
    start, end = r.period.bounds()
    return {
        "month": r.period.label,
        "timezone": r.period.tz,
        "period": {"start": format_utc(start), "end": format_utc(end)},
        "rules": r.rules.as_dict(),
        "filters": {"unit": report.unit, "county": report.county},
        "targets": {
            "full_rate": report.targets.full_rate,
            "on_time_rate": report.targets.on_time_rate,
        },
        "summary": metrics_json(report.summary),
        # the month before, same rules and scope (null: not compared)
        "previous": None
        if report.before is None
        else {
            "month": report.before.result.period.label,
            "summary": metrics_json(report.before.summary),
        },
        "counties": [{"county": m.key, **metrics_json(m)} for m in report.counties],
        "units": [
            {"unit": m.key, "counties": list(m.counties), **metrics_json(m)} for m in report.units
        ],
        "officers": [officer_json(a) for a in report.chosen],
        "non_full": [
            {
                **pair_json(p),
                "explanation": report.explanation_states.get((p.case_id, p.officer_id)),
            }
            for p in report.non_full
        ],
        "unattributed": {
            "clips": r.unattributed_clips,
            "footage_h": _hours_json(r.unattributed_ms),
        },
        "undated_items": report.undated,
        "officers_not_in_roster": report.not_in_roster,
        "warnings": report.warnings,
        "unverified_inputs": report.unverified,
        "cameras_not_docked": {
            "limit_h": report.dock_limit_h,
            "stretches": [
                {
                    "device_id": x.device_id,
                    "officer_id": x.officer_id,
                    "since": format_utc(x.since),
                    "since_checkout": x.since_checkout,
                    "until": format_utc(x.until) if x.until else None,
                    "hours": round(x.hours, 1),
                }
                for x in report.not_docked
            ],
        },
    }


DELTA = "full_rate_delta"  # the change of the full rate since the month before (points)


def table_rows(report: Report, by: By) -> tuple[list[str], list[list[str]]]:
    """Header and rows for the terminal table, worst first: rates as percentages, and with
    a comparison, the full rate's change since the month before (Δ, percentage points)."""
    header, rows, _bands = table_view(report, by)
    return header, rows


def table_view(report: Report, by: By) -> tuple[list[str], list[list[str]], list[dict[str, str]]]:
    """``table_rows`` with, per row, each rate column's band against its target (met,
    near, below, far; see ``band``) for colours."""
    t = report.targets
    compare = report.before is not None
    out: list[list[str]] = []
    bands: list[dict[str, str]] = []
    if by == "officer":
        header = list(OFFICER_COLUMNS)
        for a in report.officers:
            m = aggregate(a.officer_id, [a])
            row = ranking_values(a, NOT_IN_ROSTER)
            if compare:
                then = report.previous_metrics("officer", a.officer_id)
                row.append(points(m.full_rate, then.full_rate if then else None))
            out.append(row)
            bands.append(_bands(m, t))
    else:
        header = [by, *GROUP_COLUMNS]
        for m in worst_first(report.units if by == "unit" else report.counties):
            row = [m.key or "-", *group_values(m, percent)]
            if compare:
                then = report.previous_metrics(by, m.key)
                row.append(points(m.full_rate, then.full_rate if then else None))
            out.append(row)
            bands.append(_bands(m, t))
    if compare:
        header.append(DELTA)
    return header, out, bands


def _bands(m: Metrics, t: Targets) -> dict[str, str]:
    return {
        "full_rate": band(m.full_rate, t.full_rate),
        "on_time_rate": band(m.on_time_rate, t.on_time_rate),
    }
