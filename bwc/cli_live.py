"""`bwc daemon --live`: log lines above, one table of the docked cameras redrawn below.

Everything goes through the one rich Console the ``Live`` area is drawn on: log records by
:class:`ConsoleLogHandler` (a plain stream handler wrote past the live area, leaving a stale
copy of the table behind each line), and Python-level writes to stdout/stderr by ``Live``'s
redirection. The table has one row per open dock session with that session's own counts
from the catalog (bwc.ingest.liveview: the rows `bwc status` counts), refreshed about once a
second by one thread; a footer says how the station is (backlog, spool, store, catalog, last
error). :func:`render` is pure: values in, a renderable out.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.control import Control
from rich.live import Live
from rich.live_render import LiveRender
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from bwc.errors import BwcError
from bwc.evidence.db import unavailable
from bwc.evidence.timefmt import format_local, parse_utc
from bwc.ingest.jobs import ACTIVE_STATES, END_STATES
from bwc.ingest.liveview import RateMeter, SessionTally, eta_seconds, session_tallies
from bwc.printable import printable, printable_message

if TYPE_CHECKING:
    from bwc.evidence.station import Station
    from bwc.ingest.daemon import DaemonState

logger = logging.getLogger(__name__)

# jobs that are done with (the pipeline's end states, an acknowledged failure too): not
# shown in the backlog of work still to do
_DONE_STATES = END_STATES


# ---------------------------------------------------------------------------- pure rendering


@dataclass(frozen=True)
class CameraRow:
    """One open dock session as the table shows it."""

    mount: str
    device_id: str | None
    tally: SessionTally
    eta: float | None  # seconds; None: not known yet


def format_bytes(n: int) -> str:
    """Decimal units, three significant digits: ``999 B``, ``1.23 kB``, ``45.6 MB``."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.5 or unit == "TB":
            break
    if value < 9.995:
        return f"{value:.2f} {unit}"
    if value < 99.95:
        return f"{value:.1f} {unit}"
    return f"{value:.0f} {unit}"


def format_eta(tally: SessionTally, eta: float | None) -> str:
    if tally.found == 0:
        return "-"  # nothing found yet
    if tally.in_progress == 0:
        return "done"
    if eta is None:
        return "…"  # no rate yet
    s = int(eta + 0.5)
    if s < 1:
        return "<1s"  # the last bytes (or files of none) still being taken
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 100 * 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return ">99h"


def camera_label(mount: str, device_id: str | None) -> Text:
    """The device id and the mount's folder name (the USB serial, by the udev rule): the
    whole path was logged when it docked. Plain text: a name is never read as markup."""
    name = os.path.basename(mount.rstrip("/")) or mount
    return Text(f"{printable(device_id or '?')} ({printable(name)})")


def format_share(done: int, total: int) -> str:
    """Bytes taken as a share of the bytes to take, for a narrow terminal: ``42%``."""
    if total <= 0:
        return "-"
    return f"{done * 100 // total}%"


# below this many columns the bytes are a share ("42%"): "1.23 GB / 45.6 GB" left the
# camera's name a few characters ("cam…") at 70 columns
_FULL_BYTES_WIDTH = 80


def camera_table(rows: Sequence[CameraRow], width: int = _FULL_BYTES_WIDTH) -> Table:
    # expanded: the camera column takes what the counts leave, so the table fits any width
    t = Table(box=box.SQUARE, expand=True)
    # the counts keep their width at 80 columns; the camera's name gives way (an ellipsis)
    t.add_column("camera", overflow="ellipsis", no_wrap=True, ratio=1)
    for name, w in (("found", 5), ("new", 5), ("seen\nagain", 5), ("failed", 6)):
        t.add_column(name, justify="right", no_wrap=True, min_width=w)
    full = width >= _FULL_BYTES_WIDTH
    bytes_width = len("1.23 GB / 45.6 GB") if full else len("100%")
    t.add_column("bytes", justify="right", no_wrap=True, min_width=bytes_width)
    t.add_column("ETA", justify="right", no_wrap=True, min_width=len("59m59s"))
    if not rows:
        t.add_row(Text("no camera docked"), "", "", "", "", "", "")
    for r in rows:
        k = r.tally
        failed = Text(str(k.failed), style="bold red" if k.failed else "")
        t.add_row(
            camera_label(r.mount, r.device_id),
            str(k.found),
            str(k.new),
            str(k.seen_again),
            failed,
            f"{format_bytes(k.bytes_done)} / {format_bytes(k.bytes_total)}"
            if full
            else format_share(k.bytes_done, k.bytes_total),
            format_eta(k, r.eta),
        )
    return t


