"""The live view's pure parts: a dock session's tally from the catalog's grouped job rows, the
rate and ETA, and the table drawn from them (one row per camera, its own counts, 80 columns,
names never read as markup); the log handler that prints through the live view's console."""

from __future__ import annotations

import io
import logging
import os
from datetime import UTC

import pytest
from rich.console import Console, ConsoleOptions, RenderResult

from bwc.cli_live import (
    CameraRow,
    ConsoleLogHandler,
    Drawn,
    format_bytes,
    format_eta,
    render,
    same_terminal,
)
from bwc.ingest.daemon import DaemonState
from bwc.ingest.liveview import RateMeter, SessionTally, eta_seconds, tally_rows
from bwc.printable import LocalTimeFormatter

pytestmark = pytest.mark.unit


def test_tally_counts_each_session_by_state_and_outcome() -> None:
    rows = [
        (1, "released", "ingested", 3, 3000),
        (1, "released", "seen-again", 1, 500),
        (1, "staged", None, 2, 2000),
        (1, "ignored", None, 4, None),
        (2, "committed", "ingested", 1, 100),
        (2, "failed", None, 1, None),  # failed at discovery: no size
        (2, "failed", None, 1, 700),  # failed later: its bytes are not to be taken
        (2, "abandoned", None, 1, 900),  # the camera left before it was copied
        (2, "acknowledged", None, 1, 50),  # a failure accepted with `bwc ack`
        (2, "discovered", None, 1, 900),
    ]
    t = tally_rows(rows)
    assert t[1] == SessionTally(
        found=6,
        new=3,
        seen_again=1,
        failed=0,
        ignored=4,
        in_progress=2,
        bytes_done=3500,
        bytes_total=5500,
    )
    # found, and not safe, as the dock receipt counts them; no bytes left to take
    assert t[2] == SessionTally(
        found=6, new=1, failed=2, in_progress=1, bytes_done=100, bytes_total=1000
    )
    assert t[2].bytes_left == 900


def test_rate_over_a_window_and_eta() -> None:
    m = RateMeter(window=10.0)
    assert m.rate(1) is None
    m.add(1, 100.0, 0)
    assert m.rate(1) is None  # one sample: no rate yet
    m.add(1, 102.0, 2_000)
    assert m.rate(1) == 1_000.0
    for t in range(103, 130):
        m.add(1, float(t), 2_000 + (t - 102) * 500)  # slower now
    assert m.rate(1) == pytest.approx(500.0)  # the old fast start has left the window
    m.keep_only([2])
    assert m.rate(1) is None
    assert eta_seconds(5_000, 500.0) == 10.0
    assert eta_seconds(5_000, None) is None and eta_seconds(5_000, 0.0) is None
    assert eta_seconds(0, None) == 0.0


def test_sizes_and_etas_as_shown() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 1234, 99_949, 999_499, 12_345_678_901)] == [
        "0 B",
        "999 B",
        "1.00 kB",
        "1.23 kB",
        "99.9 kB",
        "999 kB",
        "12.3 GB",
    ]
    busy = SessionTally(found=2, in_progress=1)
    assert format_eta(SessionTally(), None) == "-"
    assert format_eta(SessionTally(found=2, new=2), None) == "done"
    assert format_eta(busy, None) == "…"
    assert [format_eta(busy, s) for s in (0.0, 4.4, 245, 3725, 400_000)] == [
        "<1s",
        "4s",
        "4m05s",
        "1h02m",
        ">99h",
    ]


def _state(**kw: object) -> DaemonState:
    s = DaemonState(started_at="2026-10-15T01:00:00Z", docks=["/dock"])
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def _draw(renderable: object, width: int) -> list[str]:
    c = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    c.print(renderable)
    text = c.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text.rstrip("\n").split("\n")


