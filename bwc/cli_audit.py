"""`bwc audit` commands (registered on the main app by `bwc.cli`): imports of the roster, the
device ledger and the enforcement cases; explanations; the monthly coverage report; one
case's timeline. Parsing and printing only: the audit itself is in bwc.audit."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

# Only light modules (no third-party imports) at the top: the options need Kind and SCHEMAS,
# the helpers rules and time zones. The catalog (SQLAlchemy), the audit engine, its report
# and HTML are imported by the commands that use them, so `bwc --help` never loads them.
from bwc.audit.model import SECOND_MS, Period, Rules, from_ms
from bwc.cli_common import ctx, err, esc, out, print_json
from bwc.cli_imports import (
    JsonOpt,
    import_assignments,
    import_cases,
    import_officers,
    station_zone,
)
from bwc.errors import InputError, UsageError
from bwc.evidence.timefmt import format_utc

if TYPE_CHECKING:
    from bwc.audit.report import By, Report
    from bwc.evidence.station import Station

audit_app = typer.Typer(
    help="Monthly coverage audit: was every enforcement case recorded, start to end, by "
    "every officer on it? (docs/audit.md)",
    no_args_is_help=True,
)
import_app = typer.Typer(
    help="Import the roster, the device checkout ledger or the cases (CSV or JSON). "
    "A file with any bad row is refused whole; re-importing is idempotent.",
    no_args_is_help=True,
)
audit_app.add_typer(import_app, name="import")
import_app.command("officers")(import_officers)
import_app.command("assignments")(import_assignments)
import_app.command("cases")(import_cases)


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


class ByOption(StrEnum):
    officer = "officer"
    unit = "unit"
    county = "county"


class LangOption(StrEnum):
    zh = "zh"
    en = "en"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(audit_app, name="audit")


# ---------------------------------------------------------------------------- shared options

MaxGapOpt = Annotated[
    float | None,
    typer.Option("--max-gap", help="Merge clips separated by at most this many seconds."),
]
StartGraceOpt = Annotated[
    float | None, typer.Option("--start-grace", help="Seconds recording may start late.")
]
EndGraceOpt = Annotated[
    float | None, typer.Option("--end-grace", help="Seconds recording may stop early.")
]


def _rules(
    station: Station, max_gap: float | None, start_grace: float | None, end_grace: float | None
) -> Rules:
    from bwc.audit.config import rules_of

    base = rules_of(station.settings.audit)
    for name, v in (
        ("--max-gap", max_gap),
        ("--start-grace", start_grace),
        ("--end-grace", end_grace),
    ):
        if v is not None and not v >= 0:
            raise UsageError(f"{name} must be a number of seconds >= 0")
    return Rules(
        max_gap_ms=base.max_gap_ms if max_gap is None else round(max_gap * SECOND_MS),
        start_grace_ms=base.start_grace_ms
        if start_grace is None
        else round(start_grace * SECOND_MS),
        end_grace_ms=base.end_grace_ms if end_grace is None else round(end_grace * SECOND_MS),
        upload_limit_ms=base.upload_limit_ms,
    )


# ---------------------------------------------------------------------------- explain


@audit_app.command()
def explain(
    case_id: Annotated[str, typer.Argument(metavar="CASE", help="Case id.")],
    officer_id: Annotated[str, typer.Argument(metavar="OFFICER", help="Officer id.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why recording was interrupted (battery, fault...).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Record an officer's written explanation for a case not fully recorded.

    The pair stays partial or none, and is counted as explained."""
    from bwc.audit import catalog
    from bwc.evidence import custody

    station = ctx().station()
    at = station.clock.now()
    with station.session() as s:
        row = catalog.add_explanation(
            s,
            case_id,
            officer_id,
            reason,
            actor=station.actor,
            station_id=station.station_id,
            at=at,
        )
        # Logged in the custody log too: an explanation changes what the audit reports.
        custody.append_events(
            s,
            [
                station.event(
                    "explained",
                    None,
                    case_id=case_id,
                    officer_id=officer_id,
                    reason=reason,
                    explanation_id=row.id,
                )
            ],
        )
    station.checkpoint()
    data = {
        "id": row.id,
        "case_id": row.case_id,
        "officer_id": row.officer_id,
        "reason": row.reason,
        "actor": row.actor,
        "station": row.station_id,
        "at": format_utc(row.at),
    }
    if as_json:
        print_json(data)
    else:
        out.print(
            f"explanation recorded for case {esc(case_id)}, officer {esc(officer_id)} "
            f"by {esc(row.actor)} at {data['at']}"
        )


# ---------------------------------------------------------------------------- report