def _line(text: str, style: str = "") -> Text:
    # one line each, cut with an ellipsis: the area's height never depends on a message
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def station_lines(state: DaemonState, tz: tzinfo) -> list[Text]:
    """The footer: what is true of the whole station, as `bwc status` says it."""
    # in the pipeline's order (a state this view does not know of last, not dropped)
    order = {k: i for i, k in enumerate(ACTIVE_STATES)}
    busy = [
        f"{k} {v}"
        for k, v in sorted(state.backlog.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))
        if k not in _DONE_STATES
    ]
    first = "backlog: " + (", ".join(busy) or "idle")
    failed = state.backlog.get("failed", 0)
    if failed:
        first += f" · {failed} failed in all (bwc status)"
    first += f" · spool {state.spool_free_mb} MB free"
    lines = [_line(first)]
    if state.spool_full:
        lines.append(_line("SPOOL FULL: not taking new files until space is freed", "bold red"))
    store = "store reachable" if state.store_ok else "store UNREACHABLE"
    if state.catalog_ok:
        cat, style = "catalog ok", "" if state.store_ok else "red"
    else:
        since = _local(state.catalog_down_since, tz)
        cat = f"catalog unavailable since {since} ({state.catalog_error}), retrying"
        style = "red"
    lines.append(_line(printable_message(f"{store} · {cat}"), style))
    for x in state.not_served:
        lines.append(_line(printable_message(f"NOT TAKEN {x['mount']}: {x['why']}"), "red"))
    if state.last_error:
        lines.append(_line("last error: " + printable_message(state.last_error), "yellow"))
    return lines


def _local(value: str | None, tz: tzinfo) -> str:
    try:
        return format_local(parse_utc(str(value)), tz)
    except ValueError:
        return str(value)


class CameraTable:
    """The cameras' table laid out for the width it is drawn at."""

    def __init__(self, rows: Sequence[CameraRow]) -> None:
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield camera_table(self.rows, options.max_width)


def render(state: DaemonState | None, rows: Sequence[CameraRow], tz: tzinfo) -> RenderableType:
    """The live area: the cameras' table, then the station's lines."""
    if state is None:
        return Group(CameraTable(rows), _line("starting…"))
    return Group(CameraTable(rows), *station_lines(state, tz))


class Drawn:
    """A renderable laid out once per width. Live draws its area again below every log line
    printed above it, and laying out a table costs ~1.5 ms of Python (the GIL the workers
    copying files need): with one log line a file that was a cost per file, now it is a
    copy of the lines."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable
        self._lines: tuple[int, list[list[Segment]]] | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        drawn = self._lines
        if drawn is None or drawn[0] != options.max_width:
            lines = console.render_lines(self.renderable, options.update(height=None), pad=False)
            drawn = self._lines = (options.max_width, lines)
        for line in drawn[1]:
            yield from line
            yield Segment.line()


# ---------------------------------------------------------------------------- the terminal


class ReflowingRender(LiveRender):
    """rich's live area, erased whole after the terminal narrows. A terminal that reflows
    its lines on a resize (tmux, VTE, most of them today) wraps each line of the last
    drawing onto more rows; rich moves up only as many lines as it drew and left the rest
    of the old table on the screen. This one keeps each drawn line's width and, at the
    terminal's width now, erases the rows they take up. A terminal that does not reflow
    (xterm, the Linux console) may lose as many log lines on the screen (not in the log)."""

    def __init__(self, renderable: RenderableType, console: Console) -> None:
        super().__init__(renderable)
        self._console = console
        self._widths: list[int] = []

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths, width = [], 0
        for seg in super().__rich_console__(console, options):
            if isinstance(seg, Segment):  # LiveRender yields segments only
                if seg.text == "\n" and not seg.control:
                    widths.append(width)
                    width = 0
                else:
                    width += seg.cell_length
            yield seg
        self._widths = [*widths, width]

    def _reflowed(self) -> None:
        if self._shape is None:
            return
        now = max(1, self._console.width)
        rows = sum(max(1, -(-w // now)) for w in self._widths)
        if rows > self._shape[1]:
            self._shape = (self._shape[0], rows)

    def position_cursor(self) -> Control:
        self._reflowed()
        return super().position_cursor()

    def restore_cursor(self) -> Control:
        self._reflowed()
        return super().restore_cursor()


class ConsoleLogHandler(logging.Handler):
    """Prints each record through the Console the live area is drawn on, so it lands above
    the area. The formatted (already escaped) line is printed as plain text: a file name is
    never read as rich markup, and long lines are left to the terminal to wrap."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(Text(self.format(record)), soft_wrap=True)
        except Exception:  # logging's contract: a failing handler never raises
            self.handleError(record)


