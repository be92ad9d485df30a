"""`bwc ingest` as a real process, stopped while its forked stager is copying: Ctrl-C and
kill -9. Nothing half-committed, no process left behind, the spool cleaned, and a second run
ingests everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.fault]

BWC = [sys.executable, "-c", "from bwc.cli import entry; entry()"]
FILES = 6
SIZE = 24 << 20


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "BWC_HOME": str(home), "BWC_ACTOR": "test-clerk"}


def _bwc(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BWC, *args], env=_env(home), capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def footage(tmp_path: Path) -> Path:
    cam = tmp_path / "cam"
    cam.mkdir()
    block = os.urandom(1 << 20)
    for n in range(FILES):
        with open(cam / f"clip{n}.mp4", "wb") as f:
            for m in range(SIZE >> 20):
                f.write(n.to_bytes(4, "little") + m.to_bytes(4, "little") + block[8:])
    return cam


def _descendants(pid: int) -> set[int]:
    """The live descendants of ``pid`` (from /proc)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _as_from_a_shell() -> None:
    """Ctrl-C delivered and handled by default in the child, as a shell starts a command:
    an ignored or blocked SIGINT is inherited through exec, and a pytest worker may carry
    one from an earlier in-process test (seen: bwc then never saw the signal and exited 0)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_stop(
    home: Path, cam: Path, sig: int, group: bool
) -> tuple[int, set[int], str] | None:
    """Start `bwc ingest`, stop it once its stager is copying: (exit code, the processes
    it started, stderr); None if it had already finished (on a busy machine the poll below
    can miss the copy of these files), so the caller tries again."""
    p = subprocess.Popen(
        [*BWC, "ingest", str(cam)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_as_from_a_shell,
    )
    spool = home / "spool"
    deadline = time.monotonic() + 30
    kids: set[int] = set()
    # wait until the stager is copying (a spool file exists), then stop the run
    while time.monotonic() < deadline:
        kids |= _descendants(p.pid)
        if any(spool.glob("ingest-*/*.part")):
            break
        time.sleep(0.005)
    kids |= _descendants(p.pid)
    if p.poll() is not None:
        p.communicate()
        return None
    if group:  # as Ctrl-C in a terminal: the whole process group
        os.killpg(p.pid, sig)
    else:
        p.send_signal(sig)
    _out, err = p.communicate(timeout=60)
    return p.returncode, kids, err


def _settle(pids: set[int]) -> None:
    deadline = time.monotonic() + 10
    while any(_alive(k) for k in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("sig", "group"),
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGKILL, False)],
    ids=["sigint", "ctrl-c-group", "kill-9"],
)
def test_stopped_mid_copy(tmp_path: Path, footage: Path, sig: int, group: bool) -> None:
    for attempt in range(3):
        home = tmp_path / f"home{attempt}"
        assert _bwc(home, "init", "--station-id", "s1").returncode == 0
        stopped = _start_and_stop(home, footage, sig, group)
        if stopped is not None:
            break
    else:
        pytest.fail("bwc ingest finished before it could be stopped, three times")
    code, kids, err = stopped
    if sig == signal.SIGINT:
        assert code == 130, err
        assert "interrupted" in err and "Traceback" not in err
    else:
        assert code == -signal.SIGKILL
    assert kids, "the forked stager was not seen"
    _settle(kids)
    assert not [k for k in kids if _alive(k)], "a child of bwc ingest outlived it"
    if sig == signal.SIGINT:
        assert not list((home / "spool").glob("ingest-*")), "the spool was not removed"
    # whatever was committed verifies; the next run cleans up and takes the rest
    v = _bwc(home, "verify", "--all", "--no-record", "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    r = _bwc(home, "ingest", str(footage), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ingested"] + data["seen_again"] == FILES
    assert not list((home / "spool").glob("ingest-*")), "a stale spool was left"
    listed = json.loads(_bwc(home, "list", "--json").stdout)
    assert len(listed) == FILES
    v = _bwc(home, "verify", "--all", "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    assert _bwc(home, "log", "verify").returncode == 0
