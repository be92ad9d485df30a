"""The HTML audit report: one self-contained file (inline CSS and SVG, no script, no network),
with a summary, bar charts per county and per unit, the officer ranking and, for each
non-full case-officer pair (the worst first, up to a limit), a timeline of the case window
against the officer's clips and the gaps. Labels in Chinese or English. Pure: returns text.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Literal
from zoneinfo import ZoneInfo

from bwc.audit.engine import EMPTY_FOOTAGE, PairResult
from bwc.audit.metrics import Metrics, aggregate, worst_first
from bwc.audit.model import Period, band, from_ms
from bwc.audit.report import (
    OFFICER_COLUMNS,
    Report,
    percent,
    points,
    ranking_values,
    target_text,
)

Lang = Literal["zh", "en"]

LABELS: dict[str, dict[Lang, str]] = {
    "title": {"en": "Body-worn camera coverage audit", "zh": "执法全过程记录审计"},
    "month": {"en": "Month", "zh": "月份"},
    "timezone": {"en": "Time zone", "zh": "时区"},
    "filters": {"en": "Filter", "zh": "筛选"},
    "summary": {"en": "Summary", "zh": "概况"},
    "cases": {"en": "Case-officer pairs", "zh": "应录人次"},
    "full": {"en": "Full", "zh": "全过程记录"},
    "partial": {"en": "Partial", "zh": "部分记录"},
    "none": {"en": "None", "zh": "未记录"},
    "explained": {"en": "Explained", "zh": "已说明"},
    "full_rate": {"en": "Full rate", "zh": "全过程记录率"},
    "mean_coverage": {"en": "Mean coverage", "zh": "平均覆盖率"},
    "uploads": {"en": "Uploads", "zh": "导入数"},
    "on_time": {"en": "On time", "zh": "按时导入"},
    "on_time_rate": {"en": "On-time rate", "zh": "按时导入率"},
    "p95": {"en": "p95 upload delay (h)", "zh": "导入延迟（P95，小时）"},
    "equipage": {"en": "Equipage (frontline with camera)", "zh": "配备率（一线人员）"},
    "no_footage": {"en": "Officers with cases but no footage", "zh": "有案件无视频人员"},
    "unattributed": {"en": "Unattributed footage (h)", "zh": "无法归属视频（小时）"},
    "outside": {"en": "Footage outside any case (h)", "zh": "案件外视频（小时）"},
    "by_county": {"en": "Full rate by county", "zh": "各区县全过程记录率"},
    "by_unit": {"en": "Full rate by unit", "zh": "各单位全过程记录率"},
    "ranking": {"en": "Officers, worst first", "zh": "人员排名（由差到好）"},
    "officer_id": {"en": "Officer", "zh": "警号"},
    "name": {"en": "Name", "zh": "姓名"},
    "unit": {"en": "Unit", "zh": "单位"},
    "county": {"en": "County", "zh": "区县"},
    "gaps_title": {"en": "Cases not fully recorded", "zh": "未完整记录的案件"},
    "case": {"en": "Case", "zh": "案件"},
    "coverage": {"en": "coverage", "zh": "覆盖率"},
    "window": {"en": "case window", "zh": "案件时段"},
    "clips": {"en": "clips", "zh": "视频片段"},
    "gaps": {"en": "gaps", "zh": "缺口"},
    "join": {"en": "join", "zh": "分段衔接"},
    "shown": {"en": "showing the {n} worst of {total}", "zh": "显示最差的 {n} 条，共 {total} 条"},
    "nothing": {"en": "Every case was fully recorded.", "zh": "所有案件均已完整记录。"},
    "warnings": {"en": "Warnings", "zh": "提示"},
    "yes": {"en": "yes", "zh": "是"},
    "not_in_roster": {"en": "(not in roster)", "zh": "（不在名册）"},
    "target": {"en": "target", "zh": "目标"},
    "delta": {"en": "Δ vs {month}: {d} points", "zh": "较{month} {d} 个百分点"},
    "delta_short": {"en": "Δ full rate (points)", "zh": "全过程记录率变化（百分点）"},
    "legend": {
        "en": "Timeline: shaded, the case window; green, footage; pale green, a join between "
        "files (one recording); red, a gap in recording.",
        "zh": "时间轴说明：浅黄色为案件时段；绿色为视频；浅绿色为分段衔接（同一段录像）；"
        "红色为未记录时段。",
    },
}

# time zones people in the bureau name by their wall clock
_ZONE_NAMES_ZH = {
    "Asia/Shanghai": "北京时间",
    "Asia/Chongqing": "北京时间",
    "Asia/Harbin": "北京时间",
    "PRC": "北京时间",
    "Asia/Urumqi": "乌鲁木齐时间",
    "Asia/Hong_Kong": "香港时间",
    "Asia/Macau": "澳门时间",
    "Asia/Taipei": "台北时间",
}


def month_label(p: Period, lang: Lang) -> str:
    """'2026年10月' for Chinese readers, '2026-10' otherwise."""
    return f"{p.year}年{p.month}月" if lang == "zh" else p.label


def zone_text(p: Period, lang: Lang) -> str:
    """'北京时间 (UTC+8)' / 'Asia/Shanghai (UTC+8)': the zone, with its offset at the month's
    start (hours, and minutes where there are)."""
    offset = p.bounds()[0].astimezone(ZoneInfo(p.tz)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    utc = f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")
    name = _ZONE_NAMES_ZH.get(p.tz, p.tz) if lang == "zh" else p.tz
    return f"{name} ({utc})"


_CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1.5rem;
color:#222;max-width:1100px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.2rem .5rem;
border-bottom:1px solid #eee;text-align:right}td:first-child,th:first-child,
td.t,th.t{text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:.6rem}.card{border:1px solid #ddd;border-radius:6px;
padding:.5rem .8rem;min-width:9rem}.card b{display:block;font-size:1.3rem}
.bar{fill:#4a7fb5}.bad,.gap{fill:#c0392b}.clip{fill:#2e8b57}.join{fill:#8fc1a4}
.b-met{fill:#2e8b57;color:#1e7045}.b-near{fill:#d4a017;color:#9a7400}
.b-below{fill:#e67e22;color:#b85c00}.b-far{fill:#c0392b;color:#c0392b}
.tgt{stroke:#333;stroke-width:1.5;stroke-dasharray:4 3}.card small{display:block;color:#777}
.win{fill:#f3e6b3}
.lbl{font-size:11px;fill:#333}.tl{margin:.6rem 0 1rem}.muted{color:#777}
.partial{color:#b8860b}.none{color:#c0392b}.nir{color:#b8860b;font-style:italic}
th{word-break:keep-all;vertical-align:bottom}td.t{white-space:nowrap}
@page{size:A4 landscape;margin:12mm}
"""


