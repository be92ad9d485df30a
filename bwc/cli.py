"""The `bwc` command line: parses, wires the parts together, prints. No domain logic here.

Errors from the core arrive as ``BwcError`` subclasses and leave here as one line on stderr
and the error's exit code (README, "Exit codes"); tracebacks only with ``-v``.
"""

from __future__ import annotations

import base64
import errno
import functools
import inspect
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bwc import cli_audit, cli_cases, cli_devices, cli_export, cli_store
from bwc.cli_common import (
    Ctx,
    _state,
    close_stations,
    ctx,
    err,
    esc,
    esc_msg,
    json_dumps,
    opened,
    os_user,
    out,
    print_json,
)
from bwc.config.home import resolve_home
from bwc.config.limits import require_id
from bwc.errors import (
    BROKEN_PIPE,
    INTERNAL_ERROR,
    BwcError,
    InputError,
    UsageError,
    VerificationError,
    first_line,
)
from bwc.evidence.manifest import parse_manifest
from bwc.evidence.timefmt import format_local, format_utc, parse_utc
from bwc.printable import PrintableFormatter, printable

if TYPE_CHECKING:
    from bwc.config.settings import Settings
    from bwc.evidence.models import Event, Item
    from bwc.evidence.orphans import Orphan
    from bwc.evidence.station import Station
    from bwc.evidence.stores import ReadAhead
    from bwc.evidence.verify import ItemReport
    from bwc.ingest.pipeline import FileResult

# The catalog (SQLModel/SQLAlchemy, ~0.4 s to load), the store, rich tables and progress bars
# are imported inside the commands that use them: `--help` and `--version` stay instant, and
# `bwc ingest` starts copying footage while they load.

app = typer.Typer(
    name="bwc",
    help="Body-worn-camera evidence: ingest, verify, chain of custody.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # help as wide as the terminal up to 100 columns (click's default stops at 80)
    context_settings={"max_content_width": 100},
)
keys_app = typer.Typer(help="Station signing keys.", no_args_is_help=True)
log_app = typer.Typer(
    help="The custody log: checkpoints, proofs, verification.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(log_app, name="log")


@app.callback()
def _main(
    home: Annotated[
        Path | None,
        typer.Option(help="bwc home folder (config, catalog, store, keys).", envvar="BWC_HOME"),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            help="Who is acting, recorded in custody events (name or badge number). "
            "Default: the OS user.",
            envvar="BWC_ACTOR",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Debug logging, tracebacks.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=lambda v: _print_version() if v else None,
        ),
    ] = False,
) -> None:
    # log messages carry file names: escaped, one record one line (bwc.printable)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    _state["ctx"] = Ctx(
        home=resolve_home(home),
        actor=actor or os_user(),
        verbose=verbose,
    )


def _print_version() -> None:
    out.print(f"bwc {_version()}")
    raise typer.Exit(0)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bwc-evidence")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------- init


