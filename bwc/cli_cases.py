"""`bwc case …` and `bwc access` (registered on the main app by `bwc.cli`): cases as links
between items and enforcement cases, and the access trail. Parsing and printing only; the
work is in `bwc.evidence.cases`, `bwc.evidence.casework` and `bwc.evidence.access`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bwc.cli_common import ctx, err, esc, esc_msg, out, print_json
from bwc.config.limits import require_id
from bwc.errors import UsageError, VerificationError
from bwc.evidence.timefmt import format_local, format_utc, zone_label
from bwc.printable import printable

if TYPE_CHECKING:
    from bwc.evidence.casework import CaseView, ItemDone

case_app = typer.Typer(
    help="Enforcement cases: link footage to cases, show a case, act on all its footage.",
    no_args_is_help=True,
)

CaseArg = Annotated[str, typer.Argument(metavar="CASE", help="Enforcement case id.")]
IdsArg = Annotated[
    list[str], typer.Argument(metavar="ID...", help="sha256s or unique 8+ digit prefixes.")
]
ReasonOpt = Annotated[
    str, typer.Option("--reason", help="Why (recorded in the custody log). Required.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
NoRecordOpt = Annotated[
    bool,
    typer.Option(
        "--no-record",
        help="Not logged: for read-only diagnostics only (without it, each item shown or "
        "copied is recorded as a `viewed` custody event).",
    ),
]

_ID_DIGITS = 10  # as `bwc list`
_NAME_WIDTH = 10  # officer, device, class: cut in the middle beyond this (80 columns)


def _short(text: str, width: int = _NAME_WIDTH) -> str:
    text = printable(text)
    if len(text) <= width:
        return text
    tail = (width - 1) * 2 // 3
    return text[: width - 1 - tail] + "…" + text[-tail:]


# ---------------------------------------------------------------------------- link / unlink


@case_app.command("link")
def case_link(
    case: CaseArg,
    ids: IdsArg,
    reason: ReasonOpt,
    new_case: Annotated[
        bool,
        typer.Option(
            "--new-case",
            help="Accept a case id the imported cases (`bwc audit import cases`) do not "
            "know; without it, such an id is refused as a likely typo.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Link items to a case (an item may belong to several cases).

    Each new link is a `case-linked` custody event with the actor, case and reason; an item
    already linked is said so, and nothing is logged for it."""
    from bwc.evidence import cases

    done = cases.link(ctx().station(), case, ids, reason, new_case=new_case)
    _print_links(case, done, as_json, linked=True)


