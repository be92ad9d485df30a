"""Helpers for the docking-station daemon tests: run `bwc daemon` as a real process on a temp
dock, read the catalog (SQLite) while it runs, and wait for conditions with a deadline."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BWC_EXE = Path(sys.executable).with_name("bwc")

ACTIVE_STATES = ("discovered", "staged", "signed", "stored", "verified", "committed")
END_STATES = ("released", "ignored", "failed", "abandoned")

# ------------------------------------------------------------------------------ config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # strings and lists of strings: JSON is valid TOML here


def set_daemon_config(home: Path, **values: Any) -> None:
    """Set keys of the `[daemon]` table in ``<home>/bwc.toml`` (the env has no per-field
    daemon override)."""
    path = home / "bwc.toml"
    lines = path.read_text("utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "[daemon]")
    except StopIteration:
        lines += ["", "[daemon]"]
        start = len(lines) - 1
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    for key, value in values.items():
        rendered = f"{key} = {_toml_value(value)}"
        for i in range(start + 1, end):
            if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
                lines[i] = rendered
                break
        else:
            lines.insert(start + 1, rendered)
            end += 1
    text = "\n".join(lines) + "\n"
    parsed = tomllib.loads(text)
    for key, value in values.items():
        assert parsed["daemon"][key] == value, (key, parsed["daemon"].get(key))
    path.write_text(text, "utf-8")


# ------------------------------------------------------------------------------ the process


class DaemonProcess:
    """`bwc daemon --dock DIR... --no-live` as a subprocess, its output in a log file."""

    def __init__(self, home: Path, docks: Iterable[Path], log_path: Path) -> None:
        self.home = home
        self.docks = list(docks)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.log_offset = 0

    def start(self) -> DaemonProcess:
        env = dict(os.environ)
        env["BWC_HOME"] = str(self.home)
        args = [str(BWC_EXE), "daemon", "--no-live"]
        for d in self.docks:
            args += ["--dock", str(d)]
        with open(self.log_path, "ab") as log:
            log.write(f"---- start {' '.join(args)}\n".encode())
            log.flush()
            self.log_offset = log.tell()
            self.proc = subprocess.Popen(
                args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.started_at = time.monotonic()
        return self

    def this_run_log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until this run has started watching (its signal handlers are installed: a SIGTERM
        before that, during the imports, just ends the process)."""
        wait_until(lambda: "INFO watching" in self.this_run_log(), timeout, "start-up", daemon=self)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"daemon did not stop within {timeout}s of SIGTERM\n{self.log_tail()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL (kill -9): no clean-up of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "daemon log (tail):\n" + "\n".join(self.log().splitlines()[-lines:])


# ------------------------------------------------------------------------------ the catalog


@dataclass(frozen=True)
class Job:
    id: int
    session_id: int
    rel: bytes
    state: str
    sha256: str | None
    outcome: str | None
    reason: str | None
    size: int | None