@app.command()
def init(
    station_id: Annotated[
        str | None, typer.Option("--station-id", help="This station's id (default: random).")
    ] = None,
) -> None:
    """Create the home: bwc.toml, the catalog, the local store and a station signing key.

    On an existing home: migrate the catalog to this version (building the custody log's
    tiles once, with a progress bar, if it predates them)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bwc.config import secrets
    from bwc.evidence.station import init_home

    c = ctx()
    passphrase = secrets.passphrase_from_env()
    bar = Progress(
        TextColumn("bringing the custody log's tiles up to date"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=True,
    )
    task = bar.add_task("tiles", total=None)

    def progress(done: int, total: int) -> None:
        bar.start()  # only when there are tiles to build (once, after an upgrade)
        bar.update(task, completed=done, total=total)

    try:
        station, created, tightened = init_home(
            c.home, station_id=station_id, passphrase=passphrase, actor=c.actor, progress=progress
        )
    finally:
        bar.stop()
    opened.append(station)
    for line in tightened:
        out.print(f"permissions tightened: {esc_msg(line)}")
    if created:
        out.print(f"initialised {esc(str(c.home))} as station [bold]{esc(station.station_id)}[/]")
        out.print(f"signing key {station.signer().key_id}")
        if passphrase is None:
            err.print(
                "[yellow]warning:[/] BWC_KEY_PASSPHRASE is not set: the signing key is stored "
                "unencrypted (mode 0600). Set it and run `bwc keys rotate` to protect new keys."
            )
    else:
        out.print(
            f"{esc(str(c.home))} is already initialised (station {esc(station.station_id)}); "
            "catalog migrated"
        )


# ---------------------------------------------------------------------------- ingest


def _shower(as_json: bool) -> Callable[[FileResult], None]:
    def show(r: FileResult) -> None:
        if as_json:
            return
        if r.status == "error":
            err.print(f"[red]error[/]  {esc(r.path)}: {esc_msg(r.reason or '')}")
        elif r.status == "ignored":
            out.print(f"[dim]skip[/]   {esc(r.path)}: {esc_msg(r.reason or '')}")
        else:
            flags = f" [yellow]({', '.join(r.flags)})[/]" if r.flags else ""
            out.print(f"{r.status:<10} {r.sha256[:16] if r.sha256 else ''}  {esc(r.path)}{flags}")

    return show


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    officer: Annotated[str | None, typer.Option(help="Officer id the footage belongs to.")] = None,
    device: Annotated[str | None, typer.Option(help="Device (camera) id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Copy files into the store (hashed in the same pass), sign, verify, log."""
    from bwc.config.settings import load_settings
    from bwc.ingest.discover import discover, station_paths
    from bwc.ingest.probe import FFprobe
    from bwc.ingest.stage import ForkedStager, Stager, clean_stale_spool

    for option, value in (("--officer", officer), ("--device", device)):
        if value is not None:
            require_id(value, option)  # before anything is copied
    c = ctx()
    settings = load_settings(c.home)  # no home or a bad setting: stop before copying anything
    # never the station's own home, store or spool (keys, catalog) as evidence: refused
    # before anything is copied
    found = discover(paths, settings.ignore, station_paths(settings))
    clean_stale_spool(settings.spool_dir)
    if not FFprobe.available():
        err.print("[yellow]warning:[/] ffprobe not found: media summaries will be missing")
    probe = FFprobe()
    # Copying into the spool starts now, in a child process, while this one loads the catalog
    # code and opens the station (~0.5 s of pure Python); nothing staged is stored before the
    # store, the key and the catalog have been checked, and the spool is removed in any case.
    staging = ForkedStager if found.files and hasattr(os, "fork") else Stager
    with staging(found.files, settings.spool_dir, probe) as stager:
        from bwc.ingest.pipeline import Attribution, Ingester

        station = c.station(settings)
        ing = Ingester(station, probe, Attribution(officer, device), progress=_shower(as_json))
        report = ing.run_staged(found, stager)
    if as_json:
        print_json(
            {
                "results": [r.__dict__ for r in report.results],
                "ingested": report.count("ingested"),
                "seen_again": report.count("seen-again"),
                "ignored": report.count("ignored"),
                "errors": len(report.errors),
                "checkpoint": report.checkpoint,
            }
        )
    else:
        out.print(
            f"{report.count('ingested')} ingested, {report.count('seen-again')} seen again, "
            f"{report.count('ignored')} ignored, {len(report.errors)} errors"
        )
    if report.errors:
        raise InputError(
            f"{len(report.errors)} file(s) were not ingested",
            hint="see the errors above; nothing else was changed for them",
        )


# ---------------------------------------------------------------------------- list / show


def _item_json(item: Item) -> dict[str, Any]:
    return {
        "sha256": item.sha256,
        "size": item.size,
        "path": item.original_path,
        "device_id": item.device_id,
        "officer_id": item.officer_id,
        "recorded_start": format_utc(item.recorded_start) if item.recorded_start else None,
        "recorded_end": format_utc(item.recorded_end) if item.recorded_end else None,
        "ingested_at": format_utc(item.ingested_at),
        "station_id": item.station_id,
        "key_id": item.key_id,
        "flags": [f for f in item.flags.split(",") if f],
    }


def _parse_since(text: str) -> datetime:
    try:
        return parse_utc(text if ("T" in text) else text + "T00:00:00Z")
    except ValueError as e:
        raise UsageError(f"--since {text!r} is not an ISO 8601 time with a zone") from e


# Short codes for item flags in `bwc list` (a legend under the table names the ones shown).
_FLAG_CODES = {
    "unattributed": "U",
    "device-mismatch": "M",
    "not-media": "N",
    "zero-byte": "Z",
    "no-recorded-time": "T",
    "non-utf8-name": "8",
    "id-file": "I",
}
# 10 hex digits: 1 in ~70,000 chance that another of 15 million items shares it (then `bwc
# show` asks for more digits); the JSON has the whole sha256
_LIST_ID_DIGITS = 10
_LIST_NAME_MIN = 12
_LIST_ID_MAX = 12  # officer and device ids longer than this are cut in the middle


