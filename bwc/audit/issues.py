"""The problem list (问题清单, `bwc audit issues`): every case-officer pair of the month that is
partial or none and has no approved explanation, with what part of the case has no footage,
for units to answer. Pure: a report in, rows and text out (times in the report's zone)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from bwc.audit.engine import EMPTY_FOOTAGE
from bwc.audit.model import from_ms
from bwc.audit.report import Lang, Report, headers, rate

COLUMNS = (
    "county",
    "unit",
    "officer_id",
    "name",
    "case_id",
    "category",
    "location",
    "start",
    "end",
    "verdict",
    "coverage",
    "recorded_s",
    "gaps",
    "explanation",
)

_WORDS: dict[str, dict[Lang, str]] = {
    "partial": {"en": "partial", "zh": "部分记录"},
    "none": {"en": "none", "zh": "未记录"},
    "": {"en": "none submitted", "zh": "未提交"},
    "submitted": {"en": "awaiting review", "zh": "待审核"},
    "rejected": {"en": "rejected", "zh": "已驳回"},
    "not_in_roster": {"en": "(not in roster)", "zh": "（不在名册）"},
    "title": {"en": "Problem list", "zh": "问题清单"},
    "month": {"en": "Month", "zh": "月份"},
    "timezone": {"en": "Time zone", "zh": "时区"},
    "count": {"en": "{n} case-officer pair(s) to answer", "zh": "共 {n} 条待说明"},
    "nothing": {
        "en": "Nothing to answer: every pair is fully recorded or explained.",
        "zh": "无问题：所有案件均已完整记录或说明已获批准。",
    },
    "seconds": {"en": "{n} s", "zh": "{n}秒"},
}


def word(key: str, lang: Lang) -> str:
    return _WORDS[key][lang]


@dataclass(frozen=True)
class Issue:
    """One pair to answer. Times are ms since the epoch (UTC); ``gaps`` are the parts of the
    case window with no footage (joins between split files are not gaps); ``explanation``:
    "" (none), "submitted" (awaiting review) or "rejected"."""

    case_id: str
    officer_id: str
    name: str
    unit: str
    county: str
    in_roster: bool
    category: str
    location: str
    start: int
    end: int
    verdict: str
    coverage: float
    recorded_ms: int
    gaps: tuple[tuple[int, int], ...]
    explanation: str


def problem_list(report: Report) -> list[Issue]:
    """The report's non-full, unexplained pairs (of the officers in scope), by county, unit,
    officer, then case start: each unit finds its own rows together."""
    r = report.result
    out: list[Issue] = []
    for p in report.non_full:
        if p.explained:
            continue
        a = r.officers[p.officer_id]
        c = r.cases.get(p.case_id)
        footage = r.footage.get(p.officer_id, EMPTY_FOOTAGE)
        gaps, _joins = footage.holes(p.start, p.end, r.rules.max_gap_ms)
        out.append(
            Issue(
                case_id=p.case_id,
                officer_id=p.officer_id,
                name=a.name,
                unit=a.unit,
                county=a.county,
                in_roster=a.in_roster,
                category=c.category if c else "",
                location=c.location if c else "",
                start=p.start,
                end=p.end,
                verdict=p.verdict,
                coverage=p.coverage,
                recorded_ms=p.covered,
                gaps=tuple(gaps),
                explanation=report.explanation_states.get((p.case_id, p.officer_id), ""),
            )
        )
    out.sort(key=lambda i: (i.county, i.unit, i.officer_id, i.start, i.case_id))
    return out


def local(ms: int, tz: ZoneInfo) -> datetime:
    return from_ms(ms).astimezone(tz)


def gaps_text(i: Issue, tz: ZoneInfo, lang: Lang) -> str:
    """The gaps in local time; the date only where a gap is not on the case's start date."""
    day = local(i.start, tz).date()
    parts = []
    for a, b in i.gaps:
        la, lb = local(a, tz), local(b, tz)
        fa = f"{la:%H:%M:%S}" if la.date() == day else f"{la:%Y-%m-%d %H:%M:%S}"
        fb = f"{lb:%H:%M:%S}" if lb.date() == day else f"{lb:%Y-%m-%d %H:%M:%S}"
        secs = word("seconds", lang).format(n=f"{(b - a) / 1000:g}")
        parts.append(f"{fa}–{fb} ({secs})")
    return "; ".join(parts)


def values(i: Issue, tz: ZoneInfo, lang: Lang) -> list[str]:
    """The row as text (CSV, table, HTML), in COLUMNS order."""
    return [
        i.county,
        i.unit if i.in_roster else word("not_in_roster", lang),
        i.officer_id,
        i.name,
        i.case_id,
        i.category,
        i.location,
        f"{local(i.start, tz):%Y-%m-%d %H:%M:%S}",
        f"{local(i.end, tz):%Y-%m-%d %H:%M:%S}",
        word(i.verdict, lang),
        rate(i.coverage),
        f"{i.recorded_ms / 1000:g}",
        gaps_text(i, tz, lang),
        word(i.explanation, lang),
    ]


def to_html(issues: list[Issue], report: Report, lang: Lang) -> str:
    """One self-contained page (inline style, no script, nothing fetched) to print or send."""
    tz = ZoneInfo(report.result.period.tz)
    period = report.result.period
    title = f"{word('title', lang)} · {period.label}"
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>"
        'body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;'
        "margin:1.5rem;color:#222}table{border-collapse:collapse;font-size:.85rem}"
        "td,th{padding:.2rem .5rem;border:1px solid #ddd;text-align:left;vertical-align:top}"
        # printed (--format pdf): landscape, and Chinese labels kept whole, not one
        # character a line in a narrow column
        "th{background:#f3f3f3;white-space:nowrap}td{word-break:keep-all}"
        "@page{size:A4 landscape;margin:12mm}</style></head><body>",
        f'<h1 id="title">{escape(title)}</h1>',
        f"<p>{escape(word('timezone', lang))}: {escape(period.tz)} · "
        f"{escape(word('count', lang).format(n=len(issues)))}</p>",
    ]
    if not issues:
        out.append(f"<p>{escape(word('nothing', lang))}</p>")
    else:
        out.append("<table><thead><tr>")
        out += [f"<th>{escape(h)}</th>" for h in headers(COLUMNS, lang)]
        out.append("</tr></thead><tbody>")
        for i in issues:
            cells = "".join(f"<td>{escape(v)}</td>" for v in values(i, tz, lang))
            out.append(f"<tr>{cells}</tr>")
        out.append("</tbody></table>")
    out.append("</body></html>\n")
    return "\n".join(out)
