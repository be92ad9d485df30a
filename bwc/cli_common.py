"""What every part of the command line shares: the consoles, the invocation context (home,
actor, verbosity) and JSON output. No domain logic."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from bwc.errors import InputError, UsageError
from bwc.printable import json_text, printable, printable_message

if TYPE_CHECKING:
    # Commands import the catalog (SQLAlchemy, ~0.4 s) only when they use it: `bwc ingest`
    # starts copying while it loads, and `--help` / `--version` never load it.
    from bwc.config.settings import Settings
    from bwc.evidence.station import Station

__all__ = [
    "Ctx",
    "ctx",
    "err",
    "esc",
    "esc_msg",
    "json_dumps",
    "narrow",
    "os_user",
    "out",
    "parse_local_or_usage",
    "print_json",
    "recorded_bound",
]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def narrow() -> Console:
    """Standard output at 80 columns at most, whatever the terminal, wrapping what is longer
    (tables and lists to read, print or paste in a mail); piped or redirected, the same
    lines without colour."""
    width = min(out.width, 80) if out.is_terminal else 80
    return Console(highlight=False, width=width, force_terminal=out.is_terminal)


@dataclass
class Ctx:
    home: Path
    actor: str
    verbose: bool

    def station(self, settings: Settings | None = None) -> Station:
        """The station at this home; ``settings``: already loaded from it."""
        from bwc.config import secrets
        from bwc.evidence.station import Station

        st = Station.open(
            self.home,
            actor=self.actor,
            passphrase=secrets.passphrase_from_env(),
            settings=settings,
        )
        opened.append(st)
        for hook in station_opened:
            hook()
        return st


_state: dict[str, Ctx] = {}
# Called when a command's station is open, i.e. its code is loaded: the console script
# (bwc.launch) tunes the garbage collector there.
station_opened: list[Callable[[], None]] = []
# Stations opened by this invocation; their catalog connections are closed when the command
# ends (see close_stations), so nothing is left open that could write to the catalog later.
opened: list[Station] = []


def close_stations() -> None:
    while opened:
        opened.pop().engine.dispose()


def ctx() -> Ctx:
    return _state["ctx"]


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def esc(text: str) -> str:
    """Stored or given text (a file name, an officer, a reason) made safe for rich markup
    and for the terminal: control, separator and bidi characters shown as visible escapes
    (``bwc.printable``), then rich's markup characters escaped."""
    return escape(printable(text))


def esc_msg(text: str) -> str:
    """A message bwc composed (an error, a reason, a check's detail), whose values are mostly
    quoted already: controls shown as escapes, backslashes kept, rich markup escaped."""
    return escape(printable_message(text))


def json_dumps(value: Any, indent: int | None = 2) -> str:
    """JSON of ``value`` that keeps every text exact and never puts a raw terminal control
    character on the output (``bwc.printable.json_text``)."""
    return json_text(json.dumps(value, indent=indent, ensure_ascii=False, default=str))


def print_json(value: Any) -> None:
    sys.stdout.write(json_dumps(value) + "\n")


def parse_local_or_usage(text: str, tz: Any, what: str) -> datetime:
    """A local time given on the command line, in UTC; a UsageError naming the option."""
    from bwc.evidence.timefmt import OutOfRange, parse_local

    try:
        return parse_local(text, tz)
    except OutOfRange as e:
        raise UsageError(f"{what} {text!r}: {e}") from e
    except ValueError as e:
        raise UsageError(f"{what} {text!r} is not an ISO 8601 time") from e


def recorded_bound(text: str | None, tz: tzinfo, what: str, *, end_of_day: bool) -> datetime | None:
    """A --recorded-from/--recorded-to value in UTC (`bwc list`, `bwc export`); a date alone
    is its local midnight, or for an end, the next day's (so `--recorded-to 2026-10-15`
    includes the 15th)."""
    from datetime import date, time, timedelta

    from bwc.evidence.timefmt import ensure_utc

    if text is None:
        return None
    try:
        t = parse_local_or_usage(text, tz, what)
    except UsageError as e:
        raise UsageError(
            e.message, hint="give a date (2026-10-15) or a local date-time (2026-10-15T09:30)"
        ) from e
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return t
    if not end_of_day:
        return t
    # the next local midnight, not t + 24 h: a day with a daylight-saving change is not 24 h
    try:
        return ensure_utc(datetime.combine(day + timedelta(days=1), time(), tzinfo=tz))
    except (OverflowError, ValueError) as e:
        raise UsageError(f"{what} {text!r} is out of range") from e


def emit(data: bytes, out_file: Path | None) -> None:
    """The bytes as they are (a page, a spreadsheet, the encoding chosen), to stdout or
    atomically to a file."""
    from bwc.fsutil import write_atomic

    if out_file is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        write_atomic(out_file, data)
    except OSError as e:
        raise InputError(f"cannot write {out_file}: {e.strerror or e}") from e
    err.print(f"wrote {esc(str(out_file))}")


def emit_pdf(html: bytes, out_file: Path | None, what: str) -> None:
    """The HTML printed to PDF by headless Chromium (the same page as --format html, so the
    two never disagree), written to ``out_file`` whole or not at all."""
    import tempfile

    from bwc.evidence.bundle.pdf import print_pdf

    if out_file is None:  # the command refused it already
        raise UsageError("--format pdf needs --out FILE.pdf")
    folder = out_file.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {out_file}: {folder} is not a writable folder")
    with tempfile.TemporaryDirectory(prefix="bwc-pdf-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_bytes(html)
        print_pdf(page, out_file, what=what, fallback="use --format html and print it")
    err.print(f"wrote {esc(str(out_file))}")