def same_terminal(a: TextIO, b: TextIO) -> bool:
    """Whether two streams are one terminal (stdout and stderr of a shell's command): then
    writes to stdout are put above the live area too. Stdout sent elsewhere (a file, a pipe)
    is left alone: redirecting it would move its output onto the terminal."""
    try:
        return (
            a.isatty()
            and b.isatty()
            and os.path.samestat(os.fstat(a.fileno()), os.fstat(b.fileno()))
        )
    except (OSError, ValueError, AttributeError):
        return False


class LiveView:
    """The live area of a running daemon: the daemon's heartbeat hands it its state
    (:meth:`show`); one thread asks the catalog for the open sessions' counts every
    ``interval`` seconds and redraws."""

    def __init__(
        self,
        console: Console,
        station: Station,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.station = station
        self.tz = station.settings.tz
        self.interval = interval
        self.clock = clock
        self.meter = RateMeter()
        self._state: DaemonState | None = None
        self._tallies: dict[int, SessionTally] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bwc-live", daemon=True)
        self._last_problem: str | None = None
        self.live = Live(
            Drawn(render(None, [], self.tz)),
            console=console,
            auto_refresh=False,  # redrawn by this view's thread, and by each log line
            transient=True,  # on exit the log stays, the table goes
            redirect_stdout=same_terminal(sys.stdout, sys.stderr),
            redirect_stderr=True,
        )
        # rich's Live keeps its area in this attribute (rich 13–15, pinned in pyproject);
        # the tmux test resizes the pane and fails if a rich release changes it
        self.live._live_render = ReflowingRender(self.live._live_render.renderable, console)

    def show(self, state: DaemonState) -> None:
        """The daemon's heartbeat: the latest state (drawn by the view's thread)."""
        self._state = state

    def __enter__(self) -> LiveView:
        self.live.start(refresh=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.live.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as e:  # the view never stops the daemon; said once
                why = f"{e.__class__.__name__}: {e}"
                if why != self._last_problem:
                    logger.exception("live view: cannot redraw")
                self._last_problem = why
            self._stop.wait(self.interval)

    def refresh(self) -> None:
        state = self._state
        sessions = list(state.sessions) if state is not None else []
        ids = [int(x["session"]) for x in sessions]
        try:
            with self.station.session(snapshot=True) as s:
                self._tallies = session_tallies(s, ids)
        except BwcError as e:
            if unavailable(e) is None:
                raise
            # the catalog is away (the footer says so): the counts as last seen
        now = self.clock()
        self.meter.keep_only(ids)
        rows = []
        for x in sessions:
            sid = int(x["session"])
            tally = self._tallies.get(sid, SessionTally())
            self.meter.add(sid, now, tally.bytes_done)
            eta = eta_seconds(tally.bytes_left, self.meter.rate(sid))
            rows.append(CameraRow(str(x["mount"]), x.get("device_id"), tally, eta))
        self.live.update(Drawn(render(state, rows, self.tz)), refresh=True)