class Catalog:
    """Read-only look at a home's SQLite catalog while the daemon runs."""

    def __init__(self, home: Path) -> None:
        self.path = home / "catalog.sqlite"

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.path, timeout=60)) as c:
            return c.execute(sql, args).fetchall()

    def items(self) -> dict[str, dict[str, Any]]:
        rows = self.query(
            "SELECT sha256, original_path, device_id, officer_id, flags, size FROM item"
        )
        return {
            r[0]: {"path": r[1], "device_id": r[2], "officer_id": r[3], "flags": r[4], "size": r[5]}
            for r in rows
        }

    def manifest(self, sha256: str) -> dict[str, Any]:
        rows = self.query("SELECT manifest FROM item WHERE sha256 = ?", sha256)
        assert rows, f"no item {sha256}"
        data: dict[str, Any] = json.loads(bytes(rows[0][0]))
        return data

    def item_count(self) -> int:
        return int(self.query("SELECT count(*) FROM item")[0][0])

    def jobs(self) -> list[Job]:
        rows = self.query(
            "SELECT id, session_id, rel, state, sha256, outcome, reason, size "
            "FROM ingest_job ORDER BY id"
        )
        return [Job(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    def states(self) -> Counter[str]:
        return Counter(
            {
                r[0]: int(r[1])
                for r in self.query("SELECT state, count(*) FROM ingest_job GROUP BY state")
            }
        )

    def active(self) -> int:
        marks = ",".join("?" * len(ACTIVE_STATES))
        return int(
            self.query(f"SELECT count(*) FROM ingest_job WHERE state IN ({marks})", *ACTIVE_STATES)[
                0
            ][0]
        )

    def sessions(self) -> list[dict[str, Any]]:
        rows = self.query("SELECT id, mount, device_id, closed_at FROM dock_session ORDER BY id")
        return [
            {"id": r[0], "mount": bytes(r[1]), "device_id": r[2], "closed_at": r[3]} for r in rows
        ]

    def event_kinds(self) -> list[tuple[int, str, str | None]]:
        return [
            (int(r[0]), r[1], r[2])
            for r in self.query("SELECT idx, kind, item_sha256 FROM event ORDER BY idx")
        ]

    def count_events(self, kind: str) -> int:
        return int(self.query("SELECT count(*) FROM event WHERE kind = ?", kind)[0][0])

    def log_size(self) -> int:
        rows = self.query("SELECT size FROM log_head WHERE id = 1")
        return int(rows[0][0]) if rows else 0

    def latest_checkpoint_size(self) -> int | None:
        rows = self.query("SELECT size FROM checkpoint ORDER BY id DESC LIMIT 1")
        return int(rows[0][0]) if rows else None


# ------------------------------------------------------------------------------ waiting


def wait_until(
    cond: Callable[[], Any],
    timeout: float,
    what: str,
    *,
    daemon: DaemonProcess | None = None,
    interval: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> Any:
    """Poll ``cond`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
        except sqlite3.OperationalError:  # the catalog is still being created
            value = None
        if value:
            return value
        if daemon is not None and daemon.proc is not None and daemon.proc.poll() is not None:
            raise AssertionError(
                f"daemon exited ({daemon.proc.returncode}) while waiting for {what}\n"
                + daemon.log_tail()
            )
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout}s waiting for {what}"
            if detail is not None:
                msg += f"\n{detail()}"
            if daemon is not None:
                msg += "\n" + daemon.log_tail()
            raise AssertionError(msg)
        time.sleep(interval)


# ------------------------------------------------------------------------------ files


def sha256_file(path: Path | bytes) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_snapshot(root: Path) -> dict[bytes, tuple[str, int, int]]:
    """Every file under root (bytes paths, no symlinks followed): sha256, size, mtime_ns."""
    out: dict[bytes, tuple[str, int, int]] = {}
    broot = os.fsencode(root)
    for dirpath, _dirs, files in os.walk(broot):
        for name in files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, broot)
            if os.path.islink(p):
                out[rel] = ("symlink:" + os.fsdecode(os.readlink(p)), 0, st.st_mtime_ns)
            else:
                out[rel] = (sha256_file(p), st.st_size, st.st_mtime_ns)
    return out


def age_tree(root: Path, seconds: float = 3600.0) -> None:
    """Give every file under root an mtime ``seconds`` in the past (a camera docked after its
    shift: nothing is still being written, so the files are stable at once)."""
    t = time.time() - seconds
    for dirpath, _dirs, files in os.walk(os.fsencode(root)):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.utime(p, (t, t))


def write_random(path: Path, size: int, seed: int) -> Path:
    import random

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 4 << 20)
            f.write(rng.randbytes(n))
            left -= n
    return path


def file_count(root: Path) -> int:
    return sum(len(files) for _d, _s, files in os.walk(os.fsencode(root)))


# the start_daemon fixture (tests/integration/conftest.py): start(home, *docks)
StartDaemon = Callable[..., DaemonProcess]
