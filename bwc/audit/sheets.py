"""Excel workbooks (.xlsx, openpyxl) of the audit report and the problem list: one sheet per
table, numbers as numbers (counts as integers, rates as fractions shown as percentages,
hours as decimals, times as Excel date-times in the report's time zone), a bold, frozen
header row, column widths set, labels in Chinese or English.

Text from imported files (names, units, case ids) is stored as text, never as a formula: a
cell that would start a formula (= + - @, OWASP's CSV-injection list) is a string cell with
Excel's quote prefix, shown as typed and never run. The only module that imports openpyxl
(written in write-only mode: rows stream out, memory stays flat)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from bwc.audit.engine import OfficerAudit
from bwc.audit.issues import COLUMNS as ISSUE_COLUMNS
from bwc.audit.issues import Issue, gaps_text, word
from bwc.audit.metrics import Metrics, aggregate
from bwc.audit.model import HOUR_MS, from_ms
from bwc.audit.report import (
    _FORMULA_START,
    GROUP_COLUMNS,
    OFFICER_COLUMNS,
    Lang,
    Report,
    headers,
)

Kind = Literal["text", "int", "rate", "hours", "seconds", "time"]
Value = str | int | float | datetime | None

_FORMATS: dict[Kind, str] = {
    "text": "@",
    "int": "0",
    "rate": "0.0%",
    "hours": "0.00",
    "seconds": "0.###",
    "time": "yyyy-mm-dd hh:mm:ss",
}
_WIDTHS: dict[Kind, float] = {
    "text": 14,
    "int": 10,
    "rate": 12,
    "hours": 12,
    "seconds": 12,
    "time": 20,
}
_BOLD = Font(bold=True)

SHEET_TITLES: dict[str, dict[Lang, str]] = {
    "summary": {"en": "Summary", "zh": "概况"},
    "counties": {"en": "Counties", "zh": "各区县"},
    "units": {"en": "Units", "zh": "各单位"},
    "officers": {"en": "Officers", "zh": "人员"},
    "cases": {"en": "Cases not fully recorded", "zh": "未完整记录案件"},
    "issues": {"en": "Problem list", "zh": "问题清单"},
}


@dataclass(frozen=True)
class Sheet:
    title: str
    columns: list[str]  # header labels
    kinds: list[Kind]  # per column
    rows: Iterable[Sequence[Value]]
    row_kinds: list[Kind] | None = None  # the last column's kind per row (the summary)


# ---------------------------------------------------------------------------- typed rows

_COUNT_KINDS: list[Kind] = [
    "int",  # cases
    "int",  # full
    "int",  # partial
    "int",  # none
    "int",  # explained
    "rate",  # full_rate
    "rate",  # mean_coverage
    "int",  # uploads
    "int",  # on_time
    "rate",  # on_time_rate
]
_GROUP_KINDS: list[Kind] = [
    "int",  # officers
    *_COUNT_KINDS,
    "hours",  # p95_upload_delay_h
    "int",  # frontline
    "int",  # equipped
    "rate",  # equipage_rate
    "int",  # officers_without_footage
    "hours",  # footage_h
    "hours",  # footage_h_outside_cases
]


def _hours(ms: int | None) -> float | None:
    return None if ms is None else ms / HOUR_MS


def officer_row(a: OfficerAudit) -> list[Value]:
    return [
        a.officer_id,
        a.name,
        a.unit,
        a.county,
        a.cases,
        a.full,
        a.partial,
        a.none,
        a.explained,
        a.full / a.cases if a.cases else None,
        a.coverage_sum / a.cases if a.cases else None,
        a.uploads,
        a.on_time,
        a.on_time / a.uploads if a.uploads else None,
    ]


def group_row(m: Metrics) -> list[Value]:
    return [
        m.officers,
        m.cases,
        m.full,
        m.partial,
        m.none,
        m.explained,
        m.full_rate,
        m.mean_coverage,
        m.uploads,
        m.on_time,
        m.on_time_rate,
        _hours(m.p95_delay_ms),
        m.frontline,
        m.equipped,
        m.equipage_rate,
        m.no_footage,
        _hours(m.footage_ms),
        _hours(m.outside_cases_ms),
    ]


def _local(ms: int, tz: ZoneInfo) -> datetime:
    """Local wall time without a zone: what an Excel date-time is (the zone is in the
    summary sheet and the header)."""
    return from_ms(ms).astimezone(tz).replace(tzinfo=None)


def report_sheets(report: Report, lang: Lang) -> list[Sheet]:
    """The report's tables: the summary, per county, per unit, per officer (by id) and the
    pairs not fully recorded (lowest coverage first)."""
    r = report.result
    tz = ZoneInfo(r.period.tz)
    summary: list[tuple[str, Value, Kind]] = [
        ("month", r.period.label, "text"),
        ("timezone", r.period.tz, "text"),
        *((k, v, "seconds") for k, v in r.rules.as_dict().items()),
        *(
            (k, v, "text")
            for k, v in (("unit", report.unit), ("county", report.county))
            if v is not None
        ),
        *(
            (c, v, k)
            for c, v, k in zip(
                GROUP_COLUMNS,
                group_row(aggregate("all", report.chosen)),
                _GROUP_KINDS,
                strict=True,
            )
        ),
        ("unattributed_clips", r.unattributed_clips, "int"),
        ("unattributed_footage_h", r.unattributed_ms / HOUR_MS, "hours"),
        *(("warning", w, "text") for w in report.warnings_in(lang)),
    ]
    item, value = ("项目", "值") if lang == "zh" else ("item", "value")
    yes = "是" if lang == "zh" else "yes"
    return [
        Sheet(
            SHEET_TITLES["summary"][lang],
            [item, value],
            ["text", "text"],
            [
                [_SUMMARY_ZH.get(k, headers([k], lang)[0]) if lang == "zh" else k, v]
                for k, v, _ in summary
            ],
            row_kinds=[k for _, _, k in summary],
        ),
        Sheet(
            SHEET_TITLES["counties"][lang],
            headers(["county", *GROUP_COLUMNS], lang),
            ["text", *_GROUP_KINDS],
            [[m.key, *group_row(m)] for m in report.counties],
        ),
        Sheet(
            SHEET_TITLES["units"][lang],
            headers(["unit", "county", *GROUP_COLUMNS], lang),
            ["text", "text", *_GROUP_KINDS],
            [[m.key, "/".join(m.counties), *group_row(m)] for m in report.units],
        ),
        Sheet(
            SHEET_TITLES["officers"][lang],
            headers(OFFICER_COLUMNS, lang),
            ["text", "text", "text", "text", *_COUNT_KINDS],
            [officer_row(a) for a in report.chosen],
        ),
        Sheet(
            SHEET_TITLES["cases"][lang],
            headers(
                [
                    "case_id",
                    "officer_id",
                    "start",
                    "end",
                    "verdict",
                    "coverage",
                    "recorded_s",
                    "explained",
                ],
                lang,
            ),
            ["text", "text", "time", "time", "text", "rate", "seconds", "text"],
            [
                [
                    p.case_id,
                    p.officer_id,
                    _local(p.start, tz),
                    _local(p.end, tz),
                    word(p.verdict, lang),
                    p.coverage,
                    p.covered / 1000,
                    yes if p.explained else "",
                ]
                for p in report.non_full
            ],
        ),
    ]


_SUMMARY_ZH = {
    "month": "月份",
    "timezone": "时区",
    "max_gap_s": "合并片段间隔上限（秒）",
    "start_grace_s": "开始宽限（秒）",
    "end_grace_s": "结束宽限（秒）",
    "upload_limit_h": "按时导入时限（小时）",
    "unattributed_clips": "无法归属视频（个）",
    "unattributed_footage_h": "无法归属视频（小时）",
    "warning": "提示",
}


_TEXT: Kind = "text"
_ISSUE_KINDS: list[Kind] = [
    *([_TEXT] * 7),  # county ... location
    "time",  # start
    "time",  # end
    "text",  # verdict
    "rate",  # coverage
    "seconds",  # recorded_s
    "text",  # gaps
    "text",  # explanation
]


def issue_sheet(issues: list[Issue], tz: ZoneInfo, lang: Lang) -> Sheet:
    return Sheet(
        SHEET_TITLES["issues"][lang],
        headers(ISSUE_COLUMNS, lang),
        _ISSUE_KINDS,
        [
            [
                i.county,
                i.unit if i.in_roster else word("not_in_roster", lang),
                i.officer_id,
                i.name,
                i.case_id,
                i.category,
                i.location,
                _local(i.start, tz),
                _local(i.end, tz),
                word(i.verdict, lang),
                i.coverage,
                i.recorded_ms / 1000,
                gaps_text(i, tz, lang),
                word(i.explanation, lang),
            ]
            for i in issues
        ],
    )


# ---------------------------------------------------------------------------- the workbook


def _cell(ws: WriteOnlyWorksheet, v: Value, kind: Kind, bold: bool = False) -> Cell:
    c = WriteOnlyCell(ws, value=v)
    if isinstance(v, str):
        # text, never a formula: openpyxl would store "=..." as one
        c.data_type = "s"
        if v.startswith(_FORMULA_START):
            c.quotePrefix = True  # Excel keeps it text even when the cell is edited
    elif v is not None:
        c.number_format = _FORMATS[kind]
    if bold:
        c.font = _BOLD
    return c


def workbook(sheets: Sequence[Sheet]) -> bytes:
    wb = Workbook(write_only=True)
    for sh in sheets:
        ws = wb.create_sheet(sh.title[:31])  # Excel's limit on a sheet name
        for i, kind in enumerate(sh.kinds, start=1):
            label = sh.columns[i - 1]
            # CJK characters are about two columns wide
            w = sum(2 if ord(ch) > 0x2E80 else 1 for ch in label) + 2
            ws.column_dimensions[get_column_letter(i)].width = max(_WIDTHS[kind], w)
        if sh.row_kinds is not None:
            ws.column_dimensions["A"].width = 30
            ws.column_dimensions["B"].width = 40
        ws.freeze_panes = "A2"
        ws.append([_cell(ws, h, "text", bold=True) for h in sh.columns])
        for n, row in enumerate(sh.rows):
            kinds = list(sh.kinds)
            if sh.row_kinds is not None:
                kinds[-1] = sh.row_kinds[n]
            ws.append([_cell(ws, v, k) for v, k in zip(row, kinds, strict=True)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
