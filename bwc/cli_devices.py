"""`bwc daemon`, `bwc status`, `bwc devices …` and `bwc attribute`: the docking station."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from datetime import datetime, tzinfo
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bwc.cli_common import ctx, err, esc, esc_msg, out, parse_local_or_usage, print_json
from bwc.cli_imports import import_assignments
from bwc.errors import UsageError
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
    app.command("attribute")(attribute)
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
            "Repeatable; added to `\\[daemon] docks` in bwc.toml.",
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
    for x in st.sessions:
        out.print(
            f"  docked: {esc(x['mount'])} device {esc(x['device_id'] or '?')} "
            f"since {esc(local_text(x['first_seen'], tz))}"
        )
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
    for f in st.failed:
        out.print(
            f"  [red]failed[/] {esc(f['path'])} at {esc(local_text(f['at'], tz))}: "
            f"{esc_msg(str(f['reason']))}"
        )


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
