"""Cameras that should have docked (issue 15 item 8): footage must be imported within 24 h
of the end of duty, so a camera checked out in the ledger that has not been docked for longer
than ``[daemon] dock_overdue_hours`` is overdue.

The rule, as a clerk reads it: a camera is overdue when it is checked out (its ledger entry
has started and not ended) and it has not been docked at any station for more than the limit,
counted from the end of its last dock (``closed_at``; a camera docked now is never overdue),
or from its checkout when it has not been docked since. Exactly the limit is not overdue yet.

``stretches`` is the pure rule over a window: every stretch of a checkout without a dock that
is longer than the limit (the monthly audit lists those of its month); ``overdue_now`` is the
ones still running at the window's end (`bwc status`). ``read`` loads its inputs from the
catalog: the ledger entries and the dock sessions (of every station) of their cameras.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, or_, select

from bwc.evidence.models import Assignment, DockSession


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


def read(s: Session, *, start: datetime, end: datetime) -> tuple[list[Checkout], list[Dock]]:
    """The ledger entries held at some time in [start, end] and the dock sessions of their
    cameras (any station) that ended after the earliest of those checkouts began."""
    rows = s.exec(
        select(Assignment)
        .where(col(Assignment.start) <= end)
        .where(or_(col(Assignment.end).is_(None), col(Assignment.end) > start))
    ).all()
    checkouts = [Checkout(a.device_id, a.officer_id, a.start, a.end) for a in rows]
    if not checkouts:
        return [], []
    earliest = min(c.start for c in checkouts)
    devices = sorted({c.device_id for c in checkouts})
    docks: list[Dock] = []
    for chunk in _chunks(devices, 500):
        docks += [
            Dock(d.device_id, d.first_seen, d.closed_at)
            for d in s.exec(
                select(DockSession)
                .where(col(DockSession.device_id).in_(chunk))
                .where(col(DockSession.first_seen) <= end)
                .where(
                    or_(col(DockSession.closed_at).is_(None), col(DockSession.closed_at) > earliest)
                )
            ).all()
            if d.device_id is not None
        ]
    return checkouts, docks


def _chunks(values: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), n):
        yield values[i : i + n]