@audit_app.command()
def report(
    month: Annotated[str, typer.Option("--month", help="The month to audit, e.g. 2026-10.")],
    unit: Annotated[str | None, typer.Option(help="Only officers of this unit.")] = None,
    county: Annotated[str | None, typer.Option(help="Only officers of this county.")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = (
        ReportFormat.table
    ),
    by: Annotated[
        ByOption, typer.Option("--by", help="Rows per officer, unit or county (table, csv).")
    ] = ByOption.officer,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    lang: Annotated[LangOption, typer.Option("--lang", help="HTML labels.")] = LangOption.zh,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Time zone the month is in (default: the configured one)."),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", help="Table: only the N worst rows (0: all).", min=0)
    ] = 0,
    max_timelines: Annotated[
        int, typer.Option("--max-timelines", help="HTML: timelines drawn (worst first).", min=0)
    ] = 200,
    max_gap: MaxGapOpt = None,
    start_grace: StartGraceOpt = None,
    end_grace: EndGraceOpt = None,
) -> None:
    """The monthly coverage report per officer, unit, county and the whole city."""
    from bwc.audit import catalog
    from bwc.audit.engine import run_audit
    from bwc.audit.html import render_html
    from bwc.audit.report import build_report, to_csv, to_json
    from bwc.fsutil import write_atomic

    if fmt is ReportFormat.table and out_file is not None:
        raise UsageError("--out needs --format csv, json or html")
    station = ctx().station()
    period = Period.parse(month, tz or station.settings.timezone)
    rules = _rules(station, max_gap, start_grace, end_grace)
    # A city-month is millions of small acyclic objects, alive until the report is out: the
    # cyclic garbage collector would only rescan them, again and again.
    with _no_gc(), station.session(snapshot=True) as s:
        inputs = catalog.read_inputs(s, period, rules)
        result = run_audit(
            period,
            rules,
            officers=inputs.officers,
            cases=inputs.cases,
            clip_batches=inputs.clip_batches,
            assignments=inputs.assignments,
            clocks=inputs.clocks,
            explanations=inputs.explanations,
            keep_clips=fmt is ReportFormat.html,
        )
    with _no_gc():
        rep = build_report(result, unit=unit, county=county, undated=inputs.undated)
        if fmt is ReportFormat.table:
            _print_table(rep, by.value, top)
            return
        if fmt is ReportFormat.csv:
            text = to_csv(rep, by.value)
        elif fmt is ReportFormat.json:
            text = json.dumps(to_json(rep), indent=2, ensure_ascii=False) + "\n"
        else:
            text = render_html(rep, lang=lang.value, max_timelines=max_timelines)
    if out_file is None:
        sys.stdout.write(text)
    else:
        try:
            write_atomic(out_file, text.encode("utf-8"))
        except OSError as e:
            raise InputError(f"cannot write {out_file}: {e.strerror or e}") from e
        err.print(f"wrote {esc(str(out_file))}")
    for w in rep.warnings:
        err.print(f"[yellow]warning:[/] {esc(w)}")


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _print_table(rep: Report, by: By, top: int) -> None:
    from rich.table import Table

    from bwc.audit.report import hours, rate, table_rows

    r = rep.result
    sm = rep.summary
    scope = ", ".join(
        f"{k} {v}" for k, v in (("unit", rep.unit), ("county", rep.county)) if v is not None
    )
    out.print(
        f"[bold]coverage audit {r.period.label}[/] ({esc(r.period.tz)})"
        + (f", {esc(scope)}" if scope else "")
    )
    rules = r.rules.as_dict()
    out.print(
        f"rules: max gap {rules['max_gap_s']:g} s, start grace {rules['start_grace_s']:g} s, "
        f"end grace {rules['end_grace_s']:g} s, on time within {rules['upload_limit_h']:g} h"
    )
    out.print(
        f"{sm.cases} case-officer pairs: {sm.full} full, {sm.partial} partial, {sm.none} none, "
        f"{sm.explained} explained; full rate {rate(sm.full_rate) or '-'}, mean coverage "
        f"{rate(sm.mean_coverage) or '-'}"
    )
    out.print(
        f"{sm.uploads} uploads, on-time rate {rate(sm.on_time_rate) or '-'}, p95 delay "
        f"{hours(sm.p95_delay_ms) or '-'} h; equipage {rate(sm.equipage_rate) or '-'} "
        f"({sm.equipped}/{sm.frontline} frontline); {sm.no_footage} officer(s) with cases "
        f"but no footage; footage outside cases {hours(sm.outside_cases_ms)} h; "
        f"unattributed {hours(r.unattributed_ms)} h ({r.unattributed_clips} clips)"
    )
    header, rows = table_rows(rep, by)
    if top:
        rows = rows[:top]
    t = Table(*(h.replace("_", " ") for h in header), title=f"per {by}, worst first")
    for row in rows:
        t.add_row(*(esc(c) for c in row))
    # piped or redirected: no terminal width to fit, so print the table whole
    (out if out.is_terminal else Console(highlight=False, width=400)).print(t)


