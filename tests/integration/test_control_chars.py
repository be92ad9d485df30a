"""Issue 12, defect 13: a file name (or officer, device id) holding an escape sequence, a
newline and a forged log line, taken in by `bwc ingest` and by the daemon. Every human output
(`ingest`, `list`, `status`, `show`, `log events`, the daemon's text log) shows it escaped,
on its own line, with no raw control byte and no forged line; JSON gives the exact name."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon_util import (
    BWC_EXE,
    Catalog,
    DaemonProcess,
    age_tree,
    set_daemon_config,
    wait_until,
)

pytestmark = pytest.mark.integration

FORGED = "2026-01-01 00:00:00,000 ERROR forged"
# red text, then a newline and what would read as a record of the daemon's text log
NAME = f"clip\x1b[31m red\n{FORGED}\u202e.mp4"
NAME_SHOWN = f"clip\\x1b[31m red\\n{FORGED}\\u202e.mp4"
OFFICER = "o\x1b]0;pwned\x07"  # sets the terminal's title
DEVICE = "dev\x9b2J"  # C1 CSI: clears the screen on some terminals
CAMERA = "cam\x1b[2J"
LINK = "link\nERROR forged.mp4"


def unsafe(text: str) -> list[str]:
    """Raw control, separator or bidi characters, other than the output's own newlines."""
    bad = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
    return bad.findall(text)


def forged_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(FORGED)]


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """The real `bwc` command; a wide terminal so rich tables do not fold the names."""
    env = os.environ | {"BWC_HOME": str(home), "COLUMNS": "400"}
    return subprocess.run(
        [str(BWC_EXE), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def assert_clean(r: subprocess.CompletedProcess[str]) -> None:
    for text in (r.stdout, r.stderr):
        assert not unsafe(text), repr(text)
        assert not forged_lines(text), repr(text)


def test_ingest_list_show_escape_a_hostile_name(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / NAME).write_bytes(b"not a video, but evidence all the same\n")

    # ids with control characters are refused (bwc.config.limits), the message escaped
    r = run("ingest", str(src), "--officer", OFFICER, "--device", DEVICE, home=home)
    assert r.returncode == 2, r.stderr
    assert_clean(r)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--officer contains a control character ('\\x1b')" in r.stderr, r.stderr
    r = run("ingest", str(src), "--officer", "110023", "--device", "DSJ0042", home=home)
    assert r.returncode == 0, r.stderr
    assert_clean(r)
    assert NAME_SHOWN in r.stdout, r.stdout

    r = run("list", home=home)
    assert r.returncode == 0, r.stderr
    assert_clean(r)
    assert NAME_SHOWN in r.stdout, r.stdout

    # JSON keeps the exact name, officer and device (escaped the JSON way)
    r = run("list", "--json", home=home)
    assert r.returncode == 0, r.stderr
    assert not unsafe(r.stdout), repr(r.stdout)
    (item,) = json.loads(r.stdout)
    assert (item["path"], item["officer_id"], item["device_id"]) == (NAME, "110023", "DSJ0042")

    r = run("show", item["sha256"], home=home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_clean(r)
    assert NAME_SHOWN in r.stdout, r.stdout

    r = run("show", "--json", item["sha256"], home=home)
    assert r.returncode == 0, r.stderr
    assert not unsafe(r.stdout)
    assert json.loads(r.stdout)["path"] == NAME

    r = run("log", "events", home=home)
    assert r.returncode == 0, r.stderr
    assert_clean(r)

    # an error message built from a given value: one line, escaped
    r = run("attribute", item["sha256"], "--officer", "x", "--reason", "", home=home)
    assert_clean(r)
    r = run("list", "--since", "\x1b[2Jnot a time\nERROR forged", home=home)
    assert r.returncode == 2
    assert_clean(r)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # a value the message quotes (repr) is escaped once, not twice
    r = run("show", "\x1b[31mab", home=home)
    assert r.returncode != 0
    assert_clean(r)
    assert "'\\x1b[31mab' is not an evidence id" in r.stderr, r.stderr


@pytest.fixture
def daemon(home: Path, tmp_path: Path) -> Iterator[tuple[DaemonProcess, Path]]:
    set_daemon_config(home, stable_seconds=0.5, rescan_seconds=0.2, retry_max_seconds=1.0)
    dock = tmp_path / "dock"
    dock.mkdir()
    d = DaemonProcess(home, [dock], tmp_path / "daemon.log").start()
    yield d, dock
    d.kill()


def test_daemon_log_and_status_escape_a_hostile_name(
    home: Path, tmp_path: Path, daemon: tuple[DaemonProcess, Path]
) -> None:
    d, dock = daemon
    staging = tmp_path / "staging"
    cam = staging / CAMERA
    cam.mkdir(parents=True)
    (cam / NAME).write_bytes(b"bytes off a camera\n")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not on the camera\n")
    os.symlink(outside, cam / LINK)  # refused: a listed error, with its name
    age_tree(staging)
    d.wait_ready()
    os.rename(cam, dock / CAMERA)  # the camera is mounted
    cat = Catalog(home)
    wait_until(lambda: cat.states() == {"released": 1, "failed": 1}, 30.0, "both files", daemon=d)

    r = run("status", home=home)
    assert r.returncode == 0, r.stderr
    assert_clean(r)
    assert "cam\\x1b[2J" in r.stdout and "link\\nERROR forged.mp4" in r.stdout, r.stdout

    r = run("list", "--json", home=home)
    assert [i["path"] for i in json.loads(r.stdout)] == [NAME]

    assert d.terminate() == 0
    log = d.this_run_log()
    assert NAME_SHOWN in log, log
    assert not unsafe(log), repr(log)
    assert not forged_lines(log), log
    # every line is a record (time, level) or an indented continuation
    record = re.compile(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) "
    )
    assert all(record.match(line) or line.startswith(" ") for line in log.splitlines()), log
