"""Helpers for the benchmarks: timing with medians, child peak RSS, cache dropping."""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the project's venv; from a git worktree without one, the venv of the Python running this
VENV_BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv").exists() else Path(sys.executable).parent
BWC = VENV_BIN / "bwc"
# bwc loads its modules per command (`--version` loads almost nothing): load them all, and
# botocore's S3 model, and run ffprobe once, as on a station that has run before.
WARM_BWC = [
    str(VENV_BIN / "python"),
    "-c",
    "import bwc.cli, bwc.ingest.pipeline, bwc.ingest.probe, bwc.evidence.verify, "
    "bwc.evidence.stores.s3, bwc.cli_store, bwc.ingest.daemon, boto3; "
    "boto3.session.Session().client('s3', region_name='us-east-1')",
]


def drop_caches(warm: Sequence[list[str]] = (), warm_env: dict[str, str] | None = None) -> bool:
    """Drop the page cache so every tool reads its data from disk (root only; False when not
    allowed). Then load each tool's own code again (bwc's Python modules and ffprobe, openssl,
    cp, and any ``warm`` commands): the comparison is about moving footage, not about loading
    programs from a cold disk."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        dropped = True
    except OSError:
        dropped = False
    base = [WARM_BWC, ["ffprobe", "-version"], ["openssl", "version"], ["cp", "--version"]]
    for cmd in [*base, *warm]:
        subprocess.run(
            cmd, env=warm_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
    return dropped


LAST_CPU: list[float] = [0.0]  # CPU seconds (user + system) of the last `run`, children included
# Peak RSS in KiB of the last `run`'s largest single process (the kernel's ru_maxrss: the
# command itself, or a child such as ffprobe if that was larger), beside `run`'s total.
LAST_OWN_RSS: list[int] = [0]


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants now, in KiB (Linux /proc;
    pages shared between them counted once per process: an upper bound)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return total


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run a command; return (wall seconds, peak RSS in KiB: the larger of the process's
    own peak and the sum over it and its worker processes, sampled every 20 ms). Its CPU
    time is left in ``LAST_CPU[0]``."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _tree_rss_kib(p.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(p.pid, 0)
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        err = p.stderr.read().decode() if p.stderr else ""
        raise SystemExit(f"{cmd[0]} failed ({p.returncode}): {err[-500:]}")
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    LAST_OWN_RSS[0] = usage.ru_maxrss
    return wall, max(usage.ru_maxrss, peak[0])


def median_of(reps: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(reps))


def make_footage(folder: Path, count: int, seconds: int, big_parts: int) -> tuple[list[Path], Path]:
    """Real H.264/AAC MP4 clips of ~3 MB per second (like 1080p body-worn footage): one clip
    encoded with ffmpeg's lavfi sources, then remuxed (-c copy) with distinct metadata into
    ``count`` distinct files, and concatenated ``big_parts`` times into one big file.
    Made once under ``folder`` and reused."""
    clips = folder / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    base = folder / f"base-{seconds}s.mp4"
    ff = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    if not base.exists():
        subprocess.run(
            [
                *ff,
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
                "-f",
                "lavfi",
                "-i",
                f"sine=duration={seconds}",
                "-shortest",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                "24M",
                "-maxrate",
                "24M",
                "-bufsize",
                "24M",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                str(base) + ".tmp.mp4",
            ],
            check=True,
        )
        os.replace(str(base) + ".tmp.mp4", base)
    out = []
    for i in range(count):
        p = clips / f"DSJ0042_110023_2026101509{i:04d}_{i:04d}.MP4"
        if not p.exists():
            subprocess.run(
                [
                    *ff,
                    "-i",
                    str(base),
                    "-c",
                    "copy",
                    "-metadata",
                    f"title=clip {i}",
                    "-metadata",
                    f"creation_time=2026-10-15T01:{i % 60:02d}:00Z",
                    str(p),
                ],
                check=True,
            )
        out.append(p)
    bigdir = folder / "big"
    bigdir.mkdir(exist_ok=True)
    big = bigdir / "DSJ0042_110023_20261015100000_0001.MP4"
    if not big.exists():
        lst = folder / "concat.txt"
        lst.write_text("".join(f"file '{base}'\n" for _ in range(big_parts)))
        subprocess.run(
            [*ff, "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy", str(big)], check=True
        )
    return out, big


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    """Incompressible files (made once, reused across runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    block = os.urandom(1 << 20)
    for i in range(count):
        p = folder / f"DSJ0042_110023_2026101509{i:04d}_{i:04d}.MP4"
        if not p.exists() or p.stat().st_size != size:
            with open(p, "wb") as f:
                for j in range(size >> 20):
                    # vary each MiB so no two files (or blocks) are alike
                    f.write(j.to_bytes(8, "little") + i.to_bytes(8, "little") + block[16:])
        out.append(p)
    return out


# A fresh PostgreSQL database on the local server for one run (dropped by the caller).
def fresh_database() -> tuple[str, str]:
    import psycopg

    name = f"bwc_bench_{secrets.token_hex(6)}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