def _hours(ms: int | None) -> str:
    """Hours for a reader: thousands separated (the CSV keeps plain numbers)."""
    return "" if ms is None else f"{ms / 3_600_000:,.2f}"


def rules_sentence(rules: dict[str, float], lang: Lang) -> str:
    """The rules as a reader says them (not "max_gap_s = 5"): what counts as continuous,
    the graces and what is on time."""
    gap, sg, eg, up = (
        f"{rules[k]:g}" for k in ("max_gap_s", "start_grace_s", "end_grace_s", "upload_limit_h")
    )
    if lang == "zh":
        return (
            f"审计规则：片段间隔不超过 {gap} 秒视为连续；开始宽限 {sg} 秒、结束宽限 {eg} 秒"
            f"（各不超过案件时长的 25%）；视频结束后 {up} 小时内导入为按时导入。"
        )
    return (
        f"Rules: clips at most {gap} s apart count as one recording; {sg} s grace at the start "
        f"and {eg} s at the end (each at most 25 % of the case); footage ingested within {up} h "
        "of its end is on time."
    )


def _t(key: str, lang: Lang) -> str:
    return LABELS[key][lang]


def _local(ms: int, tz: ZoneInfo) -> datetime:
    return from_ms(ms).astimezone(tz)


def _bars(report: Report, by: str, rows: list[Metrics], lang: Lang) -> str:
    """Full rate bars coloured by distance to the target, a dashed line at the target, and
    each bar's change since the month before."""
    rows = [m for m in rows if m.cases]
    if not rows:
        return f'<p class="muted">{escape(_t("nothing", lang))}</p>'
    label_w, bar_w, h = 220, 520, 18
    target = report.targets.full_rate
    height = h * len(rows) + 4
    width = label_w + bar_w + 110
    parts = [f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for i, m in enumerate(rows):
        y = i * h + 2
        r = m.full_rate or 0.0
        name = m.key or "-"  # never empty: officers not in the roster are in no group
        then = report.previous_metrics("unit" if by == "unit" else "county", m.key)
        d = points(m.full_rate, then.full_rate if then else None)
        label = percent(m.full_rate) + (f" ({d})" if d else "")
        parts.append(
            f'<text class="lbl" x="{label_w - 6}" y="{y + 12}" text-anchor="end">'
            f"{escape(name)}</text>"
            f'<rect class="b-{band(m.full_rate, target)}" x="{label_w}" y="{y}" '
            f'width="{r * bar_w:.1f}" height="{h - 4}"><title>{escape(name)}: '
            f"{percent(m.full_rate)} ({m.full}/{m.cases})</title></rect>"
            f'<text class="lbl" x="{label_w + r * bar_w + 4:.1f}" y="{y + 12}">'
            f"{escape(label)}</text>"
        )
    x = label_w + target * bar_w
    parts.append(
        f'<line class="tgt" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}">'
        f"<title>{escape(_t('target', lang))} {target_text(target)}</title></line></svg>"
    )
    return "".join(parts)


def _timeline(report: Report, p: PairResult, tz: ZoneInfo, lang: Lang) -> str:
    footage = report.result.footage.get(p.officer_id, EMPTY_FOOTAGE)
    length = p.end - p.start
    pad = max(length // 10, 60_000)
    v0, v1 = p.start - pad, p.end + pad
    width, left = 760, 10
    scale = (width - 2 * left) / (v1 - v0)

    def x(ms: int) -> float:
        return left + (min(max(ms, v0), v1) - v0) * scale

    parts = [
        f'<svg role="img" width="{width}" height="46" viewBox="0 0 {width} 46">',
        f'<rect class="win" x="{x(p.start):.1f}" y="2" width="{x(p.end) - x(p.start):.1f}" '
        f'height="30"><title>{escape(_t("window", lang))}</title></rect>',
    ]
    for a, b in footage.clips_between(v0, v1):
        parts.append(
            f'<rect class="clip" x="{x(a):.1f}" y="8" width="{max(x(b) - x(a), 0.8):.1f}" '
            f'height="10"><title>{_local(a, tz):%H:%M:%S}–{_local(b, tz):%H:%M:%S}</title></rect>'
        )
    gaps, joins = footage.holes(p.start, p.end, report.result.rules.max_gap_ms)
    for a, b in joins:  # files a camera split one recording into: joined, not a gap
        parts.append(
            f'<rect class="join" x="{x(a):.1f}" y="8" width="{max(x(b) - x(a), 0.8):.1f}" '
            f'height="10"><title>{escape(_t("join", lang))} {_local(a, tz):%H:%M:%S}–'
            f"{_local(b, tz):%H:%M:%S} ({(b - a) / 1000:g} s)</title></rect>"
        )
    for a, b in gaps:
        parts.append(
            f'<rect class="gap" x="{x(a):.1f}" y="22" width="{max(x(b) - x(a), 0.8):.1f}" '
            f'height="6"><title>{escape(_t("gaps", lang))} {_local(a, tz):%H:%M:%S}–'
            f"{_local(b, tz):%H:%M:%S} ({(b - a) / 1000:.0f} s)</title></rect>"
        )
    parts.append(
        f'<text class="lbl" x="{x(p.start):.1f}" y="44">{_local(p.start, tz):%H:%M:%S}</text>'
        f'<text class="lbl" x="{x(p.end):.1f}" y="44" text-anchor="end">'
        f"{_local(p.end, tz):%H:%M:%S}</text></svg>"
    )
    return "".join(parts)


def _cell_class(i: int, in_roster: bool) -> str:
    """Text columns left-aligned; the unit of an officer not in the roster marked."""
    if i >= 4:
        return ""
    return "t" if in_roster or i != 2 else "t nir"


def render_html(report: Report, *, lang: Lang = "zh", max_timelines: int = 200) -> str:
    r = report.result
    tz = ZoneInfo(r.period.tz)
    s = report.summary

    def T(key: str) -> str:  # noqa: N802
        return escape(_t(key, lang))

    out: list[str] = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f"<title>{T('title')} {r.period.label}</title><style>{_CSS}</style></head><body>",
        f'<h1 id="title">{T("title")} · {escape(month_label(r.period, lang))}</h1>',
        f'<p id="zone">{T("timezone")}{"：" if lang == "zh" else ": "}'
        f"{escape(zone_text(r.period, lang))}",
    ]
    if report.filtered:
        flt = ", ".join(
            f"{_t(k, lang)} = {v}"
            for k, v in (("unit", report.unit), ("county", report.county))
            if v is not None
        )
        out.append(f" · {T('filters')}: {escape(flt)}")
    out.append("</p>")
    out.append(f'<p id="rules" class="muted">{escape(rules_sentence(r.rules.as_dict(), lang))}</p>')

    tg = report.targets
    then = report.previous_metrics("all", "all")
    before = report.before
    since = month_label(before.result.period, lang) if before else ""

    def vs(now: float | None, old: float | None, target: float) -> str:
        """Below a rate: its target and its change since the month before."""
        parts = [f"{_t('target', lang)} {target_text(target)}"]
        d = points(now, old)
        if d:
            parts.append(_t("delta", lang).format(month=since, d=d))
        return " · ".join(parts)

    cards: list[tuple[str, str, str, str]] = [  # label, value, band, note
        ("cases", f"{s.cases:,}", "", ""),
        (
            "full_rate",
            percent(s.full_rate) or "-",
            band(s.full_rate, tg.full_rate),
            vs(s.full_rate, then.full_rate if then else None, tg.full_rate),
        ),
        ("mean_coverage", percent(s.mean_coverage) or "-", "", ""),
        ("full", f"{s.full:,}", "", ""),
        ("partial", f"{s.partial:,}", "", ""),
        ("none", f"{s.none:,}", "", ""),
        ("explained", f"{s.explained:,}", "", ""),
        ("uploads", f"{s.uploads:,}", "", ""),
        (
            "on_time_rate",
            percent(s.on_time_rate) or "-",
            band(s.on_time_rate, tg.on_time_rate),
            vs(s.on_time_rate, then.on_time_rate if then else None, tg.on_time_rate),
        ),
        ("p95", _hours(s.p95_delay_ms) or "-", "", ""),
        ("equipage", f"{percent(s.equipage_rate) or '-'} ({s.equipped:,}/{s.frontline:,})", "", ""),
        ("no_footage", f"{s.no_footage:,}", "", ""),
        ("outside", _hours(s.outside_cases_ms), "", ""),
        ("unattributed", _hours(r.unattributed_ms), "", ""),
    ]
    out.append(f'<h2 id="summary">{T("summary")}</h2><div class="cards">')
    for k, v, b, note in cards:
        cls = f' class="b-{b}"' if b and b != "none" else ""
        small = f"<small>{escape(note)}</small>" if note else ""
        out.append(f'<div class="card" id="card-{k}">{T(k)}<b{cls}>{escape(v)}</b>{small}</div>')
    out.append("</div>")
    warnings = report.warnings_in(lang)
    if warnings:
        out.append(f"<h2>{T('warnings')}</h2><ul>")
        out += [f"<li>{escape(w)}</li>" for w in warnings]
        out.append("</ul>")

    out.append(f'<h2 id="counties">{T("by_county")}</h2>')
    out.append(_bars(report, "county", worst_first(report.counties), lang))
    out.append(f'<h2 id="units">{T("by_unit")}</h2>')
    out.append(_bars(report, "unit", worst_first(report.units), lang))

    head = OFFICER_COLUMNS  # the same columns, in the same order, as the CSV
    out.append(f'<h2 id="ranking">{T("ranking")}</h2><table><thead><tr>')
    out += [f'<th class="{"t" if i < 4 else ""}">{T(h)}</th>' for i, h in enumerate(head)]
    if before is not None:
        out.append(f"<th>{T('delta_short')}</th>")
    out.append("</tr></thead><tbody>")
    full_col = head.index("full_rate")
    for a in report.officers:
        cells = ranking_values(a, _t("not_in_roster", lang))
        m = aggregate(a.officer_id, [a])
        if before is not None:
            old = report.previous_metrics("officer", a.officer_id)
            cells.append(points(m.full_rate, old.full_rate if old else None))
        b = band(m.full_rate, tg.full_rate)
        out.append(
            "<tr>"
            + "".join(
                f'<td class="{_cell_class(i, a.in_roster)}'
                + (f" b-{b}" if i == full_col and b != "none" else "")
                + f'">{escape(c)}</td>'
                for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    out.append("</tbody></table>")

    out.append(f'<h2 id="gaps">{T("gaps_title")}</h2>')
    out.append(f'<p id="legend" class="muted">{T("legend")}</p>')
    total = len(report.non_full)
    if not total:
        out.append(f"<p>{T('nothing')}</p>")
    elif total > max_timelines:
        msg = _t("shown", lang).format(n=max_timelines, total=total)
        out.append(f'<p class="muted">{escape(msg)}</p>')
    names = {a.officer_id: a.name for a in report.officers}
    for p in report.non_full[:max_timelines]:
        c = r.cases.get(p.case_id)
        where = f" · {c.category} · {c.location}" if c and (c.category or c.location) else ""
        expl = f" · {T('explained')}" if p.explained else ""
        who = f"{p.officer_id} {names.get(p.officer_id, '')}".strip()
        out.append(
            f'<div class="tl"><b>{T("case")} {escape(p.case_id)}</b> · {escape(who)}'
            f"{escape(where)} · {_local(p.start, tz):%Y-%m-%d %H:%M:%S}–"
            f"{_local(p.end, tz):%H:%M:%S} · "
            f'<span class="{p.verdict}">{T(p.verdict)}</span>, {T("coverage")} '
            f"{percent(p.coverage)}{expl}<br>{_timeline(report, p, tz, lang)}</div>"
        )
    out.append("</body></html>\n")
    return "\n".join(out)
