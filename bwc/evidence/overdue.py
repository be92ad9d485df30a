"""Cameras that should have docked (issue 15 item 8): footage must be imported within 24 h
of the end of duty, so a camera checked out in the ledger that has not been docked for longer
than ``[daemon] dock_overdue_hours`` is overdue.

The rule, as a clerk reads it: a camera is overdue when it is checked out (its ledger entry
has started and not ended) and it has not been docked at any station for more than the limit,
counted from the end of its last dock (``closed_at``; a camera docked now is never overdue),
or from its checkout when it has not been docked since. Exactly the limit is not overdue yet.

A dock is a dock session of the daemon (any station); footage of the camera taken in by
`bwc ingest` (no dock session) counts as a dock at its ingest time.

``stretches`` is the pure rule over a window: every stretch of a checkout without a dock that
is longer than the limit (the monthly audit lists those of its month); ``overdue_now`` is the
ones still running at the window's end (`bwc status`). ``read`` loads its inputs from the
catalog: the ledger entries and the dock sessions (of every station) of their cameras.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, or_, select

from bwc.evidence.models import Assignment, DockSession, Item


@dataclass(frozen=True)
class Checkout:
    device_id: str
    officer_id: str
    start: datetime
    end: datetime | None  # None: still held


@dataclass(frozen=True)
class Dock:
    device_id: str
    first_seen: datetime
    closed_at: datetime | None  # None: docked now


@dataclass(frozen=True)
class Stretch:
    """A checked-out camera not docked from ``since`` to ``until`` (None: still not docked
    at the window's end), longer than the limit."""

    device_id: str
    officer_id: str
    since: datetime
    since_checkout: bool  # True: counted from the checkout (no dock since), else a dock
    until: datetime | None
    hours: float  # from since to until (or the window's end)


def stretches(
    checkouts: Iterable[Checkout],
    docks: Iterable[Dock],
    *,
    start: datetime,
    end: datetime,
    limit: timedelta,
) -> list[Stretch]:
    """Every stretch longer than ``limit`` in which a camera was checked out and not docked,
    overdue at some instant of [start, end]; by camera, then time."""
    by_device: dict[str, list[Dock]] = {}
    for d in docks:
        by_device.setdefault(d.device_id, []).append(d)
    for ds in by_device.values():
        ds.sort(key=lambda d: d.first_seen)
    found: list[Stretch] = []
    for c in checkouts:
        stop = end if c.end is None else min(c.end, end)
        if stop <= c.start:
            continue
        t, from_checkout = c.start, True
        gaps: list[tuple[datetime, bool, datetime | None]] = []
        for d in by_device.get(c.device_id, []):
            if d.first_seen >= stop:
                break
            if d.closed_at is not None and d.closed_at <= t:
                continue  # over before the checkout began (or within an earlier dock)
            if d.first_seen > t:
                gaps.append((t, from_checkout, d.first_seen))
            if d.closed_at is None:
                t = stop  # docked until now
                break
            t, from_checkout = max(t, d.closed_at), False
        if t < stop:
            # still undocked at the window's end: ongoing, unless the checkout ended
            gaps.append((t, from_checkout, None if stop == end else stop))
        for since, first, until in gaps:
            upto = until or end
            # overdue in (since + limit, upto]: does that meet [start, end]?
            if upto - since > limit and since + limit < end and upto >= start:
                hours = (upto - since).total_seconds() / 3600
                found.append(Stretch(c.device_id, c.officer_id, since, first, until, hours))
    return sorted(found, key=lambda s: (s.device_id, s.since, s.officer_id))


def overdue_now(
    checkouts: Iterable[Checkout], docks: Iterable[Dock], *, now: datetime, limit: timedelta
) -> list[Stretch]:
    """The cameras overdue at ``now``: checked out, and not docked for longer than ``limit``
    (since their last dock, or their checkout)."""
    held = [c for c in checkouts if c.start <= now and (c.end is None or c.end > now)]
    return [
        s
        for s in stretches(held, docks, start=now, end=now, limit=limit)
        if s.until is None and now - s.since > limit
    ]


def read(
    s: Session, *, start: datetime, end: datetime, limit: timedelta
) -> tuple[list[Checkout], list[Dock]]:
    """The inputs of ``stretches`` over [start, end]: the ledger entries held at some time in
    it, and the docks of their cameras (dock sessions of any station, ingests of their
    footage) that a stretch meeting it can start or end at: every dock from ``start -
    limit`` on, and each camera's latest before that (looked up one camera at a time,
    through the (device_id, time) indexes of migration 0014, only for the cameras with no
    dock in the meantime: memory and time by the window, not by the catalog's age)."""
    rows = s.exec(
        select(Assignment)
        .where(col(Assignment.start) <= end)
        .where(or_(col(Assignment.end).is_(None), col(Assignment.end) > start))
    ).all()
    checkouts = [Checkout(a.device_id, a.officer_id, a.start, a.end) for a in rows]
    lower = start - limit
    first_out: dict[str, datetime] = {}
    for c in checkouts:
        first_out[c.device_id] = min(c.start, first_out.get(c.device_id, c.start))
    docks: list[Dock] = []
    for chunk in _chunks(sorted(first_out), 500):
        docks += [
            Dock(d.device_id, d.first_seen, d.closed_at)
            for d in s.exec(
                select(DockSession)
                .where(col(DockSession.device_id).in_(chunk))
                .where(col(DockSession.first_seen) <= end)
                .where(
                    or_(col(DockSession.closed_at).is_(None), col(DockSession.closed_at) > lower)
                )
            ).all()
            if d.device_id is not None
        ]
        docks += _ingests(s, chunk, lower, end)
    recent = {d.device_id for d in docks if d.first_seen < start}
    for device, out in first_out.items():
        if device in recent or out >= lower:
            continue  # docked in the meantime, or counted from its checkout anyway
        last = _last_dock(s, device, out, lower)
        if last is not None:
            docks.append(Dock(device, last, last))
    return checkouts, docks


# ingests of one camera closer than this are one dock (a `bwc ingest` run takes minutes)
_SAME_DOCK = timedelta(hours=1)


def _ingests(s: Session, devices: Sequence[str], after: datetime, end: datetime) -> list[Dock]:
    """The cameras' footage ingested in (after, end], as docks: streamed in order and merged
    (ingests within an hour of each other are one), so memory holds docks, not items."""
    rows = s.exec(
        select(Item.device_id, Item.ingested_at)
        .where(col(Item.device_id).in_(devices))
        .where(col(Item.ingested_at) > after)
        .where(col(Item.ingested_at) <= end)
        .order_by(col(Item.device_id), col(Item.ingested_at))
        .execution_options(yield_per=10_000)
    )
    docks: list[Dock] = []
    for device, at in rows:
        if device is None:
            continue
        last = docks[-1] if docks else None
        if (
            last
            and last.device_id == device
            and last.closed_at
            and at - last.closed_at < _SAME_DOCK
        ):
            docks[-1] = Dock(device, last.first_seen, at)
        else:
            docks.append(Dock(device, at, at))
    return docks


def _last_dock(s: Session, device: str, after: datetime, before: datetime) -> datetime | None:
    """When ``device`` was last docked (a dock session's end, or an ingest of its footage)
    in (after, before], or None: two index look-ups (migration 0014)."""
    closed = s.exec(
        select(func.max(col(DockSession.closed_at)))
        .where(col(DockSession.device_id) == device)
        .where(col(DockSession.closed_at) > after)
        .where(col(DockSession.closed_at) <= before)
    ).one()
    ingested = s.exec(
        select(func.max(col(Item.ingested_at)))
        .where(col(Item.device_id) == device)
        .where(col(Item.ingested_at) > after)
        .where(col(Item.ingested_at) <= before)
    ).one()
    times = [x for x in (closed, ingested) if x is not None]
    return max(times) if times else None


def _chunks(values: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), n):
        yield values[i : i + n]
