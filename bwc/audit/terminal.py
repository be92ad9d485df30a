"""The audit for a terminal: the monthly report's summary and table, one case's timeline.
(CSV and JSON are in ``report``, HTML in ``html``.) Lines carry rich markup; what is not
bwc's own text is escaped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.cells import cell_len
from rich.console import RenderableType
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from bwc.audit.cases import CaseAudit
from bwc.audit.engine import OfficerOnCase, PlacedClip
from bwc.audit.model import band, from_ms
from bwc.audit.report import (
    DELTA,
    By,
    Report,
    hours,
    percent,
    points,
    rate,
    table_view,
    target_text,
)
from bwc.evidence.models import Explanation
from bwc.evidence.timefmt import format_local
from bwc.printable import printable


def esc(text: str) -> str:
    """Imported text (case ids, names, reasons) shown safely: controls as visible escapes,
    rich markup escaped."""
    return escape(printable(text))


# a terminal is read at 80 columns (docs/audit.md): each record of a table is one line of
# the columns below, then an indented continuation line with the rest of its values
WIDTH = 80


def report_view(rep: Report, by: By, top: int) -> tuple[list[str], Records]:
    """The summary lines and the table, worst first (``top``: only so many rows)."""
    lines: list[str] = []
    r = rep.result
    sm = rep.summary
    scope = ", ".join(
        f"{k} {v}" for k, v in (("unit", rep.unit), ("county", rep.county)) if v is not None
    )
    lines.append(
        f"[bold]coverage audit {r.period.label}[/] ({esc(r.period.tz)})"
        + (f", {esc(scope)}" if scope else "")
    )
    rules = r.rules.as_dict()
    lines.append(
        f"rules: max gap {rules['max_gap_s']:g} s, start grace {rules['start_grace_s']:g} s, "
        f"end grace {rules['end_grace_s']:g} s, on time within {rules['upload_limit_h']:g} h"
    )
    lines.append("  (a grace is at most 25 % of the case)")
    tg = rep.targets
    then = rep.previous_metrics("all", "all")
    since = f" vs {rep.before.result.period.label}" if rep.before is not None else ""

    def versus(now: float | None, old: float | None) -> str:
        d = points(now, old)
        return f", Δ {d} pp{since}" if d else ""

    full = _coloured(percent(sm.full_rate) or "-", band(sm.full_rate, tg.full_rate))
    on_time = _coloured(percent(sm.on_time_rate) or "-", band(sm.on_time_rate, tg.on_time_rate))
    lines.append(
        f"{sm.cases} case-officer pairs: {sm.full} full, {sm.partial} partial, {sm.none} none, "
        f"{sm.explained} explained"
    )
    lines.append(
        f"  full rate {full} (target {target_text(tg.full_rate)}"
        f"{versus(sm.full_rate, then.full_rate if then else None)})"
    )
    lines.append(f"  mean coverage {percent(sm.mean_coverage) or '-'}")
    lines.append(
        f"{sm.uploads} uploads, on-time rate {on_time} (target {target_text(tg.on_time_rate)}"
        f"{versus(sm.on_time_rate, then.on_time_rate if then else None)})"
    )
    lines.append(
        f"  p95 delay {hours(sm.p95_delay_ms) or '-'} h; equipage "
        f"{percent(sm.equipage_rate) or '-'} ({sm.equipped}/{sm.frontline} frontline)"
    )
    lines.append(
        f"  {sm.no_footage} officer(s) with cases but no footage; footage outside cases "
        f"{hours(sm.outside_cases_ms)} h"
    )
    lines.append(f"  unattributed {hours(r.unattributed_ms)} h ({r.unattributed_clips} clips)")
    header, rows, bands = table_view(rep, by)
    if top:
        rows, bands = rows[:top], bands[:top]
    first: list[str] = [by if by != "officer" else "officer_id"]
    first += ["name", "unit"] if by == "officer" else ["officers"]
    first += ["cases", "full", "partial", "none", "explained", "full_rate"]
    if DELTA in header:
        first.append(DELTA)
    records = Records(
        title=f"per {by}, worst first",
        legend="part.: partial, expl.: explained"
        + (
            f"; Δ pp: the full rate's change since {rep.before.result.period.label}, in "
            "percentage points"
            if rep.before is not None
            else ""
        ),
        heads=[_HEADS.get(h, h.replace("_", " ")) for h in first],
        right={k for k, h in enumerate(first) if h not in ("officer_id", "name", "unit", by)},
    )
    for row, b in zip(rows, bands, strict=True):
        cell = dict(zip(header, row, strict=True))

        def shown(h: str, cell: dict[str, str] = cell, b: dict[str, str] = b) -> str:
            return _coloured(esc(cell[h]), b[h]) if h in b else esc(cell[h])

        records.add([shown(h) for h in first], _more(cell, shown, by))
    return lines, records


def _more(cell: dict[str, str], shown: Callable[[str], str], by: By) -> str:
    """A record's continuation line: the values the first line has no room for."""
    parts = [esc(cell["county"])] if by == "officer" and cell["county"] else []
    parts.append(f"mean coverage {esc(cell['mean_coverage'] or '-')}")
    parts.append(
        f"{esc(cell['uploads'])} uploads, {esc(cell['on_time'])} on time "
        f"({shown('on_time_rate') or '-'})"
    )
    if by != "officer":
        parts.append(f"p95 delay {esc(cell['p95_upload_delay_h'] or '-')} h")
        parts.append(
            f"equipage {esc(cell['equipage_rate'] or '-')} "
            f"({esc(cell['equipped'])}/{esc(cell['frontline'])} frontline)"
        )
        parts.append(f"{esc(cell['officers_without_footage'])} officer(s) without footage")
        parts.append(
            f"footage {esc(cell['footage_h'])} h, outside cases "
            f"{esc(cell['footage_h_outside_cases'])} h"
        )
    return " · ".join(parts)


