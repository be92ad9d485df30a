"""`bwc daemon`, `bwc status`, `bwc devices …` and `bwc attribute`: the docking station."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from datetime import datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bwc.cli_common import (
    ctx,
    emit,
    emit_pdf,
    err,
    esc,
    esc_msg,
    out,
    parse_local_or_usage,
    print_json,
)
from bwc.cli_imports import import_assignments
from bwc.errors import InputError, UsageError
from bwc.evidence.timefmt import (
    format_local,
    format_utc,
    parse_offset_ms,
    parse_utc,
    zone_label,
)
from bwc.printable import LocalTimeFormatter, json_text

if TYPE_CHECKING:
    from rich.console import Console

    from bwc.evidence.station import Station
    from bwc.ingest.receipt import Lang, Receipt
    from bwc.ingest.receipts import Logged

devices_app = typer.Typer(
    help="Devices: the checkout ledger and clock checks.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    # The checkout ledger is one ledger: `bwc devices import` is `bwc audit import assignments`.
    devices_app.command(
        "import", help="Import the checkout ledger (CSV/JSON): officer_id,device_id,start,end."
    )(import_assignments)
    app.command("daemon")(daemon)
    app.command("status")(status)
    app.command("retry")(retry)
    app.command("ack")(ack)
    app.command("attribute")(attribute)
    app.command("receipt")(receipt)
    app.add_typer(devices_app, name="devices")


# ---------------------------------------------------------------------------- daemon


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json_text(json.dumps(data, ensure_ascii=False))


def _configure_daemon_logging(
    fmt: str, verbose: bool, home: Any, console: Console | None = None
) -> None:
    """Log records to stderr; with a live view, through its ``console``, which puts each
    line above the live area (written past it, a line left a stale copy of the table)."""
    root = logging.getLogger("bwc")
    root.handlers.clear()
    handler: logging.Handler
    if console is not None:
        from bwc.cli_live import ConsoleLogHandler

        handler = ConsoleLogHandler(console)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        # messages carry file names, officer and device ids: escaped, so one record is one
        # line and a name can neither forge a record nor drive the terminal
        handler.setFormatter(
            LocalTimeFormatter("%(asctime)s %(levelname)s %(message)s", _configured_tz(home))
        )
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def daemon(
    dock: Annotated[
        list[str] | None,
        typer.Option(
            "--dock",
            help="A dock root (cameras appear as mounted sub-folders) or a camera mount. "
            "Repeatable; added to `[daemon] docks` in bwc.toml.",
        ),
    ] = None,
    log_format: Annotated[
        str, typer.Option("--log-format", help="Log lines as `text` or `json`.")
    ] = "text",
    live: Annotated[
        bool | None,
        typer.Option(
            "--live/--no-live",
            help="Show the log above a live table of the docked cameras and their counts. "
            "Default: when standard error is a terminal.",
            # the default is decided when the daemon starts, not when this module loads (where
            # typer printed the build-time answer, "[default: no-live]", beside the rule)
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the docking-station daemon: take every file off docked cameras, verified, signed
    and logged; resume after a crash; stop cleanly on SIGTERM/SIGINT."""
    from bwc.ingest.daemon import Daemon
    from bwc.ingest.probe import FFprobe

    if log_format not in ("text", "json"):
        raise UsageError(f"--log-format must be text or json, not {log_format!r}")
    c = ctx()
    if live is None:
        live = sys.stderr.isatty()
    _configure_daemon_logging(log_format, c.verbose, c.home, err if live else None)
    station = c.station()
    docks = list(dict.fromkeys([*station.settings.daemon.docks, *(dock or [])]))
    if not docks:
        raise UsageError("no docks to watch", hint="pass --dock DIR or set [daemon] docks")
    for d in docks:
        if not os.path.isdir(d):
            raise UsageError(f"dock {d} is not a folder", hint="create it or fix the path")
    if not FFprobe.available():
        logging.getLogger("bwc").warning("ffprobe not found: media summaries will be missing")

    view = None
    if live:
        from bwc.cli_live import LiveView

        view = LiveView(err, station)
    runner = Daemon(station, FFprobe(), docks, on_update=view.show if view else None)

    def stop(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("bwc").info("signal %d: finishing the current steps", signum)
        runner.stop.set()
        runner.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if view is not None:
        with view:
            runner.run()
    else:
        runner.run()


# ---------------------------------------------------------------------------- status


_FAILED_SHOWN = 20  # in the text; --json lists every failed file


def status(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Docks, dock sessions, backlog per state, spool use, last error, store, clock, and
    checkpoints awaiting a timestamp."""
    from bwc.errors import CatalogError
    from bwc.evidence.db import unavailable
    from bwc.ingest.daemon import read_status
    from bwc.ingest.status import station_status

    c = ctx()
    try:
        station = c.station()
    except CatalogError as e:
        # The catalog cannot even be opened (PostgreSQL down): still say what the daemon
        # sees, from its heartbeat, then fail with the catalog's exit code.
        hb = read_status(c.home) if unavailable(e) else None
        if hb and not hb.get("stopped") and hb.get("catalog_ok") is False:
            since = local_text(hb.get("catalog_down_since"), _configured_tz(c.home))
            err.print(
                f"daemon: catalog unavailable since {esc(since)} "
                f"({esc_msg(str(hb.get('catalog_error')))}), retrying; files wait in the spool"
            )
        raise
    st = station_status(station)
    if as_json:
        print_json(st.as_json())
        return
    tz = station.settings.tz
    out.print(
        f"station {esc(st.station_id)}: daemon "
        + ("[green]running[/]" if st.daemon_running else "[yellow]not running[/]")
    )
    out.print(f"docks: {esc(', '.join(st.docks) or '-')}")
    # A stopped (or crashed) daemon leaves its sessions open: the camera may have left since,
    # and only the daemon, started again, closes them. Said so, not shown as docked now.
    docked = "docked" if st.daemon_running else "docked when the daemon stopped"
    for x in st.sessions:
        out.print(
            f"  {docked}: {esc(x['mount'])} device {esc(x['device_id'] or '?')} "
            f"session {x['session']} since {esc(local_text(x['first_seen'], tz))}"
        )
    if st.sessions and not st.daemon_running:
        out.print("  (a session is closed when the daemon, started again, finds its camera gone)")
    for x in st.not_served:
        out.print(f"  [red]NOT TAKEN[/]: {esc(x['mount'])}: {esc_msg(x['why'])}")
    backlog = ", ".join(f"{k} {v}" for k, v in sorted(st.backlog.items()))
    out.print("backlog: " + (backlog or "none"))
    out.print(f"spool: {st.spool_used_mb} MB used, {st.spool_free_mb} MB free")
    if st.spool_full:
        out.print("[red bold]SPOOL FULL: not taking new files until space is freed[/]")
    store = st.store
    out.print(
        "[green]store reachable[/]" if store["ok"] else f"[red]store: {esc_msg(store['detail'])}[/]"
    )
    cat = st.catalog
    if not cat["ok"]:
        since = f" since {esc(local_text(cat['since'], tz))}" if cat.get("since") else ""
        out.print(
            f"[red]catalog unavailable{since} ({esc_msg(str(cat.get('detail')))})"
            + (", retrying; files wait in the spool[/]" if st.daemon_running else "[/]")
        )
    if st.clock_synchronized is False:
        out.print("[red]clock NOT synchronized (NTP): ingest times may be wrong[/]")
    elif st.clock_synchronized is None:
        out.print("[yellow]clock synchronization unknown (no timedatectl)[/]")
    if st.timestamps_pending:
        out.print(
            f"[yellow]{st.timestamps_pending} checkpoints await an RFC 3161 timestamp "
            "(the TSA did not answer; retried by the daemon, now by `bwc log timestamp`)[/]"
        )
    elif st.timestamps_pending == 0:
        out.print("timestamps: every checkpoint timestamped")
    if st.last_error:
        out.print(f"last error: {esc_msg(str(st.last_error))}")
    for f in st.failed[:_FAILED_SHOWN]:
        out.print(
            f"  [red]failed[/] {esc(f['path'])} (job {f['job']}) at "
            f"{esc(local_text(f['at'], tz))}: {esc_msg(str(f['reason']))}"
        )
    if len(st.failed) > _FAILED_SHOWN:
        out.print(f"  … and {len(st.failed) - _FAILED_SHOWN} more failed (--json lists all)")
    if st.failed:
        out.print("  (`bwc retry FILE|--all` to copy again, `bwc ack FILE --reason` to accept)")
    if st.acknowledged_count:
        out.print(f"acknowledged failures: {st.acknowledged_count}")
    for x in st.overdue:
        # two lines: a device id, an officer id and a time with its offset pass 80 columns
        out.print(
            f"[red]overdue[/]: camera {esc(x['device_id'])} (officer {esc(x['officer_id'])}) "
            f"not docked for {x['hours']:.0f} h"
        )
        what = "its checkout" if x["since_checkout"] else "its last dock"
        out.print(f"  since {what} {esc(local_text(x['since'], tz))}")


# ---------------------------------------------------------------------------- retry, ack

_FILE_HELP = "A failed file as `bwc status` shows it (its path on the camera), or its job id."


def retry(
    files: Annotated[list[str] | None, typer.Argument(metavar="FILE", help=_FILE_HELP)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every failed file still docked.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Copy failed files from the camera again: each goes back to the daemon's queue (taken
    at its next rescan, or when it starts) and is listed as failed again if it fails again.

    The camera must still be docked and the file on it (a camera docked again has its files
    taken anew). Each retry is an `ingest-retried` custody event. A named file that cannot be
    retried is an error and nothing is changed; with --all, those that cannot are listed and
    the exit code is 6."""
    from bwc.ingest.failures import retry as retry_jobs

    if bool(files) == all_:
        raise UsageError("name the failed files to retry, or pass --all (not both)")
    done = retry_jobs(ctx().station(), files or [], all_=all_)
    if as_json:
        print_json({"files": [d.__dict__ for d in done]})
    else:
        for d in done:
            mark = "[green]retry[/]" if d.ok else "[red]not retried[/]"
            out.print(f"{mark} {esc(d.path)} (job {d.job}): {esc_msg(d.detail)}")
        if not done:
            out.print("no failed files")
    missed = [d for d in done if not d.ok]
    if missed:
        raise InputError(f"{len(missed)} of {len(done)} failed files could not be retried")


def ack(
    file: Annotated[str, typer.Argument(metavar="FILE", help=_FILE_HELP)],
    reason: Annotated[
        str,
        typer.Option("--reason", help="Why the failure is accepted (logged). Required."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Acknowledge a failed file: no longer listed as failed by `bwc status` (counted as
    acknowledged; `--json` lists them), the record kept. A `failure-acknowledged` custody
    event with the actor and the reason."""
    from bwc.evidence.cases import require_reason
    from bwc.ingest.failures import acknowledge

    done = acknowledge(ctx().station(), file, require_reason(reason))
    if as_json:
        print_json(done.__dict__)
    else:
        out.print(f"acknowledged {esc(done.path)} (job {done.job})")


def local_text(value: Any, tz: tzinfo) -> str:
    """A UTC time that status data carries as text (JSON's form), shown in local time; what
    is not such a time (a damaged heartbeat file) is shown as it is."""
    try:
        return format_local(parse_utc(str(value)), tz)
    except ValueError:
        return str(value)


def _configured_tz(home: Any) -> tzinfo:
    """The configured zone, when the settings can be read at all; else UTC (said as +00:00)."""
    from datetime import UTC

    from bwc.config.settings import load_settings
    from bwc.errors import BwcError

    try:
        return load_settings(home).tz
    except BwcError:
        return UTC


# ---------------------------------------------------------------------------- devices


@devices_app.command("assign")
def devices_assign(
    officer: Annotated[str, typer.Argument(help="Officer id.")],
    device: Annotated[str, typer.Argument(help="Device (camera) id.")],
    start: Annotated[
        str, typer.Option("--from", help="Checked out at (ISO 8601; local time if no offset).")
    ],
    end: Annotated[
        str | None, typer.Option("--to", help="Returned at (empty: still held).")
    ] = None,
) -> None:
    """Record that OFFICER held DEVICE from --from to --to (the checkout ledger)."""
    from bwc.evidence.devices import assign

    station = ctx().station()
    t0 = parse_local_or_usage(start, station.settings.tz, "--from")
    t1 = parse_local_or_usage(end, station.settings.tz, "--to") if end else None
    assign(station, officer, device, t0, t1)
    tz = station.settings.tz
    out.print(
        f"{esc(officer)} holds {esc(device)} from {format_local(t0, tz)}"
        + (f" to {format_local(t1, tz)}" if t1 else " (still held)")
    )


@devices_app.command("list")
def devices_list(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The checkout ledger and clock checks."""
    from rich.table import Table

    from bwc.evidence.devices import ledger

    station = ctx().station()
    tz = station.settings.tz
    found = ledger(station, device)
    rows, clocks = found.assignments, found.clocks
    data: dict[str, list[dict[str, Any]]] = {
        "assignments": [
            {
                "officer_id": a.officer_id,
                "device_id": a.device_id,
                "start": format_utc(a.start),
                "end": format_utc(a.end) if a.end else None,
            }
            for a in rows
        ],
        "clock_checks": [
            {
                "device_id": k.device_id,
                "offset_ms": k.offset_ms,
                "measured_at": format_utc(k.measured_at),
                "recorded_by": k.recorded_by,
            }
            for k in clocks
        ],
    }
    if as_json:
        print_json(data)
        return
    t = Table("device", "officer", "from", "to")
    for a in rows:
        t.add_row(
            esc(a.device_id),
            esc(a.officer_id),
            format_local(a.start, tz),
            format_local(a.end, tz) if a.end else "(held)",
        )
    out.print(t)
    for k in clocks:
        out.print(
            f"clock {esc(k.device_id)}: {k.offset_ms:+d} ms at {format_local(k.measured_at, tz)}"
        )
    out.print(f"times in {zone_label(tz, station.clock.now())}")


@devices_app.command("clock")
def devices_clock(
    device: Annotated[str, typer.Argument(help="Device (camera) id.")],
    offset: Annotated[
        str,
        typer.Option(help="Device time minus true time, e.g. +12s (device 12 s ahead), -1m30s."),
    ],
    at: Annotated[
        str | None, typer.Option(help="When it was measured (ISO 8601; default now).")
    ] = None,
) -> None:
    """Record a measured device clock offset (the audit corrects recorded times with it)."""
    from bwc.evidence.devices import record_clock

    station = ctx().station()
    try:
        ms = parse_offset_ms(offset)
    except ValueError as e:
        raise UsageError(str(e)) from e
    when = parse_local_or_usage(at, station.settings.tz, "--at") if at else station.clock.now()
    record_clock(station, device, ms, when)
    out.print(
        f"{esc(device)}: clock offset {ms:+d} ms measured at "
        f"{format_local(when, station.settings.tz)}"
    )


# ---------------------------------------------------------------------------- attribute


def attribute(
    item_id: Annotated[
        str, typer.Argument(metavar="ID", help="sha256 or a unique 8+ digit prefix.")
    ],
    officer: Annotated[str, typer.Option(help="The officer the footage belongs to.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the custody log).")],
) -> None:
    """Attribute an item to an officer (a custody event; the signed manifest is unchanged)."""
    from bwc.evidence.attribution import attribute as record

    done = record(ctx().station(), item_id, officer, reason)
    out.print(f"{done.sha256[:16]} attributed to {esc(officer)}")


# ---------------------------------------------------------------------------- receipt


class ReceiptFormat(StrEnum):
    text = "text"
    html = "html"
    pdf = "pdf"


class ReceiptLang(StrEnum):
    en = "en"
    zh = "zh"


def receipt(
    session: Annotated[
        int | None,
        typer.Argument(
            metavar="SESSION",
            help="Dock session id (shown by --list, `bwc status` and the daemon's `docked` "
            "log line).",
        ),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List this station's latest dock sessions.")
    ] = False,
    limit: Annotated[int, typer.Option(help="How many sessions --list shows.", min=1)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON (times in UTC).")] = False,
    fmt: Annotated[
        ReceiptFormat,
        typer.Option("--format", help="text, or a printable page: html or pdf (needs --out)."),
    ] = ReceiptFormat.text,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the html or pdf page to this file.")
    ] = None,
    lang: Annotated[
        ReceiptLang,
        typer.Option(
            "--lang",
            help="Words of the receipt: zh or en (zh as the bundle's report and the audit).",
        ),
    ] = ReceiptLang.zh,
) -> None:
    """A dock receipt (交接单): what was taken off a docked camera and whether its card may
    be cleared. Recomputed from the catalog now, and checked against the receipt the daemon
    logged (when all its files were in, and when it was undocked); differences are said."""
    from bwc.ingest import receipts
    from bwc.ingest.receipt import differences

    if list_:
        if session is not None:
            raise UsageError("give a SESSION or --list, not both")
        _receipt_list(ctx().station(), limit, as_json)
        return
    if session is None:
        raise UsageError("which dock session?", hint="give its id; `bwc receipt --list` shows them")
    if fmt is ReceiptFormat.text and out_file is not None:
        raise UsageError("--out needs --format html or pdf")
    if fmt is ReceiptFormat.pdf and out_file is None:
        raise UsageError("--format pdf needs --out FILE.pdf (it is not text)")
    if as_json and fmt is not ReceiptFormat.text:
        raise UsageError("--json prints the receipt as data; leave out --format")
    station = ctx().station()
    shown = receipts.show(station, session)
    now = shown.now.to_json()
    words: Lang = lang.value
    diff = differences(shown.logged.details, now, words) if shown.logged else []
    tz = station.settings.tz
    if as_json:
        logged = shown.logged
        print_json(
            {
                "receipt": now,
                "logged": None
                if logged is None
                else {
                    "kind": logged.kind,
                    "index": logged.idx,
                    "at": format_utc(logged.at),
                    "actor": logged.actor,
                    "in_checkpoint_of_size": logged.proven_in,
                    "receipt": logged.details,
                },
                "differences": diff,
            }
        )
        return
    if fmt is ReceiptFormat.text:
        _print_receipt(shown.now, tz, words, shown.logged, diff)
        return
    from bwc.ingest.receipt_html import render

    page = render(
        shown.now,
        tz,
        words,
        logged=_logged_text(shown.logged, tz, words) if shown.logged else None,
        differences=diff,
    ).encode("utf-8")
    if fmt is ReceiptFormat.pdf:
        emit_pdf(page, out_file, "the receipt")
    else:
        emit(page, out_file)


def _logged_text(logged: Logged, tz: tzinfo, lang: Lang) -> str:
    from bwc.ingest.receipt import logged_text

    at = format_local(logged.at, tz)
    return logged_text(logged.kind, at, logged.actor, logged.idx, logged.proven_in, lang)


def _print_receipt(
    r: Receipt, tz: tzinfo, lang: Lang, logged: Logged | None, diff: list[str]
) -> None:
    from rich.table import Table

    from bwc.ingest.receipt import fields, word

    out.print(f"[bold]{word('title', lang)}[/] · {word('session', lang)} {r.session}")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="dim")
    grid.add_column(overflow="fold")
    pairs = fields(r, tz, lang)
    for label, value in pairs[:-1]:
        grid.add_row(esc(label), esc(value))
    out.print(grid)
    colour = "green" if r.safe else "red"
    head = r.verdict(lang)
    if r.not_safe:
        head = head.split("：" if lang == "zh" else ":", 1)[0]
    # these lines are wrapped at the terminal's width (the console's default is not to)
    out.print(f"[bold {colour}]{esc(head)}[/]", soft_wrap=False)
    for x in r.not_safe:
        out.print(f"  - {esc(x.path)}: {esc_msg(x.why)}", soft_wrap=False)
    colon = "：" if lang == "zh" else ": "
    if logged is None:
        out.print(f"{word('logged', lang)}{colon}{word('not_logged', lang)}", soft_wrap=False)
        return
    text = _logged_text(logged, tz, lang)
    out.print(f"{word('logged', lang)}{colon}{esc_msg(text)}", soft_wrap=False)
    if diff:
        out.print(f"[yellow]{word('differs', lang)}[/]", soft_wrap=False)
        for d in diff:
            out.print(f"  {esc_msg(d)}", soft_wrap=False)
    else:
        out.print(word("matches", lang), soft_wrap=False)


def _receipt_list(station: Station, limit: int, as_json: bool) -> None:
    from rich.table import Table

    from bwc.evidence.timefmt import common_offset
    from bwc.ingest.receipt import short_state
    from bwc.ingest.receipts import recent

    rows = recent(station, limit)
    if as_json:
        print_json(
            [
                {
                    "session": r.id,
                    "mount": r.mount,
                    "device_id": r.device_id,
                    "usb_serial": r.usb_serial,
                    "docked_at": format_utc(r.docked_at),
                    "undocked_at": format_utc(r.undocked_at) if r.undocked_at else None,
                    "receipt_logged": r.receipt_idx is not None,
                    "files_found": r.tally.found,
                    "committed": r.tally.committed,
                    "in_progress": r.tally.in_progress,
                    "safe": r.tally.found > 0 and r.tally.committed == r.tally.found,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        out.print("no dock sessions at this station")
        return
    tz = station.settings.tz
    times = [t for r in rows for t in (r.docked_at, r.undocked_at) if t is not None]
    offset = common_offset(times, tz)
    suffix = f" ({offset})" if offset else ""
    t = Table("session", "device", f"docked{suffix}", f"undocked{suffix}", "files")

    def when(x: datetime | None) -> str:
        if x is None:
            return "(docked)"
        return format_local(x, tz, seconds=False, offset=offset is None)

    for r in rows:
        t.add_row(
            str(r.id),
            esc(r.device_id or "?"),
            when(r.docked_at),
            when(r.undocked_at),
            short_state(r.tally),
        )
    out.print(t)
    out.print(f"times in {zone_label(tz, station.clock.now())}; `bwc receipt SESSION` shows one")