def _duration(seconds: float) -> str:
    """'0:07', '12:34', '1:02:03'."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _size(n: int) -> str:
    """'512 B', '1.2 kB', '340 MB', '2.1 GB' (decimal units, as a card's label)."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 999.5 or unit == "PB":
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def _short(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters: a camera's file names differ at
    their start (date) and their end (sequence, extension), so both are kept."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    tail = (width - 1) * 2 // 3  # the end (sequence number, extension) tells clips apart
    head = width - 1 - tail
    return text[:head] + "…" + (text[-tail:] if tail else "")


def _file_name(item: Item) -> str:
    """The last component of the item's path, without a leading `DEVICE_OFFICER_` that the
    device and officer columns already show (the cn-standard names)."""
    name = item.original_path.rsplit("/", 1)[-1]
    prefix = f"{item.device_id}_{item.officer_id}_"
    if item.device_id and item.officer_id and name.startswith(prefix) and name != prefix:
        return name[len(prefix) :]
    return name


def _recorded_cell(t: datetime, tz: tzinfo, offset: str | None) -> str:
    """'2026-10-15 09:30' under a header that states the offset; else (the rows straddle a
    daylight-saving change) with its own, in ISO 8601's short form when whole hours ('+02')
    so the row still fits 80 columns."""
    if offset is not None:
        return format_local(t, tz, seconds=False, offset=False)
    text = format_local(t, tz, seconds=False)
    return text[:-3] if text.endswith(":00") else text


def _list_rows(items: Sequence[Item], tz: tzinfo, offset: str | None) -> list[list[str]]:
    """The plain-text cells of `bwc list` (no markup yet): id, recorded, officer, device,
    length, flags, file name (the last path component, shortened later to fit)."""

    rows = []
    for i in items:
        if i.recorded_start and i.recorded_end:
            length = _duration((i.recorded_end - i.recorded_start).total_seconds())
        else:
            length = _size(i.size)
        flags = [f for f in i.flags.split(",") if f]
        rows.append(
            [
                i.sha256[:_LIST_ID_DIGITS],
                _recorded_cell(i.recorded_start, tz, offset) if i.recorded_start else "-",
                _short(printable(i.officer_id or "-"), _LIST_ID_MAX),
                _short(printable(i.device_id or "-"), _LIST_ID_MAX),
                length,
                "".join(_FLAG_CODES.get(f, "?") for f in flags),
                printable(_file_name(i)),
            ]
        )
    return rows


@app.command("list")
def list_(
    officer: Annotated[str | None, typer.Option(help="Only this officer's items.")] = None,
    device: Annotated[str | None, typer.Option(help="Only this device's items.")] = None,
    unattributed: Annotated[
        bool,
        typer.Option(
            "--unattributed",
            help="Only items with no officer (to attribute); the camera's id file aside.",
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only items ingested at or after this time (ISO 8601 with zone, or a date in UTC)."
        ),
    ] = None,
    recorded_from: Annotated[
        str | None,
        typer.Option(
            "--recorded-from",
            help="Only items recorded from this time on (ISO 8601 date or date-time; "
            "local time in the configured zone unless it has an offset).",
        ),
    ] = None,
    recorded_to: Annotated[
        str | None,
        typer.Option(
            "--recorded-to",
            help="Only items recorded before this time (a date alone: up to its end). "
            "Items with no recording time are left out by either filter.",
        ),
    ] = None,
    flag: Annotated[
        str | None,
        typer.Option(
            help="Only items with this flag (device-mismatch, unattributed, not-media, "
            "zero-byte, non-utf8-name, no-recorded-time, id-file)."
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            help="`recorded` (by recording time; items without one last, by ingest) or `ingested`."
        ),
    ] = "recorded",
    case: Annotated[
        str | None,
        typer.Option("--case", help="Only items linked to this case (`bwc case link`)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List evidence items, by recording time. Times in the configured time zone; JSON: UTC."""
    from rich.markup import escape
    from rich.table import Table

    from bwc.cli_common import recorded_bound
    from bwc.config.settings import load_settings
    from bwc.evidence.items import ItemFilter, find
    from bwc.evidence.timefmt import common_offset, zone_label

    if sort not in ("recorded", "ingested"):
        raise UsageError(f"--sort must be recorded or ingested, not {sort!r}")
    c = ctx()
    settings = load_settings(c.home)
    tz = settings.tz
    t0 = recorded_bound(recorded_from, tz, "--recorded-from", end_of_day=False)
    t1 = recorded_bound(recorded_to, tz, "--recorded-to", end_of_day=True)
    if t0 is not None and t1 is not None and t0 >= t1:
        raise UsageError(
            f"--recorded-from {recorded_from!r} is not before --recorded-to {recorded_to!r}"
        )
    f = ItemFilter(
        officer,
        device,
        unattributed,
        _parse_since(since) if since else None,
        flag,
        recorded_from=t0,
        recorded_to=t1,
        order=sort,
        case=require_id(case, "--case") if case is not None else None,
    )
    station = c.station(settings)
    items = find(station, f)
    if as_json:
        print_json([_item_json(i) for i in items])
        return
    offset = common_offset([i.recorded_start for i in items if i.recorded_start], tz)
    rows = _list_rows(items, tz, offset)
    heads = ["id", f"recorded {offset}" if offset else "recorded", "officer", "device"]
    heads += ["length", "flags", "file"]
    # every column but the file name at its natural width; the name gets the rest
    widths = [max([len(h)] + [len(r[k]) for r in rows]) for k, h in enumerate(heads[:-1])]
    name_width = max(_LIST_NAME_MIN, out.width - sum(widths) - 2 * (len(heads) - 1))
    t = Table(box=None, pad_edge=False, header_style="bold")
    for k, h in enumerate(heads):  # one line per item: cut to fit, nothing wraps
        # the id and the time are never cut (an id cut short is no id), whatever the width
        keep = widths[k] if k < 2 else None
        t.add_column(h, no_wrap=True, overflow="ellipsis", min_width=keep)
    for r in rows:
        t.add_row(*(escape(v) for v in r[:-1]), escape(_short(r[-1], name_width)))
    if rows:
        out.print(t)
    n = len(items)
    zone = zone_label(tz, station.clock.now())
    out.print(f"{n} item" + ("" if n == 1 else "s") + f"; times in {zone}")
    used = dict.fromkeys(f for i in items for f in i.flags.split(",") if f)
    if used:
        out.print("flags: " + ", ".join(f"{_FLAG_CODES.get(f, '?')} {escape(f)}" for f in used))


def _event_json(ev: Event) -> dict[str, Any]:
    from bwc.evidence.events import decode_leaf

    try:
        details: Any = decode_leaf(ev.leaf).details
    except ValueError as e:
        details = {"unreadable_leaf": str(e)}
    return {
        "index": ev.idx,
        "kind": ev.kind,
        "at": format_utc(ev.at),
        "actor": ev.actor,
        "station": ev.station_id,
        "item": ev.item_sha256,
        "details": details,
    }


@app.command()
def show(
    item_id: Annotated[
        str, typer.Argument(metavar="ID", help="sha256 or a unique 8+ digit prefix.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    no_record: Annotated[bool, typer.Option("--no-record", help=NO_RECORD_HELP)] = False,
) -> None:
    """Show an item, its manifest, its chain of custody and whether each check passes.

    The view is logged (a `viewed` custody event, then a signed checkpoint: needs the
    signing key) before anything is printed; a view that cannot be logged fails."""
    from bwc.evidence import access
    from bwc.evidence.verify import run

    station = ctx().station()
    tz = station.settings.tz
    if not no_record:
        access.prepare(station)
    shown = run.show(station, item_id)
    item, events, rep = shown.item, shown.events, shown.report
    if not no_record:
        _record_view(station, item.sha256, rep, "show")
    runs: list[dict[str, Any]] = [
        {
            "run": v.run_id,
            "at": format_utc(v.at),
            "actor": v.actor,
            "station": v.station_id,
            "scope": v.scope,
            "ok": v.ok,
        }
        for v in shown.verifications
    ]
    if as_json:
        print_json(
            {
                **_item_json(item),
                "manifest": item.manifest.decode("utf-8"),
                "signature": base64.b64encode(item.signature).decode("ascii"),
                "events": [_event_json(e) for e in events],
                "verifications": runs,
                "checks": [c.__dict__ for c in rep.checks],
                "verified": rep.ok,
            }
        )
    else:
        _print_item(item, events, rep, tz)
        if shown.verifications:
            out.print("[bold]verified by[/]")
        for v in shown.verifications:
            mark = "[green]ok[/]  " if v.ok else "[red]FAIL[/]"
            what = "every item" if v.scope == "all" else "by id"
            out.print(
                f"  {mark} run {v.run_id[:12]} {format_local(v.at, tz)} by {esc(str(v.actor))} at "
                f"{esc(str(v.station_id))} ({what})"
            )
    if not rep.ok:
        raise VerificationError(
            f"item {item.sha256[:16]} fails verification", hint="see the checks above"
        )


NO_RECORD_HELP = (
    "Not logged: for read-only diagnostics only (without it, the view is recorded as a "
    "`viewed` custody event)."
)


def _record_view(station: Station, sha256: str, rep: ItemReport, what: str) -> None:
    """Log the view, unless the item fails verification: nothing is added on top of
    damage (new events and a fresh checkpoint would bury it), and the command fails on
    the check anyway, saying so."""
    from bwc.evidence import access

    if rep.ok:
        access.record_views(station, [sha256], what)
    else:
        err.print("[yellow]not recorded:[/] the item fails verification (see the checks)")


# the item's times, shown to people in the configured zone (JSON keeps them in UTC)
_LOCAL_TIMES = ("recorded_start", "recorded_end", "ingested_at")


def _print_item(item: Item, events: list[Event], rep: ItemReport, tz: tzinfo) -> None:
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from bwc.evidence.mediatext import media_text

    def hang(indent: int, text: str, style: str = "") -> None:
        """``text`` wrapped at the terminal's width under its own first column: a value
        longer than a line (a sha256, a path) is folded whole onto the next, never cut."""
        body = Text(printable(text), style=style, overflow="fold")
        out.print(Padding(body, (0, 0, 0, indent), expand=False), soft_wrap=False)

    def local(text: str) -> str:
        try:
            return format_local(parse_utc(text), tz)
        except ValueError:
            return text

    out.print(f"[bold]evidence item {item.sha256}[/]")
    fields = Table.grid(padding=(0, 1), pad_edge=False)
    fields.add_column(width=15, no_wrap=True)
    fields.add_column(overflow="fold")
    for k, v in _item_json(item).items():
        if k in _LOCAL_TIMES and getattr(item, k) is not None:
            v = format_local(getattr(item, k), tz)
        if k != "sha256":
            fields.add_row(k, Text(printable(str(v)) if v not in (None, []) else "-"))
    try:
        m = parse_manifest(item.manifest)
        if m.media:
            fields.add_row("media", Text(printable(media_text(dict(m.media), local))))
    except VerificationError:
        pass
    out.print(Padding(fields, (0, 0, 0, 2), expand=False), soft_wrap=False)
    out.print("[bold]chain of custody[/]")
    for ev in events:
        d = _event_json(ev)["details"]
        out.print(
            f"  #{ev.idx:<6} {format_local(ev.at, tz)}  {esc(ev.kind):<12} by {esc(ev.actor)} "
            f"at {esc(ev.station_id)}"
        )
        # the details under their event, one to a line
        for k, v in d.items():
            if v is not None:
                hang(10, f"{k}={v}", "dim")
    out.print("[bold]checks[/]")
    for c in rep.checks:
        mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
        out.print(f"  {mark} {c.name:<16} {esc_msg(c.detail)}")


# ---------------------------------------------------------------------------- verify


@app.command()
def verify(
    ids: Annotated[
        list[str] | None, typer.Argument(metavar="[ID]...", help="Items to verify.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Verify every item.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record",
            help="Log a `verified` custody event per item and sign a checkpoint (needs the key).",
        ),
    ] = True,
) -> None:
    """Re-hash stored objects and check manifest, signature, catalog row and custody log.

    Items named by id are proven against the latest checkpoint (cost by item); --all checks
    the whole log first, streamed. Exit 0 only when every check of every item passes (exit 1
    otherwise)."""
    if not ids and not all_:
        raise UsageError("name the items to verify, or pass --all")
    from bwc.config.settings import load_settings

    cx = ctx()
    settings = load_settings(cx.home)
    ahead = _read_ahead(settings) if all_ else None
    try:
        _verify(cx, settings, ids, all_=all_, as_json=as_json, record=record, ahead=ahead)
    finally:
        if ahead is not None:
            ahead.close()


def _read_ahead(settings: Settings) -> ReadAhead | None:
    """The store's objects, re-hashed from now on while the catalog code loads, where the
    store can list them cheaply (a local folder; S3 reads each as it is checked)."""
    from bwc.evidence.stores import ReadAhead, open_store

    store = open_store(settings.store, settings)
    ids = store.prefetch_ids()
    return ReadAhead(store, ids, settings.verify_workers) if ids else None


def _verify(
    cx: Ctx,
    settings: Settings,
    ids: list[str] | None,
    *,
    all_: bool,
    as_json: bool,
    record: bool,
    ahead: ReadAhead | None,
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from bwc.evidence.verify import run

    station = cx.station(settings)
    show_bar = all_ and not as_json and err.is_terminal
    listing = _JsonList("items") if as_json else None

    def shown(r: ItemReport) -> None:
        # each result as it is made: nothing accumulates, whatever the number of items
        if listing is not None:
            checks = [c.__dict__ for c in r.checks]
            listing.add({"sha256": r.sha256, "ok": r.ok, "checks": checks})
        elif r.ok:
            gone = " (deleted by policy; record kept)" if r.deleted else ""
            out.print(f"[green]ok[/]   {r.sha256}{gone}")
        else:
            for c in r.failures():
                out.print(f"[red]FAIL[/] {r.sha256}: {c.name}: {esc_msg(c.detail)}")

    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not show_bar,
    ) as bar:
        task = bar.add_task("verify", total=None)

        def done(r: ItemReport) -> None:
            shown(r)
            bar.advance(task)

        def orphan(o: Orphan) -> None:
            if listing is None:
                out.print(
                    f"[red]ORPHAN[/] {o.sha256}: in the store (written {format_utc(o.written)}) "
                    "but not in the catalog (a commit that failed after the store write?); "
                    "nothing was deleted"
                )

        if all_:
            res = run.verify_everything(
                station,
                record=record,
                on_start=lambda n: bar.update(task, total=n),
                on_done=done,
                ahead=ahead,
                on_orphan=orphan,
            )
        else:
            res = run.verify_ids(station, ids or [], record=record, on_done=done)
    total, bad = res.total, len(res.failed)
    if listing is not None:
        listing.close(
            ok=not bad and res.log_ok,
            log_problems=res.log_problems,
            orphans=res.orphans,
            run=res.run_id if res.recorded else None,
        )
    else:
        more = f"; {len(res.orphans)} store objects not in the catalog" if res.orphans else ""
        out.print(f"{total - bad} of {total} items verified{more}")
    if res.not_recorded and not as_json:
        err.print(f"[yellow]not recorded:[/] {esc_msg(res.not_recorded)}")
    if bad:
        raise VerificationError(f"{bad} of {total} items failed verification")
    if not res.log_ok:
        raise VerificationError("the custody log fails verification: " + res.log_problems[0])
    if res.orphans:
        raise VerificationError(
            f"{len(res.orphans)} objects in the store are not in the catalog "
            f"(first: {res.orphans[0]})",
            hint="see `bwc store check`; nothing was deleted",
        )


class _JsonList:
    """A JSON object whose list member ``name`` is written one element at a time, then the
    other members: a result of millions of items never sits in memory."""

    def __init__(self, name: str) -> None:
        self.n = 0
        sys.stdout.write("{\n  " + json.dumps(name) + ": [")

    def add(self, value: Any) -> None:
        text = json_dumps(value)
        sys.stdout.write(("," if self.n else "") + "\n    " + text.replace("\n", "\n    "))
        self.n += 1

    def close(self, **members: Any) -> None:
        sys.stdout.write("\n  ]")
        for k, v in members.items():
            text = json_dumps(v)
            sys.stdout.write(f",\n  {json.dumps(k)}: " + text.replace("\n", "\n  "))
        sys.stdout.write("\n}\n")


# ---------------------------------------------------------------------------- keys


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List every signing key this catalog knows (retired keys still verify what they signed)."""
    from rich.table import Table

    from bwc.evidence import note

    data: list[dict[str, Any]] = [
        {
            "key_id": k.key_id,
            "station_id": k.station_id,
            "created_at": format_utc(k.created_at),
            "retired_at": format_utc(k.retired_at) if k.retired_at else None,
            "active": k.active,
            "verifier_key": note.verifier_key(k.station_id, k.public_key),
        }
        for k in ctx().station().key_list()
    ]
    if as_json:
        print_json(data)
        return
    t = Table("key id", "station", "created", "retired", "active", "note verifier key")
    for d in data:
        t.add_row(
            d["key_id"],
            esc(d["station_id"]),
            d["created_at"],
            d["retired_at"] or "-",
            "yes" if d["active"] else "",
            d["verifier_key"],
        )
    out.print(t)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new signing key; it signs from now on, old keys stay valid for what they signed."""
    station = ctx().station()
    old, new = station.rotate_key()
    out.print(f"rotated: {old} -> {new}")
    if station.passphrase is None:
        err.print("[yellow]warning:[/] BWC_KEY_PASSPHRASE is not set: the new key is unencrypted")


@keys_app.command("export-public")
def keys_export_public(
    key_id: Annotated[str | None, typer.Argument(help="Key id (default: the active key).")] = None,
) -> None:
    """Print a public key as PEM (for openssl and court bundles)."""
    from bwc.evidence.signing import public_pem

    sys.stdout.write(public_pem(ctx().station().public_key(key_id)))


# ---------------------------------------------------------------------------- log


@log_app.command("checkpoint")
def log_checkpoint() -> None:
    """Sign a checkpoint of the log as it stands and print the note."""
    station = ctx().station()
    sys.stdout.write(station.checkpoint())


@log_app.command("timestamp")
def log_timestamp() -> None:
    """Fetch now the RFC 3161 timestamps of checkpoints still without one (the TSA was down
    when they were signed) and put them in the store beside the log. Exit 9 when the TSA
    still does not answer."""
    from bwc.errors import TimestampError

    station = ctx().station()
    if not station.settings.timestamp.enabled:
        raise UsageError(
            "no time-stamping authority is configured",
            hint="set [timestamp] tsa_url and ca_file in bwc.toml",
        )
    res = station.fetch_timestamps(only=None)
    tz = station.settings.tz
    for f in res.fetched:
        out.print(
            f"timestamped checkpoint #{f.checkpoint_id} (size {f.size}) at "
            f"{format_local(f.gen_time, tz)}"
        )
    if res.published:
        out.print(f"{res.published} timestamps put in the store (log/timestamps/)")
    if res.error:
        raise TimestampError(
            f"{res.pending} checkpoints still await a timestamp: {res.error}",
            hint="they stay pending; the daemon retries, or run `bwc log timestamp` later",
        )
    if res.pending:  # more than one round's worth after a long outage
        out.print(f"{res.pending} checkpoints still await a timestamp: run it again")
    elif not res.fetched:
        out.print("no checkpoint awaits a timestamp")


@log_app.command("verify")
def log_verify(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    from_store: Annotated[
        str | None,
        typer.Option(
            "--from-store",
            metavar="URL",
            help="Check the log's published copy in this store (file:// or s3://) alone, "
            "with no catalog: the disaster-recovery check.",
        ),
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            metavar="VERIFIER",
            help="With --from-store: a note verifier key (`bwc keys list`) that must have "
            "signed the store's checkpoint. Repeatable.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="last",
            help="Check only what was appended after the last recorded full check "
            "(`--since last`), from the tree that check verified.",
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Log a check that passes (a `log-verified` event with the size and root "
            "it verified): where the next `--since last` starts.",
        ),
    ] = False,
) -> None:
    """Re-hash every event, rebuild the tree and check every tile and checkpoint against it,
    and the store's published copy (C2SP tlog-tiles) against the catalog's.

    Streamed: memory stays flat whatever the log's size."""
    from bwc.evidence.verify import run

    if key and not from_store:
        raise UsageError("--key goes with --from-store")
    if since not in (None, "last"):
        raise UsageError(f"--since takes `last`, not {since!r}")
    if from_store is not None and (since or record):
        raise UsageError("--from-store checks the store's copy alone: no --since, no --record")
    start = 0
    if from_store is not None:
        rep = run.verify_store_copy(from_store, _settings_if_any(), key or [])
    else:
        rep, start = run.verify_log(ctx().station(), since_last=since == "last", record=record)
    root = base64.b64encode(rep.root).decode("ascii")
    if as_json:
        print_json(
            {
                "ok": rep.ok,
                "size": rep.size,
                "root": root,
                "checkpoints": rep.checkpoints,
                "timestamps": rep.timestamps,
                "since": start,
                "problems": rep.problems,
            }
        )
    else:
        for p in rep.problems:
            out.print(f"[red]FAIL[/] {esc_msg(p)}")
        if rep.ok and from_store is not None:
            out.print(
                f"[green]ok[/] the published log: {rep.size} entries, every tile and the "
                f"signed checkpoint verified; root {root}"
            )
            if rep.timestamps:
                signed = run.configured_roots(_settings_if_any()) is not None
                out.print(
                    "[green]ok[/] the checkpoint's RFC 3161 timestamp (log/timestamps/): "
                    + (
                        "imprint and TSA signature verified"
                        if signed
                        else "imprint verified; "
                        "its signature NOT checked (no [timestamp] ca_file here)"
                    )
                )
        elif rep.ok:
            latest = rep.latest.size if rep.latest else 0
            scope = f" (#{start}..#{rep.size - 1}, after the last full check)" if start else ""
            out.print(
                f"[green]ok[/] {rep.size} events{scope}, {rep.checkpoints} checkpoints "
                f"verified; latest checkpoint covers {latest} events; root {root}"
            )
            if rep.timestamps:
                out.print(
                    f"[green]ok[/] {rep.timestamps} checkpoint timestamps (RFC 3161) verified, "
                    "in the catalog and the store"
                )
    if not rep.ok:
        raise VerificationError(f"custody log fails verification ({len(rep.problems)} problems)")


def _settings_if_any() -> Settings | None:
    """This home's settings where there is a home (S3 tuning), else the defaults."""
    from bwc.config.home import CONFIG_NAME
    from bwc.config.settings import load_settings

    home = ctx().home
    return load_settings(home) if (home / CONFIG_NAME).is_file() else None


@log_app.command("events")
def log_events(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print every event (local time, with its offset); --json: with its exact leaf bytes
    (base64) and UTC times, so anyone can recompute the root."""
    station = ctx().station()
    if as_json:
        # one event at a time, never the whole log in memory
        sys.stdout.write("[")
        for n, e in enumerate(station.log_events()):
            leaf = base64.b64encode(e.leaf).decode("ascii")
            text = json_dumps({**_event_json(e), "leaf": leaf})
            sys.stdout.write(("," if n else "") + "\n" + text)
        sys.stdout.write("\n]\n")
        return
    from bwc.evidence.timefmt import zone_label

    tz = station.settings.tz  # people read local time, with its offset; JSON stays UTC
    for e in station.log_events():
        out.print(
            f"#{e.idx:<6} {format_local(e.at, tz)}  {esc(e.kind):<12} {esc(e.actor):<12} "
            f"{esc(e.station_id)}  {e.item_sha256 or ''}"
        )
    out.print(f"times in {zone_label(tz, station.clock.now())}")


@log_app.command("proof")
def log_proof(
    item_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    no_record: Annotated[bool, typer.Option("--no-record", help=NO_RECORD_HELP)] = False,
) -> None:
    """Print inclusion proofs of an item's events against the latest signed checkpoint.

    The request is logged first (a `viewed` event and a checkpoint, needing the signing
    key), so the proofs printed include it."""
    from bwc.evidence import access
    from bwc.evidence.verify import run

    station = ctx().station()
    if not no_record:
        access.prepare(station)
        access.record_view_of(station, item_id, "proof")
    p = run.item_proofs(station, item_id)

    def b64(h: bytes) -> str:
        return base64.b64encode(h).decode("ascii")

    proofs: list[dict[str, Any]] = [
        {"index": e.index, "kind": e.kind, "covered": False}
        if e.proof is None
        else {
            "index": e.index,
            "kind": e.kind,
            "covered": True,
            "leaf": b64(e.leaf),
            "proof": [b64(h) for h in e.proof],
        }
        for e in p.events
    ]
    data = {
        "sha256": p.sha256,
        "checkpoint": p.checkpoint,
        "tree_size": p.tree_size,
        "events": proofs,
    }
    if as_json:
        print_json(data)
        return
    out.print(p.checkpoint, end="", markup=False)  # the signed note, byte for byte
    for e in proofs:
        if not e["covered"]:
            out.print(f"#{e['index']} {e['kind']}: not yet covered by a checkpoint")
        else:
            out.print(f"#{e['index']} {e['kind']}: " + " ".join(e["proof"]))


# ---------------------------------------------------------------------------- entry point


@functools.cache
def _command() -> Callable[..., Any]:
    """The click command typer builds from ``app`` (every option of every command: ~0.1 s),
    built once per process: ``app(...)`` would build it again at every call, and the tests
    run the CLI in one process thousands of times. Every command is registered at import."""
    return typer.main.get_command(app)


def main(argv: list[str] | None = None) -> None:
    # typer/click handle their own usage errors (exit 2) and --help; everything else arrives
    # here: our errors as one line with their exit code, anything unexpected too.
    try:
        try:
            _command()(args=argv, prog_name="bwc")
        finally:
            close_stations()
    except BwcError as e:
        _fail(str(e), e.exit_code, e)
    except KeyboardInterrupt:
        _fail(_INTERRUPTED, 130, None)
    except SystemExit as e:
        if e.code == 130:  # typer turns Ctrl-C into a silent exit 130: say what happened
            _fail(_INTERRUPTED, 130, None)
        if _broken_pipe(e):
            raise SystemExit(BROKEN_PIPE) from None
        raise
    except Exception as e:  # the one place a bug becomes a message instead of a traceback
        known = _catalog_failure(e)
        if known is not None:
            _fail(str(known), known.exit_code, e)
        _fail(
            f"internal error: {e.__class__.__name__}: {first_line(e)} "
            "(run with -v for the traceback, and report it)",
            INTERNAL_ERROR,
            e,
        )


def _catalog_failure(e: Exception) -> BwcError | None:
    """A catalog error that reached here unconverted (a read outside ``Station.session``):
    said as what it is (a full disk, a lock, damage), with the catalog's exit code."""
    if "sqlalchemy" not in sys.modules:  # never loaded: cannot be one
        return None
    from sqlalchemy.exc import SQLAlchemyError

    if not isinstance(e, SQLAlchemyError):
        return None
    from bwc.evidence.catalog_errors import catalog_error

    return catalog_error(e)


_INTERRUPTED = "interrupted: what was not committed was discarded; run the command again"


def _broken_pipe(e: SystemExit) -> bool:
    """Whether this is click's exit 1 for a write to a closed pipe (`bwc verify | head`),
    which would read as "verification failed" (exit 1): it becomes BROKEN_PIPE, quietly."""
    cause = e.__context__
    return e.code == 1 and isinstance(cause, OSError) and cause.errno == errno.EPIPE


def entry() -> None:
    """The `bwc` console script: ``main``, then a quick exit. Tearing down the interpreter
    (freeing every module of SQLAlchemy and friends) takes ~0.2 s and does nothing for us:
    by then every file is closed and fsynced, every catalog connection closed, every child
    process reaped. So flush the output and leave, unless a non-daemon thread still runs
    (then exit normally, which waits for it)."""
    try:
        main()
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:
            sys.stderr.write(f"{e.code}\n")
            code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            pass  # the reader stopped reading (`bwc log events | head`): its choice
        except (OSError, ValueError):
            code = code or INTERNAL_ERROR  # the output did not all go out (a full disk?)
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        sys.exit(code)
    os._exit(code)


def _fail(message: str, code: int, exc: BaseException | None) -> None:
    c = _state.get("ctx")
    if c is not None and c.verbose and exc is not None:
        traceback.print_exception(exc)
    err.print(f"[red]bwc: error:[/] {esc_msg(message)}")
    sys.exit(code)


# Command groups that live in their own modules register themselves here.
for _register in (
    cli_store.register,
    cli_audit.register,
    cli_devices.register,
    cli_export.register,
    cli_cases.register,
):
    _register(app)


def _reflow(doc: str) -> str:
    """A docstring as help text: the lines of a paragraph joined (the source wraps them at
    100 columns; Typer 0.29 keeps those breaks after the first paragraph, so an 80-column
    terminal showed every line broken twice), paragraphs and list items kept."""
    out = []
    for para in inspect.cleandoc(doc).split("\n\n"):
        lines = para.split("\n")
        joined = [lines[0]]
        for line in lines[1:]:
            if line.startswith(("-", "*", " ", "\b")) or line[:2].rstrip(".").isdigit():
                joined.append(line)  # a list item or an indented line keeps its break
            else:
                joined[-1] += " " + line
        out.append("\n".join(joined))
    return "\n\n".join(out)


def _reflow_help(t: typer.Typer) -> None:
    # click's plain help, not Typer's rich panels: at 80 columns the panels gave an option's
    # description a column of ~19 characters (one word a line) and cut long option names
    # ("--allow-unverifi…"); usage errors are click's three plain lines, not a box
    t.rich_markup_mode = None
    for c in t.registered_commands:
        doc = c.help or (c.callback.__doc__ if c.callback else None)
        if doc:
            c.help = _reflow(doc)
    for g in t.registered_groups:
        if g.typer_instance is not None:
            _reflow_help(g.typer_instance)


_reflow_help(app)


if __name__ == "__main__":
    main()