@dataclass
class Records:
    """A table for a terminal: per record, one line of columns (``heads``; ``right``: the
    columns aligned right) and an indented continuation line (``more``)."""

    title: str
    legend: str
    heads: list[str]
    right: set[int]
    rows: list[list[str]] = field(default_factory=list)  # rich markup
    more: list[str] = field(default_factory=list)

    def add(self, row: list[str], more: str) -> None:
        self.rows.append(row)
        self.more.append(more)

    def renderables(self, width: int = WIDTH) -> list[RenderableType]:
        """What to print, in order, at ``width`` columns: the header, then each record's
        line (a long name wraps in its column) and its continuation line."""
        widths = fit_widths(
            [self.heads, *([Text.from_markup(c).plain for c in r] for r in self.rows)],
            self.right,
            width,
        )
        out: list[RenderableType] = [f"[bold]{self.title}[/]"] if self.title else []
        if self.legend:
            out.append(f"[dim]{self.legend}[/]")
        out.append(_grid(widths, self.right, [f"[bold]{escape(h)}[/]" for h in self.heads]))
        for row, more in zip(self.rows, self.more, strict=True):
            out.append(_grid(widths, self.right, row))
            if more:
                out.append(indented("  " + more))
        return out


def indented(line: str) -> RenderableType:
    """A line of markup whose leading spaces are its indent, kept where it wraps."""
    text = line.lstrip(" ")
    return Padding(Text.from_markup(text), (0, 0, 0, len(line) - len(text)), expand=False)


GAP = 2  # columns between two columns


def fit_widths(rows: list[list[str]], right: set[int], width: int) -> list[int]:
    """Each column's width in terminal cells (a Chinese character is two): its widest cell;
    when that is more than ``width`` in all, the text columns (not in ``right``) are
    narrowed, widest first, to no less than 4 (their cells then wrap)."""
    widths = [max(cell_len(r[k]) for r in rows) for k in range(len(rows[0]))]
    over = sum(widths) + GAP * (len(widths) - 1) - width
    while over > 0:
        k = max(
            (k for k in range(len(widths)) if k not in right and widths[k] > 4),
            key=lambda k: widths[k],
            default=None,
        )
        if k is None:
            break
        widths[k] -= 1
        over -= 1
    return widths


def _grid(widths: list[int], right: set[int], cells: list[str]) -> Table:
    t = Table.grid(padding=(0, GAP, 0, 0))
    for k, w in enumerate(widths):
        t.add_column(width=w, justify="right" if k in right else "left", overflow="fold")
    t.add_row(*cells)
    return t


_HEADS = {
    DELTA: "Δ pp",
    "officer_id": "officer",
    "partial": "part.",
    "explained": "expl.",
}
# a rate's distance below its target (model.band): colour, not only red below 100 %
BAND_STYLES = {"met": "green", "near": "yellow", "below": "dark_orange", "far": "bold red"}


def _coloured(text: str, b: str) -> str:
    style = BAND_STYLES.get(b)
    return f"[{style}]{text}[/]" if style and text not in ("", "-") else text


def _fmt_local(ms: int, z: ZoneInfo) -> str:
    dt: datetime = from_ms(ms).astimezone(z)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


BAR_LEGEND = "█ recorded  ▒ join (files of one recording)  · not recorded"


def bar(
    start: int,
    end: int,
    spans: list[tuple[int, int]],
    width: int = 60,
    joins: list[tuple[int, int]] | None = None,
) -> str:
    """A text timeline of [start, end): '█' recorded, '▒' a join between files (no more than
    max_gap: one recording, not a gap), '·' not recorded."""
    cells = []
    step = (end - start) / width

    def part(a: float, b: float, ss: list[tuple[int, int]]) -> float:
        return sum(max(0.0, min(b, hi) - max(a, lo)) for lo, hi in ss)

    for i in range(width):
        a, b = start + i * step, start + (i + 1) * step
        recorded = part(a, b, spans)
        joined = part(a, b, joins or [])
        if recorded >= step / 2:
            cells.append("█")
        elif recorded + joined >= step / 2:
            cells.append("▒")
        else:
            cells.append("·")
    return "".join(cells)


