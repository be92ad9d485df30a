"""`bwc audit officers …` and `bwc audit cases list` (added to `bwc audit` by bwc.cli_audit):
the roster and a month's cases for people (80 columns, local time) or as JSON (UTC), and
deactivating an officer who left. Parsing and printing only: the work is bwc.audit.roster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from bwc.audit.model import Period
from bwc.cli_common import ctx, esc, narrow, out, parse_local_or_usage, print_json
from bwc.cli_imports import JsonOpt, station_zone
from bwc.evidence.timefmt import format_utc

if TYPE_CHECKING:
    from rich.table import Table

officers_app = typer.Typer(
    help="The roster: list officers, deactivate an officer who left.", no_args_is_help=True
)
cases_app = typer.Typer(help="The enforcement cases imported for the audit.", no_args_is_help=True)

UnitOpt = Annotated[str | None, typer.Option("--unit", help="Only this unit.")]
TzOpt = Annotated[
    str | None, typer.Option("--tz", help="Show times in this zone (default: configured).")
]


def _table(*heads: str, wrap: tuple[str, ...] = ()) -> Table:
    """Columns at their natural width; when that is wider than 80 columns, the ``wrap``
    columns (names, units) wrap within theirs, and the others (ids, times, counts) are never
    cut (an id cut short is no id)."""
    from rich.table import Table

    t = Table(box=None, pad_edge=False, header_style="bold")
    for h in heads:
        if h in wrap:
            t.add_column(h, overflow="fold")
        else:
            t.add_column(h, no_wrap=True)
    return t


def _print(t: Table) -> None:
    narrow().print(t)


@officers_app.command("deactivate")
def deactivate(
    officer_id: Annotated[str, typer.Argument(metavar="OFFICER", help="Officer id.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why the officer left (transfer, retirement...).")
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="DATE",
            help="Inactive from this date (local midnight) or local date-time; default: now.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mark an officer who left as inactive from a date: their cases still count, but a
    month they were inactive for the whole of no longer counts them as staff in the
    equipage rate (配备率). Logged as a custody event; `bwc audit verify` catches a row
    changed outside bwc."""
    from bwc.audit.roster import deactivate as record
    from bwc.evidence.timefmt import format_local

    station = ctx().station()
    z = station_zone(station, None)
    t = None if since is None else parse_local_or_usage(since, z, "--from")
    o = record(station, officer_id, reason, t)
    when = o.inactive_from
    if as_json:
        print_json(_officer_json(o))
        return
    shown = format_local(when, z, seconds=False) if when else "?"
    out.print(
        f"officer {esc(o.officer_id)} ({esc(o.name)}, {esc(o.unit)}) inactive from {shown}: "
        f"{esc(o.inactive_reason or '')}"
    )


def _officer_json(o: Any) -> dict[str, Any]:
    return {
        "officer_id": o.officer_id,
        "name": o.name,
        "unit": o.unit,
        "county": o.county,
        "frontline": o.frontline,
        "active": o.active,
        "inactive_from": format_utc(o.inactive_from) if o.inactive_from else None,
        "inactive_reason": o.inactive_reason,
    }


@officers_app.command("list")
def list_officers(
    unit: UnitOpt = None,
    county: Annotated[str | None, typer.Option("--county", help="Only this county.")] = None,
    inactive: Annotated[
        bool, typer.Option("--inactive", help="Only officers marked inactive (who left).")
    ] = False,
    tz: TzOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The roster, by unit: who is frontline, who left and since when (local date)."""
    from bwc.audit.roster import officers
    from bwc.evidence.timefmt import format_local, zone_label

    station = ctx().station()
    z = station_zone(station, tz)
    with station.session(snapshot=True) as s:
        rows = officers(s, unit=unit, county=county, inactive=inactive)
    if as_json:
        print_json([_officer_json(o) for o in rows])
        return
    t = _table(
        "officer", "name", "unit", "county", "frontline", "status",
        wrap=("name", "unit", "county", "status"),
    )  # fmt: skip
    for o in rows:
        if o.active:
            status = "active"
        else:
            since = format_local(o.inactive_from, z, offset=False)[:10] if o.inactive_from else "?"
            status = f"left {since}" + (f" {o.inactive_reason}" if o.inactive_reason else "")
        t.add_row(
            *(esc(v) for v in (o.officer_id, o.name, o.unit, o.county)),
            "yes" if o.frontline else "no",
            esc(status),
        )
    if rows:
        _print(t)
    n, left = len(rows), sum(1 for o in rows if not o.active)
    out.print(
        f"{n} officer{'' if n == 1 else 's'} ({left} inactive); "
        f"dates in {zone_label(z, station.clock.now())}"
    )


@cases_app.command("list")
def list_cases(
    month: Annotated[str, typer.Option("--month", help="Cases starting in this month (2026-10).")],
    unit: Annotated[
        str | None,
        typer.Option("--unit", help="Only cases of this unit (the case's, or an officer's on it)."),
    ] = None,
    tz: TzOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The cases a month's audit counts (those starting in it), by start, in local time."""
    from bwc.audit.roster import month_cases
    from bwc.evidence.timefmt import common_offset, format_local, zone_label

    station = ctx().station()
    z = station_zone(station, tz)
    period = Period.parse(month, z.key)
    with station.session(snapshot=True) as s:
        rows = month_cases(s, period, unit)
    if as_json:
        print_json(
            [
                {
                    "case_id": c.case_id,
                    "category": c.category,
                    "unit": c.unit,
                    "start": format_utc(c.start),
                    "end": format_utc(c.end),
                    "location": c.location,
                    "officers": list(c.officers),
                }
                for c in rows
            ]
        )
        return
    offset = common_offset([c.start for c in rows], z)
    t = _table(
        "case", f"start {offset}" if offset else "start", "min", "unit", "officers", "category",
        wrap=("unit", "officers", "category"),
    )  # fmt: skip
    for c in rows:
        minutes = (c.end - c.start).total_seconds() / 60
        t.add_row(
            esc(c.case_id),
            format_local(c.start, z, seconds=False, offset=offset is None),
            f"{minutes:.0f}" if minutes >= 1 else f"{minutes:.1f}",
            esc(c.unit),
            esc(",".join(c.officers)),
            esc(c.category),
        )
    if rows:
        _print(t)
    n = len(rows)
    out.print(
        f"{n} case{'' if n == 1 else 's'} starting in {period.label}; "
        f"times in {zone_label(z, station.clock.now())}"
    )
