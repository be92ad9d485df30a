"""Issue 15, point 1: `bwc daemon --live` in a terminal multiplexer, read off the screen.

The real daemon runs in a tmux pane (a private tmux server); two cameras dock, one with a
file that fails (a symlink out of the camera). The pane must show log lines above exactly one
table, one row per camera with its own counts, the failure counted where `bwc status` counts
it, and no stale copy of the table between the log lines; Ctrl-C leaves the log and no table.
A second run at 80 columns on the same docked cameras shows the counts of the first run
(the failure included: it came from no event of this run), each row on one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.integration import pg
from tests.integration.daemon_util import BWC_EXE, set_daemon_config, wait_until

pytestmark = pytest.mark.integration

TOP, CORNERS = "┌", "┌┐└┘├┤┬┴┼│"


class Pane:
    """A tmux server of the test's own (its socket in the test's folder) with one pane."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        r = subprocess.run(
            ["tmux", "-u", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return r.stdout

    def start(self, command: list[str], env: dict[str, str], width: int) -> None:
        # COLUMNS and LINES unset: a pane started from under pytest was handed COLUMNS=80
        # and LINES=24, and rich believed them over the pane's real size
        line = " ".join(
            [
                "env -u COLUMNS -u LINES",
                *(shlex.quote(f"{k}={v}") for k, v in env.items()),
                shlex.join(command),
            ]
        )
        # the shell stays after the daemon, to say its exit code and keep the screen readable
        self.tmux(
            "new-session", "-d", "-s", "live", "-x", str(width), "-y", "30",
            f"{line}; echo EXIT=$?; sleep 60",
        )  # fmt: skip

    def screen(self, joined: bool = False) -> list[str]:
        """The pane's lines as shown; ``joined``: from the start of its history (log lines
        scrolled off the top included), lines the terminal wrapped joined again."""
        args = ["-J", "-S", "-"] if joined else []
        text = self.tmux("capture-pane", "-p", *args, "-t", "live")
        return [ln.rstrip() for ln in text.rstrip("\n").split("\n")]

    def text(self) -> str:
        return "\n".join(self.screen())

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )


@pytest.fixture
def panes(tmp_path: Path) -> Iterator[Callable[[], Pane]]:
    """New panes, each on a tmux server of its own (a server just killed may still hold its
    socket); every server is killed at the end."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: run `make test`, which installs it")
    made: list[Pane] = []

    def new() -> Pane:
        made.append(Pane(tmp_path / f"tmux-{len(made)}.sock"))
        return made[-1]

    yield new
    for p in made:
        p.kill()


def row_of(screen: list[str], camera: str) -> list[str]:
    """The cells of the table row naming ``camera``."""
    (line,) = [ln for ln in screen if camera in ln and ln.startswith("│")]
    return [c.strip() for c in line.strip("│").split("│")]


def counts_shown(screen: list[str], camera: str) -> tuple[str, ...] | None:
    try:
        cells = row_of(screen, camera)
    except ValueError:
        return None
    return (*cells[1:5], cells[6])  # found, new, seen again, failed; ETA


@pytest.mark.slow  # two daemon starts: ~7 s
def test_live_view_in_tmux(
    bwc: Callable[..., Result], home: Path, tmp_path: Path, panes: Callable[[], Pane]
) -> None:
    set_daemon_config(home, stable_seconds=0.5, rescan_seconds=0.2)
    dock, staging = tmp_path / "dock", tmp_path / "staging"
    dock.mkdir()
    media = "DCIM/100MEDIA"
    files = {
        "camA": [f"DSJ0042_110023_2026101509301{i}_000{i}.MP4" for i in (1, 2, 3)],
        "camB": [f"DSJ0077_110024_2026101510301{i}_000{i}.MP4" for i in (1, 2)],
    }
    for cam, names in files.items():
        (staging / cam / media).mkdir(parents=True)
        for i, name in enumerate(names):
            (staging / cam / media / name).write_bytes(os.urandom(100_000 + i))
    # one file that fails (a symlink out of the camera: listed as failed at discovery)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not on the camera\n")
    os.symlink(outside, staging / "camB" / media / "LINK0001.MP4")
    old = 1_700_000_000  # docked after the shift: every file is complete at once
    for cam in files:
        for p in (staging / cam / media).iterdir():
            os.utime(p, (old, old), follow_symlinks=False)

    env = {
        "BWC_HOME": str(home),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
    }
    daemon = [str(BWC_EXE), "daemon", "--dock", str(dock)]  # --live: stderr is the pane
    pane = panes()
    pane.start(daemon, env, width=100)
    wait_until(lambda: "INFO watching" in pane.text(), 30, "the daemon to start")
    os.rename(staging / "camA", dock / "camA")
    os.rename(staging / "camB", dock / "camB")

    want = {"(camA)": ("3", "3", "0", "0", "done"), "(camB)": ("3", "2", "0", "1", "done")}
    wait_until(
        lambda: all(counts_shown(pane.screen(), c) == v for c, v in want.items()),
        30,
        "each camera's own counts in the pane",
        detail=pane.text,
    )
    screen = pane.screen()
    print("\n".join(screen))  # the pane at 100 columns, for the record (-s)
    # exactly one table, with the log lines above it and nothing of a table among them
    tops = [i for i, ln in enumerate(screen) if ln.startswith(TOP)]
    assert len(tops) == 1, pane.text()
    assert sum(ln.startswith("│ camera") for ln in screen) == 1, pane.text()
    above = screen[: tops[0]]
    assert not [ln for ln in above if any(c in ln for c in CORNERS)], pane.text()
    log = pane.screen(joined=True)
    log = log[: next(i for i, ln in enumerate(log) if ln.startswith(TOP))]
    assert sum(f"INFO docked: {dock / 'camA'} (session" in ln for ln in log) == 1, log
    assert sum("INFO ingested: " in ln for ln in log) == 5, log
    # the same failure count as `bwc status` (its list, its backlog), on camB's row only
    st = json.loads(bwc("status", "--json").out)
    assert len(st["failed"]) == 1 and st["backlog"]["failed"] == 1, st
    text = bwc("status").out  # the daemon runs: its open sessions are cameras docked now
    assert text.count("  docked: ") == 2 and "daemon stopped" not in text, text

    # the pane narrowed to 80 columns: tmux wraps each 100-column line of the table onto two
    # rows, and the whole old table is erased, not only as many rows as were drawn (the
    # rows a reflow pushes above the screen are tmux's history, out of any program's reach)
    pane.tmux("resize-window", "-t", "live", "-x", "80")

    def redrawn_at_80() -> bool:
        screen = pane.screen()
        return any(ln.startswith(TOP) and len(ln) <= 80 for ln in screen)

    wait_until(redrawn_at_80, 30, "the table redrawn at 80 columns", detail=pane.text)
    time.sleep(1.5)  # a redraw or two more: none may leave a copy behind
    screen = pane.screen()
    tops = [i for i, ln in enumerate(screen) if ln.startswith(TOP)]
    assert len(tops) == 1, pane.text()
    assert sum(ln.startswith("│ camera") for ln in screen) == 1, pane.text()
    assert not [ln for ln in screen[: tops[0]] if any(c in ln for c in CORNERS)], pane.text()
    assert all(len(ln) <= 80 for ln in screen), pane.text()
    assert counts_shown(screen, "(camB)") == want["(camB)"], pane.text()
    assert "1 failed in all" in pane.text()
    assert all(len(ln) <= 100 for ln in screen)

    # Ctrl-C: the daemon stops cleanly, the log stays, the live area goes
    pane.tmux("send-keys", "-t", "live", "C-c")
    wait_until(lambda: "EXIT=0" in pane.text(), 30, "the daemon to stop", detail=pane.text)
    screen = pane.screen()
    assert not [ln for ln in screen if any(c in ln for c in CORNERS)], pane.text()
    assert "INFO stopped" in pane.text()
    text = bwc("status").out  # stopped: the sessions stay open, said as such
    assert text.count("  docked when the daemon stopped: ") == 2, text

    # again at 80 columns, the cameras still docked: the sessions go on, their counts
    # (the failure too) come from the catalog, not from what this run saw happen
    pane = panes()
    pane.start(daemon, env, width=80)
    wait_until(
        lambda: all(counts_shown(pane.screen(), c) == v for c, v in want.items()),
        30,
        "the first run's counts at 80 columns",
        detail=pane.text,
    )
    screen = pane.screen()
    assert all(len(ln) <= 80 for ln in screen), pane.text()
    assert sum(ln.startswith(TOP) for ln in screen) == 1, pane.text()
    assert [ln.rstrip()[-1] for ln in screen if ln.startswith("│ DSJ")] == ["│", "│"]
    pane.tmux("send-keys", "-t", "live", "C-c")
    wait_until(lambda: "EXIT=0" in pane.text(), 30, "the daemon to stop", detail=pane.text)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_catalog(
    request: pytest.FixtureRequest,
    bwc: Callable[..., Result],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """A home whose catalog is SQLite, or a throw-away PostgreSQL database."""
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            dbs = stack.enter_context(pg.databases())
            monkeypatch.setenv("BWC_CATALOG", pg.sqlalchemy_url(dbs.create()))
        r = bwc("init", "--station-id", "st-test")
        assert r.code == 0, r.err
        yield tmp_path / "home"


def test_session_tallies_from_the_catalog(any_catalog: Path) -> None:
    """One grouped query gives each asked-for session its own counts (zeros for a session
    with no job yet), and leaves out sessions not asked for; PostgreSQL's sums (numeric)
    come back as the same integers."""
    home = any_catalog
    from datetime import UTC, datetime

    from bwc.evidence.models import DockSession, IngestJob
    from bwc.evidence.station import Station
    from bwc.ingest.liveview import SessionTally, session_tallies

    st = Station.open(home, actor="test-clerk", passphrase=None)
    big = 5 << 30  # past 32 bits
    now = datetime(2026, 10, 15, 1, 0, tzinfo=UTC)
    with st.session() as s:
        ids = []
        for name in (b"/dock/a", b"/dock/b", b"/dock/c", b"/dock/d"):
            row = DockSession(station_id=st.station_id, mount=name, first_seen=now, last_seen=now)
            s.add(row)
            s.flush()
            assert row.id is not None
            ids.append(row.id)
        jobs = [
            (ids[0], "released", "ingested", 10),
            (ids[0], "released", "seen-again", 20),
            (ids[0], "signed", None, big),
            (ids[1], "failed", None, None),
            (ids[1], "ignored", None, None),
            (ids[3], "released", "ingested", 99),  # a session not asked for
        ]
        for n, (sid, state, outcome, size) in enumerate(jobs):
            s.add(
                IngestJob(
                    session_id=sid,
                    station_id=st.station_id,
                    path=b"/p%d" % n,
                    rel=b"p%d" % n,
                    size=size,
                    state=state,
                    outcome=outcome,
                    updated_at=now,
                )
            )
        # p0 changed while docked after it was taken: a new job takes it again; the file
        # counts once, by its latest job, as the dock receipt counts it
        s.add(
            IngestJob(
                session_id=ids[0],
                station_id=st.station_id,
                path=b"/p0",
                rel=b"p0",
                size=15,
                state="discovered",
                updated_at=now,
            )
        )
    with st.session(snapshot=True) as s:
        got = session_tallies(s, ids[:3])
    st.engine.dispose()  # before the database is dropped
    assert got == {
        ids[0]: SessionTally(
            found=3, seen_again=1, in_progress=2, bytes_done=20, bytes_total=20 + big + 15
        ),
        ids[1]: SessionTally(found=1, failed=1, ignored=1),
        ids[2]: SessionTally(),
    }
