"""What every part of the command line shares: the consoles, the invocation context (home,
actor, verbosity) and JSON output. No domain logic."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from bwc.printable import json_text, printable, printable_message

if TYPE_CHECKING:
    # Commands import the catalog (SQLAlchemy, ~0.4 s) only when they use it: `bwc ingest`
    # starts copying while it loads, and `--help` / `--version` never load it.
    from bwc.config.settings import Settings
    from bwc.evidence.station import Station

__all__ = ["Ctx", "ctx", "err", "esc", "esc_msg", "json_dumps", "os_user", "out", "print_json"]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


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