# ---------------------------------------------------------------------------- case


def _fmt_local(ms: int, z: ZoneInfo) -> str:
    dt: datetime = from_ms(ms).astimezone(z)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _bar(start: int, end: int, spans: list[tuple[int, int]], width: int = 60) -> str:
    """A text timeline of [start, end): '█' recorded, '·' not."""
    cells = []
    step = (end - start) / width
    for i in range(width):
        a, b = start + i * step, start + (i + 1) * step
        covered = sum(max(0.0, min(b, hi) - max(a, lo)) for lo, hi in spans)
        cells.append("█" if covered >= step / 2 else "·")
    return "".join(cells)


@audit_app.command("case")
def case_(
    case_id: Annotated[str, typer.Argument(metavar="CASE-ID", help="Case id.")],
    tz: Annotated[
        str | None, typer.Option("--tz", help="Show times in this zone (default: configured).")
    ] = None,
    max_gap: MaxGapOpt = None,
    start_grace: StartGraceOpt = None,
    end_grace: EndGraceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One case: its officers, their clips (clock offsets applied), the gaps and the verdict."""
    from bwc.audit import catalog
    from bwc.audit.engine import ClockTable, Ledger, audit_case, place_clips
    from bwc.audit.report import rate

    station = ctx().station()
    z = station_zone(station, tz)
    rules = _rules(station, max_gap, start_grace, end_grace)
    with station.session(snapshot=True) as s:
        ci = catalog.read_case(s, case_id, rules)
    placed = place_clips(ci.clips, ClockTable(ci.clocks), Ledger(ci.assignments))
    explained = {(e.case_id, e.officer_id) for e in ci.explanations}
    verdicts = audit_case(ci.case, rules, placed, explained)
    c = ci.case
    if as_json:
        print_json(
            {
                "case_id": c.case_id,
                "category": c.category,
                "unit": c.unit,
                "location": c.location,
                "start": format_utc(from_ms(c.start)),
                "end": format_utc(from_ms(c.end)),
                "rules": rules.as_dict(),
                "officers": [
                    {
                        "officer_id": v.officer_id,
                        "in_roster": v.officer_id in ci.roster,
                        "verdict": v.verdict,
                        "coverage": round(v.covered / (c.end - c.start), 4),
                        "explained": v.explained,
                        "clips": [
                            {
                                "sha256": p.key,
                                "device_id": p.device_id,
                                "start": format_utc(from_ms(p.start)),
                                "end": format_utc(from_ms(p.end)),
                                "clock_offset_ms": p.offset_ms,
                                "attributed_by": p.attributed_by,
                            }
                            for p in v.clips
                        ],
                        "gaps": [
                            {
                                "start": format_utc(from_ms(a)),
                                "end": format_utc(from_ms(b)),
                                "seconds": (b - a) / 1000,
                            }
                            for a, b in v.gaps
                        ],
                        "explanations": [
                            {
                                "reason": e.reason,
                                "actor": e.actor,
                                "at": format_utc(e.at),
                            }
                            for e in ci.explanations
                            if e.officer_id == v.officer_id
                        ],
                    }
                    for v in verdicts
                ],
            }
        )
        return
    out.print(
        f"[bold]case {esc(c.case_id)}[/] {esc(c.category)} · {esc(c.unit)} · {esc(c.location)}"
    )
    out.print(
        f"  {_fmt_local(c.start, z)} – {_fmt_local(c.end, z)} ({z.key}), "
        f"{(c.end - c.start) / 1000:.0f} s"
    )
    colour = {"full": "green", "partial": "yellow", "none": "red"}
    for v in verdicts:
        o = ci.roster.get(v.officer_id)
        who = f"{o.name} · {o.unit}" if o else "not in roster"
        mark = " (explained)" if v.explained else ""
        out.print(
            f"\n[bold]{esc(v.officer_id)}[/] {esc(who)}: [{colour[v.verdict]}]{v.verdict}[/]"
            f"{mark}, coverage {rate(v.covered / (c.end - c.start))}"
        )
        out.print(f"  {_bar(c.start, c.end, [(p.start, p.end) for p in v.clips])}")
        for p in v.clips:
            off = f", clock {p.offset_ms / 1000:+g} s" if p.offset_ms else ""
            out.print(
                f"  clip {p.key[:12]}  {_fmt_local(p.start, z)} – {_fmt_local(p.end, z)}  "
                f"device {esc(p.device_id or '-')}{off}, by {p.attributed_by}"
            )
        for a, b in v.gaps:
            out.print(
                f"  [red]gap[/]  {_fmt_local(a, z)} – {_fmt_local(b, z)}  ({(b - a) / 1000:.0f} s)"
            )
        for e in ci.explanations:
            if e.officer_id == v.officer_id:
                out.print(f"  explained by {esc(e.actor)} at {format_utc(e.at)}: {esc(e.reason)}")