def test_one_row_per_camera_with_its_own_counts_at_80_columns() -> None:
    rows = [
        CameraRow(
            "/dock/USB-SERIAL-0123456789ABCDEF",
            "DSJ0042",
            SessionTally(
                found=5000,
                new=1234,
                seen_again=12,
                failed=3,
                in_progress=3000,
                bytes_done=12_300_000_000,
                bytes_total=456_000_000_000,
            ),
            3725.0,
        ),
        CameraRow("/dock/[red]cam[b]\x1b[2J", None, SessionTally(found=1, new=1), None),
    ]
    state = _state(
        backlog={"committed": 1, "discovered": 2, "released": 4, "failed": 3, "acknowledged": 2},
        spool_free_mb=512,
        last_error="x" * 200,
    )
    for width in (80, 100):
        lines = _draw(render(state, rows, UTC), width)
        assert all(len(ln) <= width for ln in lines), lines
        assert sum(ln.startswith("┌") for ln in lines) == 1
        first, second = (ln for ln in lines if ln.startswith("│ DSJ") or ln.startswith("│ ?"))
        cells = [c.strip() for c in first.strip("│").split("│")]
        assert cells[0].startswith("DSJ0042 (")
        assert cells[1:] == ["5000", "1234", "12", "3", "12.3 GB / 456 GB", "1h02m"]
        cells = [c.strip() for c in second.strip("│").split("│")]
        assert cells[1:] == ["1", "1", "0", "0", "0 B / 0 B", "done"]
    wide = "\n".join(_draw(render(state, rows, UTC), 100))
    # a name's markup is shown, not obeyed; its control characters escaped
    assert "? ([red]cam[b]\\x1b[2J)" in wide
    footer = "backlog: discovered 2, committed 1 · 3 failed in all (bwc status) · spool 512 MB free"
    assert footer in wide
    assert "last error: xxx" in wide and "…" in wide  # one line, cut


def test_a_narrow_terminal_shows_the_bytes_as_a_share_and_keeps_the_camera() -> None:
    """Below 80 columns "12.3 GB / 456 GB" took what the camera's name needed ("cam…" at
    70 columns): there the bytes are a share, and the device id stays readable."""
    rows = [
        CameraRow(
            "/dock/camA",
            "DSJ0042",
            SessionTally(found=9, new=4, in_progress=5, bytes_done=123, bytes_total=456),
            30.0,
        ),
        CameraRow("/dock/camB", "DSJ0077", SessionTally(found=0), None),
    ]
    lines = _draw(render(_state(), rows, UTC), 70)
    assert all(len(ln) <= 70 for ln in lines), lines
    (a,) = (ln for ln in lines if "(camA)" in ln)
    (b,) = (ln for ln in lines if "DSJ0077" in ln)
    assert [c.strip() for c in a.strip("│").split("│")] == [
        "DSJ0042 (camA)", "9", "4", "0", "0", "26%", "30s",
    ]  # fmt: skip
    assert [c.strip() for c in b.strip("│").split("│")][5:] == ["-", "-"]
    assert "123 B / 456 B" in "\n".join(_draw(render(_state(), rows, UTC), 80))


def test_no_camera_and_an_unavailable_catalog() -> None:
    state = _state(
        catalog_ok=False,
        catalog_down_since="2026-10-15T01:00:00Z",
        catalog_error="database is locked",
        store_ok=False,
    )
    from zoneinfo import ZoneInfo

    text = "\n".join(_draw(render(state, [], ZoneInfo("Asia/Shanghai")), 100))
    assert "no camera docked" in text
    assert "store UNREACHABLE · catalog unavailable since 2026-10-15 09:00:00 +08:00" in text
    assert "starting…" in "\n".join(_draw(render(None, [], UTC), 80))


def test_log_records_print_through_the_console_as_plain_text() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=60, color_system=None, soft_wrap=True)
    handler = ConsoleLogHandler(console)
    handler.setFormatter(LocalTimeFormatter("%(levelname)s %(message)s", UTC))
    rec = logging.LogRecord(
        "bwc.x",
        logging.INFO,
        __file__,
        1,
        "ingested: %s",
        ("[bold]a[/] :smile: \x1b]0;x\x07" + "y" * 80,),
        None,
    )
    handler.emit(rec)
    # one line (the terminal wraps it), markup and emoji codes as written, controls escaped
    assert buf.getvalue() == "INFO ingested: [bold]a[/] :smile: \\x1b]0;x\\x07" + "y" * 80 + "\n"


def test_same_terminal() -> None:
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as a, open(slave, "w", closefd=False) as b:
            assert same_terminal(a, b)
            with open(os.devnull, "w") as null:
                assert not same_terminal(null, b)  # stdout sent elsewhere: left alone
    finally:
        os.close(master)
        os.close(slave)


def test_the_live_area_is_laid_out_once_per_width() -> None:
    """Live draws its area again below every log line: the table's layout is kept."""
    state = _state(backlog={"staged": 1})
    rows = [CameraRow("/dock/camA", "DSJ0042", SessionTally(found=2, in_progress=2), None)]
    calls = []

    class Counted:
        def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
            calls.append(options.max_width)
            yield render(state, rows, UTC)

    drawn = Drawn(Counted())
    for width in (100, 100, 100, 80, 80):
        assert _draw(drawn, width) == _draw(render(state, rows, UTC), width)
    assert calls == [100, 80]