@case_app.command("unlink")
def case_unlink(case: CaseArg, ids: IdsArg, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Remove items' links to a case; each is a `case-unlinked` custody event."""
    from bwc.evidence import cases

    done = cases.unlink(ctx().station(), case, ids, reason)
    _print_links(case, done, as_json, linked=False)


def _print_links(case: str, done: list[Any], as_json: bool, *, linked: bool) -> None:
    if as_json:
        print_json(
            {"case": case, "items": [{"sha256": o.sha256, "changed": o.changed} for o in done]}
        )
        return
    for o in done:
        if o.changed:
            verb = "linked to" if linked else "unlinked from"
        else:
            verb = "already linked to" if linked else "was not linked to"
        out.print(f"{o.sha256[:16]}: {verb} case {esc(case)}")


# ---------------------------------------------------------------------------- show


@case_app.command("show")
def case_show(
    case: CaseArg,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Verify each item now (objects re-hashed); without it, each item's "
            "state is that of the last recorded verification run.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    no_record: NoRecordOpt = False,
) -> None:
    """Show a case and the items linked to it.

    The case as imported (officers, times, category); each item's recording time,
    officer, device, retention class, hold and verification state, in 80 columns.

    One `viewed` event per item shown is logged first (needs the signing key). Exit 1
    when a link is not what the custody log records, or an item checked now fails."""
    from bwc.evidence import access, casework

    require_id(case, "CASE")
    station = ctx().station()
    if not no_record:
        access.prepare(station)
    v = casework.view(station, case, fresh=check)
    if not no_record and v.items:
        # nothing added on top of damage (as `bwc show`); the command fails on it below
        if v.log_problems or v.link_problems or any(i.verified is False for i in v.items):
            err.print("[yellow]not recorded:[/] the case's links or items fail verification")
        else:
            shas = [i.item.sha256 for i in v.items]
            access.record_views(station, shas, "case-show", case=case)
    if as_json:
        print_json(_view_json(v))
    else:
        _print_view(v, station.settings.tz, station.clock.now())
    if v.link_problems:
        raise VerificationError(
            f"{len(v.link_problems)} link(s) of case {case!r} are not what the custody log "
            f"records; first: {v.link_problems[0]}",
            hint="run `bwc verify` on the items named",
        )
    failed = [i for i in v.items if v.fresh and i.verified is False]
    if failed:
        raise VerificationError(
            f"{len(failed)} of {len(v.items)} items of case {case!r} fail verification; "
            f"first: {failed[0].item.sha256[:16]}",
            hint="see `bwc verify ID`",
        )
    if v.log_problems:
        raise VerificationError("the custody log fails verification: " + v.log_problems[0])


def _view_json(v: CaseView) -> dict[str, Any]:
    c = v.case
    return {
        "case": v.case_id,
        "imported": c is not None,
        "category": c.category if c else None,
        "unit": c.unit if c else None,
        "location": c.location if c else None,
        "start": format_utc(c.start) if c else None,
        "end": format_utc(c.end) if c else None,
        "officers": v.officers,
        "verification": "checked now" if v.fresh else "last recorded run",
        "items": [
            {
                "sha256": i.item.sha256,
                "recorded_start": format_utc(i.item.recorded_start)
                if i.item.recorded_start
                else None,
                "officer_id": i.item.officer_id,
                "device_id": i.item.device_id,
                "class": i.class_name,
                "classified": i.classified,
                "legal_hold": i.on_hold,
                "deleted": i.deleted,
                "verified": i.verified,
                "verified_at": format_utc(i.verified_at) if i.verified_at else None,
                "failures": i.failures,
                "link_problems": i.link_problems,
            }
            for i in v.items
        ],
        "log_problems": v.log_problems,
    }


def _print_view(v: CaseView, tz: Any, now: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    c = v.case
    out.print(f"[bold]case {esc(v.case_id)}[/]" + ("" if c else " (not among the imported cases)"))
    if c is not None:
        for k, val in (
            ("category", c.category),
            ("unit", c.unit),
            ("location", c.location),
            ("from", format_local(c.start, tz, seconds=False)),
            ("to", format_local(c.end, tz, seconds=False)),
        ):
            out.print(f"  {k:<9} {esc(val) if val else '-'}")
    if v.officers:
        out.print(f"  officers  {esc(', '.join(v.officers))}")
    t = Table(box=None, pad_edge=False, header_style="bold")
    for h in ("id", "recorded", "officer", "device", "class", "hold", "verified"):
        t.add_column(h, no_wrap=True, overflow="ellipsis")
    for i in v.items:
        it = i.item
        state = "-" if i.verified is None else "ok" if i.verified else "FAIL"
        t.add_row(
            it.sha256[:_ID_DIGITS],
            format_local(it.recorded_start, tz, seconds=False, offset=False)
            if it.recorded_start
            else "-",
            escape(_short(it.officer_id or "-")),
            escape(_short(it.device_id or "-")),
            escape(_short(i.class_name + ("" if i.classified else "*"), 9))
            + (" (deleted)" if i.deleted else ""),
            "yes" if i.on_hold else "",
            state,
        )
    if v.items:
        out.print(t)
    n = len(v.items)
    how = "checked now" if v.fresh else "as of the last recorded verification run"
    out.print(f"{n} item{'' if n == 1 else 's'}; times in {zone_label(tz, now)}; * default class")
    out.print(f"verified: {how}")
    for i in v.items:
        for p in i.link_problems:
            out.print(f"[red]FAIL[/] {i.item.sha256[:16]}: {esc_msg(p)}")
        for f in i.failures:
            out.print(f"[red]FAIL[/] {i.item.sha256[:16]}: {esc_msg(f)}")


# ---------------------------------------------------------------------------- whole case


@case_app.command("classify")
def case_classify(
    case: CaseArg,
    class_name: Annotated[
        str, typer.Option("--class", help="Retention class (retention.classes in bwc.toml).")
    ],
    reason: ReasonOpt,
    force: Annotated[
        bool, typer.Option("--force", help="Allow a class that shortens retention (logged).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set the retention class of every item of a case (as `bwc classify` does per item).

    Every item is checked before any is changed; items already of the class are left."""
    from bwc.evidence import casework

    require_id(case, "CASE")
    done = casework.classify(ctx().station(), case, class_name, reason, force=force)
    _print_done(case, done, as_json)


@case_app.command("hold")
def case_hold(case: CaseArg, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Place every item of a case on legal hold (as `bwc hold` does per item)."""
    from bwc.evidence import casework

    require_id(case, "CASE")
    _print_done(case, casework.hold(ctx().station(), case, reason, place=True), as_json)


@case_app.command("release")
def case_release(case: CaseArg, reason: ReasonOpt, as_json: JsonOpt = False) -> None:
    """Release the legal hold of every item of a case (as `bwc release` does per item)."""
    from bwc.evidence import casework

    require_id(case, "CASE")
    _print_done(case, casework.hold(ctx().station(), case, reason, place=False), as_json)


def _print_done(case: str, done: list[ItemDone], as_json: bool) -> None:
    if as_json:
        print_json({"case": case, "items": [d.__dict__ for d in done]})
        return
    for d in done:
        out.print(esc_msg(d.message if d.status == "changed" else f"{d.sha256[:16]}: {d.message}"))
    changed = sum(1 for d in done if d.status == "changed")
    out.print(f"case {esc(case)}: {changed} of {len(done)} items changed")


# ---------------------------------------------------------------------------- access


def access(
    item_id: Annotated[
        str | None,
        typer.Argument(metavar="[ID]", help="sha256 or a unique 8+ digit prefix."),
    ] = None,
    case: Annotated[
        str | None, typer.Option("--case", help="Every item linked to this case.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who viewed or exported footage, and when: the `viewed` and `exported` custody events
    of an item (or of a case's items), each proven in the signed log. Local time."""
    from bwc.evidence import access as trail_of

    if (item_id is None) == (case is None):
        raise UsageError("name an item, or pass --case CASE (not both)")
    if case is not None:
        require_id(case, "--case")
    station = ctx().station()
    tz = station.settings.tz
    t = trail_of.trail(station, item_id=item_id, case=case)
    if as_json:
        print_json(
            {
                "items": t.items,
                "access": [
                    {
                        "index": e.index,
                        "kind": e.kind,
                        "what": e.what,
                        "at": format_utc(e.at),
                        "actor": e.actor,
                        "station": e.station_id,
                        "sha256": e.sha256,
                        "details": e.details,
                        "problem": e.problem,
                    }
                    for e in t.entries
                ],
                "log_problems": t.log_problems,
                "ok": t.ok,
            }
        )
    else:
        _print_trail(t, tz, station.clock.now())
    if not t.ok:
        first = next((e.problem for e in t.entries if e.problem), None)
        raise VerificationError(
            "the access trail does not verify: " + (first or t.log_problems[0]),
            hint="run `bwc log verify`",
        )


def _print_trail(t: Any, tz: Any, now: Any) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for h in ("when", "what"):
        table.add_column(h, no_wrap=True)
    # who, where and for whom are what an access trail is read for: wrapped whole onto
    # further lines, never cut to an ellipsis; an id is kept on one line up to 16
    # characters, the recipient (words) wraps first
    for h, values in (
        ("who", [e.actor for e in t.entries]),
        ("station", [e.station_id for e in t.entries]),
    ):
        width = min(max([len(h), *(len(v) for v in values)]), 16)
        table.add_column(h, overflow="fold", min_width=width)
    table.add_column("item", no_wrap=True)
    table.add_column("for / case", overflow="fold", ratio=1)
    for e in t.entries:
        d = e.details
        extra = d.get("recipient") or d.get("case") or ""
        table.add_row(
            format_local(e.at, tz, offset=False),
            esc(e.what),
            esc(e.actor),
            esc(e.station_id),
            e.sha256[:_ID_DIGITS],
            esc(str(extra)),
        )
    if t.entries:
        out.print(table)
    n = len(t.entries)
    out.print(
        f"{n} access{'' if n == 1 else 'es'} to {len(t.items)} item"
        f"{'' if len(t.items) == 1 else 's'}; times in {zone_label(tz, now)}"
    )
    for e in t.entries:
        if e.problem:
            out.print(f"[red]FAIL[/] #{e.index}: {esc_msg(e.problem)}")
    for p in t.log_problems:
        out.print(f"[red]FAIL[/] {esc_msg(p)}")


def get(
    item_id: Annotated[
        str, typer.Argument(metavar="ID", help="sha256 or a unique 8+ digit prefix.")
    ],
    out_file: Annotated[
        Path, typer.Option("--out", help="The file to write (must not exist yet).")
    ],
    no_record: NoRecordOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy an item's footage out of the store into a file, re-hashed on the way.

    The file appears only when its SHA-256 and size are the item's (exit 1 otherwise,
    nothing written). The copy is logged first (a `viewed` event, what=get, with the
    file's name, and a checkpoint: needs the signing key)."""
    from bwc.evidence import retrieve

    res = retrieve.get(ctx().station(), item_id, out_file, record=not no_record)
    if as_json:
        print_json(
            {
                "sha256": res.sha256,
                "size": res.size,
                "path": str(res.path),
                "recorded": res.recorded,
            }
        )
    else:
        out.print(
            f"{res.sha256[:16]}: {res.size} bytes written to {esc(str(res.path))}, "
            "SHA-256 checked" + ("" if res.recorded else " (not logged: --no-record)")
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(case_app, name="case")
    app.command("access")(access)
    app.command("get")(get)