def case_lines(ca: CaseAudit, z: ZoneInfo) -> list[str]:
    """The case's timeline for a terminal, in lines of rich markup of at most 80 columns
    but for imported text (names, places, reasons): a line's leading spaces are its indent,
    kept where it wraps."""
    c, verdicts = ca.case, ca.verdicts
    lines: list[str] = []
    lines.append(
        f"[bold]case {esc(c.case_id)}[/] {esc(c.category)} · {esc(c.unit)} · {esc(c.location)}"
    )
    lines.append(
        f"  {_fmt_local(c.start, z)} – {_fmt_local(c.end, z)} ({z.key}), "
        f"{(c.end - c.start) / 1000:.0f} s"
    )
    lines.append(f"  [dim]timeline: {BAR_LEGEND}[/]")
    colour = {"full": "green", "partial": "yellow", "none": "red"}
    for v in verdicts:
        o = ca.roster.get(v.officer_id)
        who = f"{o.name} · {o.unit}" if o else "not in roster"
        mark = " (explained)" if v.explained else ""
        lines.append("")
        lines.append(
            f"[bold]{esc(v.officer_id)}[/] {esc(who)}: [{colour[v.verdict]}]{v.verdict}[/]"
            f"{mark}, coverage {rate(v.covered / (c.end - c.start))}"
        )
        lines.append(f"  {bar(c.start, c.end, [(p.start, p.end) for p in v.clips], joins=v.joins)}")
        lines.append(f"  {_cameras(ca, v)}")
        for p in v.clips:
            off = f", clock {p.offset_ms / 1000:+g} s" if p.offset_ms else ""
            lines.append(f"  clip {p.key[:12]}  {_fmt_local(p.start, z)} – {_fmt_local(p.end, z)}")
            lines.append(f"    device {esc(p.device_id or '-')}{off}, {_source(ca, p)}")
        for a, b in v.gaps:
            lines.append(
                f"  [red]gap[/]  {_fmt_local(a, z)} – {_fmt_local(b, z)}  ({(b - a) / 1000:.0f} s)"
            )
        max_gap = ca.rules.max_gap_ms / 1000
        for a, b in v.joins:
            lines.append(
                f"  [dim]join {_fmt_local(a, z)} – {_fmt_local(b, z)}  ({(b - a) / 1000:g} s "
                "between files,[/]"
            )
            lines.append(f"    [dim]at most {max_gap:g} s: one recording)[/]")
        for e in ca.explanations:
            if e.officer_id == v.officer_id:
                lines.append(
                    f"  explained by {esc(e.actor)} at {format_local(e.at, z)}: {esc(e.reason)}"
                )
                lines.append(f"    ({_review(e, z)})")  # a line of its own: the reason may wrap
    return lines


def _review(e: Explanation, z: ZoneInfo) -> str:
    """Where an explanation stands: only an approved one counts. Times in the case's zone,
    with the offset (the case's own times above are in it)."""
    if e.status == "submitted":
        return "awaiting review"
    when = format_local(e.reviewed_at, z) if e.reviewed_at else "?"
    why = f": {esc(e.review_reason)}" if e.review_reason else ""
    return f"{e.status} by {esc(e.reviewed_by or '?')} at {when}{why}"


_SOURCES = {
    "file-name": "officer from the file name",
    "id-file": "officer from the camera's id file",
    "ingest-operator": "officer given at ingest (--officer)",
    "ledger-at-ingest": "officer from the ledger at ingest",
    "unknown": "officer as catalogued (its source not recorded)",
}


def _source(ca: CaseAudit, p: PlacedClip) -> str:
    """Where the clip's officer came from, for people (issue 15.17)."""
    source, actor = ca.attributed_from(p)
    if source == "ledger":
        return f"officer from the ledger ({esc(p.device_id or '-')} checked out)"
    if source == "attributed":
        return f"attributed after ingest by {esc(actor or '?')}"
    return _SOURCES.get(source, esc(source))


def _cameras(ca: CaseAudit, v: OfficerOnCase) -> str:
    """The officer's cameras during the case, or that there was none."""
    if not ca.camera_assigned(v):
        return (
            "[red]no camera assigned[/]: no checkout in the ledger during the case, and no footage"
        )
    held = ca.checked_out.get(v.officer_id, [])
    seen = sorted({p.device_id for p in v.clips if p.device_id and p.device_id not in held})
    parts = [f"{esc(d)} (checked out in the ledger)" for d in held]
    parts += [f"{esc(d)} (in the footage)" for d in seen]
    if not held:
        parts.append("no checkout in the ledger")
    return "camera: " + ", ".join(parts)
