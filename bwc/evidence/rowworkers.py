"""Worker processes for `bwc log verify`: each reads its share of the log's rows straight
from the catalog, checks them (``rowcheck.check_batch``) and sends back leaf hashes, so
that reading and hashing millions of rows use every core while the caller builds the tree.

A worker is a fresh interpreter (``python -m bwc.evidence.rowworkers``) importing only the
driver and the row check: it holds a few MB, not the caller's ORM. It gets the catalog's
address on stdin (never on the command line, where `ps` would show a password), reads rows
[lo, hi) of the batches it is given, and writes frames to stdout. Rows below the log head
the caller read are never changed by bwc (the log only grows), so a worker's connection
sees the same rows as the caller's snapshot. Anything unusual in a batch (a gap, a row
that differs from its leaf) is only flagged: the caller re-reads that batch itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from bwc.evidence.rowcheck import (
    Frame,
    Quotes,
    check_batch,
    encode_frame,
    end_frame,
    read_frame,
    rows_sql,
    text_leaf_time,
)

_ITEMS = "SELECT sha256 FROM item WHERE sha256 IN ({})"
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Share:
    """Which batches a worker checks: rows [start, stop) cut into batches of ``batch``;
    worker ``k`` of ``n`` takes batches k, k + n, k + 2n, …"""

    start: int
    stop: int
    batch: int
    k: int
    n: int

    def ranges(self) -> Iterator[tuple[int, int]]:
        lo = self.start + self.k * self.batch
        while lo < self.stop:
            yield lo, min(lo + self.batch, self.stop)
            lo += self.n * self.batch

    def all_ranges(self) -> Iterator[tuple[int, int]]:
        """Every batch of every worker, in index order."""
        lo = self.start
        while lo < self.stop:
            yield lo, min(lo + self.batch, self.stop)
            lo += self.batch


def _connect(dialect: str, address: str) -> Any:
    if dialect == "sqlite":
        import sqlite3
        from pathlib import Path

        return sqlite3.connect(f"{Path(address).resolve().as_uri()}?mode=ro", uri=True)
    import psycopg

    conn = psycopg.connect(address)
    conn.read_only = True
    return conn


def _missing(cur: Any, param: str, rows: Sequence[Sequence[Any]], flagged: set[int]) -> list[str]:
    """Items these rows log as ingested whose catalog row is missing; an item that is no
    sha256 is flagged for the caller instead."""
    logged: set[str] = set()
    for pos, row in enumerate(rows):
        if row[3] == "ingested" and row[7] is not None and pos not in flagged:
            if type(row[7]) is str and _SHA.fullmatch(row[7]):
                logged.add(row[7])
            else:
                flagged.add(pos)
    if not logged:
        return []
    ordered = sorted(logged)
    cur.execute(_ITEMS.format(", ".join([param] * len(ordered))), ordered)
    present = {r[0] for r in cur.fetchall()}
    return [s for s in ordered if s not in present]


def work(dialect: str, address: str, share: Share, out: IO[bytes]) -> None:
    conn = _connect(dialect, address)
    param = "?" if dialect == "sqlite" else "%s"
    query = rows_sql(dialect, upto=True)
    quotes = Quotes()
    try:
        cur = conn.cursor()
        for lo, hi in share.ranges():
            cur.execute(query, (lo, hi))
            rows = cur.fetchall()
            checked = check_batch(rows, lo, text_leaf_time, quotes)
            flagged = set(checked.irregular)
            missing = _missing(cur, param, rows, flagged)
            checked.irregular = sorted(flagged)
            out.write(encode_frame(lo, checked, missing))
        out.write(end_frame())
        out.flush()
    finally:
        conn.close()


def main(argv: Sequence[str]) -> int:
    dialect, start, stop, batch, k, n = argv[0], *map(int, argv[1:6])
    address = sys.stdin.readline().rstrip("\n")
    try:
        work(dialect, address, Share(start, stop, batch, k, n), sys.stdout.buffer)
    except Exception as e:  # the caller reports it; one line, no traceback
        print(f"{type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------- the caller


class WorkerError(Exception):
    """A worker failed: its one-line reason."""


def checked_batches(
    dialect: str, address: str, start: int, stop: int, batch: int, workers: int
) -> Iterator[tuple[int, int, Frame]]:
    """Rows [start, stop) checked by ``workers`` processes: (lo, hi, frame) for every
    batch, in index order. Raises WorkerError if a worker fails; the workers are stopped
    when the caller stops iterating."""
    procs: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
    try:
        for k in range(workers):
            args = (dialect, *map(str, (start, stop, batch, k, workers)))
            p = subprocess.Popen(
                [sys.executable, "-m", "bwc.evidence.rowworkers", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            stdin, stdout = _pipes(p)
            _widen(stdout)
            procs.append((p, stdout))
            stdin.write(address.encode() + b"\n")
            stdin.close()
        for i, (lo, hi) in enumerate(Share(start, stop, batch, 0, workers).all_ranges()):
            p, stdout = procs[i % workers]
            try:
                frame = read_frame(stdout.read)
            except ValueError as e:
                raise WorkerError(_reason(p, str(e))) from None
            if frame is None or frame.lo != lo:
                raise WorkerError(_reason(p, f"it did not send rows from #{lo}"))
            yield lo, hi, frame
        for p, stdout in procs:
            if read_frame(stdout.read) is not None or p.wait() != 0:
                raise WorkerError(_reason(p, "it did not end cleanly"))
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()


def _pipes(p: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    if p.stdin is None or p.stdout is None:  # pragma: no cover - asked for above
        raise WorkerError("no pipes to the worker")
    return p.stdin, p.stdout


def _widen(pipe: IO[bytes]) -> None:
    """A 1 MiB pipe (Linux), so that a worker can finish its next batch while the caller
    is still on the one before; where the call is refused, the default pipe works too."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass


def _reason(p: subprocess.Popen[bytes], fallback: str) -> str:
    if p.poll() is None:
        p.kill()
    p.wait()
    err = p.stderr.read().decode(errors="replace").strip() if p.stderr else ""
    return err.splitlines()[-1] if err else fallback


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
