"""What the daemon's live view counts for each open dock session, and its ETA.

The counts come from the catalog's ingest jobs, the rows `bwc status` counts, so the two
always agree (a failure from an earlier run of the daemon included): one grouped query over
the open sessions' jobs (indexed by session), run at most about once a second by the view,
never per file. The rest is pure: rows in, tallies out; bytes and times in, a rate and an
ETA out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func

from bwc.evidence.models import IngestJob
from bwc.ingest.receipt import place


@dataclass(frozen=True)
class SessionTally:
    """One dock session's files by how far they got. ``found`` is every file that is or
    will be evidence or an error (not ignored junk, not a job superseded by a re-take)."""

    found: int = 0
    new: int = 0  # committed as a new evidence item
    seen_again: int = 0  # committed as a sighting of an item already stored
    failed: int = 0
    ignored: int = 0
    in_progress: int = 0
    bytes_done: int = 0  # of the files taken
    bytes_total: int = 0  # of the files taken or still being taken (not the failed)

    @property
    def bytes_left(self) -> int:
        return max(0, self.bytes_total - self.bytes_done)


# (session id, state, outcome, how many jobs, their bytes)
TallyRow = tuple[int, str, str | None, int, int | None]


def tally_rows(rows: Iterable[TallyRow]) -> dict[int, SessionTally]:
    """Tallies per session from the grouped rows of :func:`session_tallies`."""
    acc: dict[int, dict[str, int]] = {}
    for session_id, state, outcome, n, size in rows:
        t = acc.setdefault(session_id, dict.fromkeys(SessionTally.__dataclass_fields__, 0))
        size = int(size or 0)
        # counted as the dock receipt counts (bwc.ingest.receipt.place); an acknowledged or
        # abandoned file is found and not safe, in no column of its own, no bytes to take
        where = place(state, outcome)
        if where == "ignored":
            t["ignored"] += n
            continue
        t["found"] += n
        if where in ("failed", "in_progress", "new", "seen_again"):
            t[where] += n
        if where in ("in_progress", "new", "seen_again"):
            t["bytes_total"] += size
        if where in ("new", "seen_again"):
            t["bytes_done"] += size
    return {k: SessionTally(**v) for k, v in acc.items()}


def session_tallies(s: Session, session_ids: Sequence[int]) -> dict[int, SessionTally]:
    """The tallies of these dock sessions: one grouped query (every session asked for has a
    tally, zeros before its first file)."""
    if not session_ids:
        return {}
    ids = list(session_ids)
    # each file's latest job, as the receipt counts (a file that changed while docked was
    # taken again: its earlier job is not another file)
    latest = (
        sa_select(func.max(col(IngestJob.id)))
        .where(col(IngestJob.session_id).in_(ids))
        .group_by(col(IngestJob.session_id), col(IngestJob.rel))
    )
    # five columns: past sqlmodel's typed select(), so SQLAlchemy's, typed by hand below
    stmt = (
        sa_select(
            col(IngestJob.session_id),
            col(IngestJob.state),
            col(IngestJob.outcome),
            func.count(),
            func.sum(col(IngestJob.size)),
        )
        .where(col(IngestJob.session_id).in_(ids))
        .where(col(IngestJob.id).in_(latest))
        .group_by(col(IngestJob.session_id), col(IngestJob.state), col(IngestJob.outcome))
    )
    found = tally_rows(
        (int(a), str(b), c, int(n), None if z is None else int(z))
        for a, b, c, n, z in s.execute(stmt).all()
    )
    return {i: found.get(i, SessionTally()) for i in session_ids}


class RateMeter:
    """Bytes a second per key (a dock session) over the last ``window`` seconds, from
    samples of its bytes done; times (monotonic seconds) are passed in."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._samples: dict[int, deque[tuple[float, int]]] = {}

    def add(self, key: int, now: float, bytes_done: int) -> None:
        q = self._samples.setdefault(key, deque())
        q.append((now, bytes_done))
        # keep one sample at or before the window's start, so the rate spans the window
        while len(q) > 2 and q[1][0] <= now - self.window:
            q.popleft()

    def rate(self, key: int) -> float | None:
        """Bytes a second, or None before two samples some time apart."""
        q = self._samples.get(key)
        if not q or len(q) < 2:
            return None
        (t0, b0), (t1, b1) = q[0], q[-1]
        if t1 - t0 <= 0:
            return None
        return max(0.0, (b1 - b0) / (t1 - t0))

    def keep_only(self, keys: Iterable[int]) -> None:
        """Forget sessions that are closed."""
        keep = set(keys)
        for k in [k for k in self._samples if k not in keep]:
            del self._samples[k]


def eta_seconds(bytes_left: int, rate: float | None) -> float | None:
    """Seconds until ``bytes_left`` are taken at ``rate`` (None: not known)."""
    if bytes_left <= 0:
        return 0.0
    if rate is None or rate <= 0:
        return None
    return bytes_left / rate
