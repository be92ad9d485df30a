"""The device checkout ledger (officer X held camera Y from t1 to t2: footage is counted per
person, and cameras are shared) and measured device clock offsets. Every function takes a
Station and works in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bwc.config.limits import INT32_MAX, require_id
from bwc.errors import UsageError
from bwc.evidence import auditlog, custody
from bwc.evidence.models import Assignment, DeviceClock
from bwc.evidence.station import Station
from bwc.evidence.verify.run import require_proven


def assign(
    station: Station, officer: str, device: str, start: datetime, end: datetime | None
) -> Assignment:
    """Record that ``officer`` held ``device`` from ``start`` (to ``end``, None: still held);
    the same officer, device and start again updates the end."""
    require_id(officer, "OFFICER")
    require_id(device, "DEVICE")
    if end is not None and end <= start:
        raise UsageError("--to must be after --from")
    require_proven(station)  # never append to a log that does not verify
    with station.session() as s:
        row = s.exec(
            select(Assignment)
            .where(Assignment.officer_id == officer)
            .where(Assignment.device_id == device)
            .where(Assignment.start == start)
        ).first()
        if row is not None:
            row.end = end
        else:
            row = Assignment(
                officer_id=officer, device_id=device, start=start, end=end, source="cli"
            )
        s.add(row)
        # the ledger decides whose footage a clip is: logged, so the audit can check it
        fact = auditlog.assignment_fact(officer, device, start, end)
        custody.append_events(s, auditlog.events(station, "assignments", [fact], source="cli"))
    station.checkpoint()
    return row


@dataclass(frozen=True)
class Ledger:
    assignments: Sequence[Assignment]
    clocks: Sequence[DeviceClock]


def ledger(station: Station, device: str | None = None) -> Ledger:
    """The checkout ledger and clock checks, of one device or all, by device and time."""
    with station.session(snapshot=True) as s:
        q = select(Assignment).order_by(col(Assignment.device_id), col(Assignment.start))
        c = select(DeviceClock).order_by(col(DeviceClock.device_id), col(DeviceClock.measured_at))
        if device:
            q = q.where(Assignment.device_id == device)
            c = c.where(DeviceClock.device_id == device)
        return Ledger(list(s.exec(q)), list(s.exec(c)))


def record_clock(station: Station, device: str, offset_ms: int, at: datetime) -> DeviceClock:
    """A measured clock offset of ``device`` (device time minus true time, in ms)."""
    require_id(device, "DEVICE")
    if abs(offset_ms) > INT32_MAX:  # the catalog's INTEGER column: about 24.8 days
        raise UsageError(
            f"--offset {offset_ms:+d} ms is more than {INT32_MAX // 86_400_000} days",
            hint="set the camera's clock instead; nothing was changed",
        )
    row = DeviceClock(
        device_id=device, offset_ms=offset_ms, measured_at=at, recorded_by=station.actor
    )
    require_proven(station)  # never append to a log that does not verify
    with station.session() as s:
        s.add(row)
        s.flush()
        assert row.id is not None
        fact = auditlog.clock_fact(row.id, device, offset_ms, at)
        custody.append_events(s, auditlog.events(station, "clocks", [fact], source="cli"))
    station.checkpoint()
    return row
