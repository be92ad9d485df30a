"""Roster management: officers who left (`bwc audit officers deactivate`), and the lists of
officers and of a month's cases (`bwc audit officers list`, `bwc audit cases list`).

An officer who left stays in the roster: the cases they worked still count (they did the
work), but from the date they left they are not current staff, so the equipage rate
(配备率) no longer counts them. Deactivating changes what the audit reports, so it is
logged as an `audit-input` event with the officer's new fact, like an import: `bwc audit
verify` (and every report) catches a row deactivated or reactivated behind bwc's back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from bwc.audit import catalog
from bwc.audit.metrics import check_scope
from bwc.audit.model import Officer, Period
from bwc.errors import NotFoundError, UsageError
from bwc.evidence import auditlog, custody
from bwc.evidence import models as db
from bwc.evidence.station import Station
from bwc.evidence.timefmt import format_utc
from bwc.evidence.verify.run import require_proven


def deactivate(
    station: Station, officer_id: str, reason: str, since: datetime | None
) -> db.Officer:
    """Mark an officer inactive from ``since`` (default: now, the station's clock), with a
    reason; logged in the same transaction. Refuses, changing nothing: an empty reason, an
    unknown officer, an officer already inactive."""
    reason = reason.strip()
    if not reason:
        raise UsageError("--reason is empty: say why the officer left (transfer, retirement...)")
    station.signer()  # an unknown or wrong key refuses before anything changes
    require_proven(station)  # never append to a log that does not verify
    with station.session() as s:
        custody.lock_head(s)  # two deactivations of one officer: the second sees the first
        o = s.get(db.Officer, officer_id)
        if o is None:
            raise NotFoundError(
                f"no officer {officer_id!r} in the roster",
                hint="`bwc audit officers list` shows the roster",
            )
        if not o.active:
            when = f" from {format_utc(o.inactive_from)}" if o.inactive_from else ""
            why = f" ({o.inactive_reason})" if o.inactive_reason else ""
            raise UsageError(
                f"officer {officer_id!r} is already inactive{when}{why}; nothing changed",
                hint="an `active` column of 是/yes in a roster import reactivates an officer",
            )
        o.active = False
        o.inactive_from = since or station.clock.now()
        o.inactive_reason = reason
        s.add(o)
        s.flush()
        custody.append_events(
            s,
            auditlog.events(
                station,
                "officers",
                [catalog.officer_fact_of(o)],
                source="deactivate",
                officer_id=officer_id,
                reason=reason,
                inactive_from=format_utc(o.inactive_from),
            ),
        )
        s.refresh(o)
        s.expunge(o)
    station.checkpoint()
    return o


def officers(
    s: Session, *, unit: str | None, county: str | None, inactive: bool
) -> list[db.Officer]:
    """The roster, by unit then officer id; ``inactive``: only officers marked inactive.
    An unknown unit or county is a UsageError naming the known ones."""
    o = db.Officer
    roster = list(s.exec(select(o).order_by(col(o.unit), col(o.officer_id))))
    check_scope(
        [Officer(r.officer_id, r.name, r.unit, r.county, r.frontline) for r in roster],
        unit,
        county,
    )
    return [
        r
        for r in roster
        if (unit is None or r.unit == unit)
        and (county is None or r.county == county)
        and (not inactive or not r.active)
    ]


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    category: str
    unit: str
    start: datetime
    end: datetime
    location: str
    officers: tuple[str, ...]


def month_cases(s: Session, period: Period, unit: str | None) -> list[CaseRow]:
    """The cases the audit of ``period`` counts (those starting in it), by start. ``unit``:
    cases of that unit (the case's own unit, or a roster officer on it of that unit, as
    `audit report --unit` counts them); an unknown unit is a UsageError naming the known
    ones."""
    m0, m1 = period.bounds()
    ec, co = db.EnforcementCase, db.CaseOfficer
    rows = list(
        s.exec(
            select(ec)
            .where(col(ec.start) >= m0)
            .where(col(ec.start) < m1)
            .order_by(col(ec.start), col(ec.case_id))
        )
    )
    members: dict[str, list[str]] = {}
    ids = [r.case_id for r in rows]
    for i in range(0, len(ids), 500):
        for cid, oid in s.exec(
            select(co.case_id, co.officer_id).where(col(co.case_id).in_(ids[i : i + 500]))
        ):
            members.setdefault(cid, []).append(oid)
    units_of: dict[str, str] = {}
    if unit is not None:
        roster = list(s.exec(select(db.Officer)))
        units_of = {o.officer_id: o.unit for o in roster}
        known = {o.unit for o in roster} | {r.unit for r in rows if r.unit}
        if unit not in known:
            check_scope(
                [Officer(o.officer_id, o.name, o.unit, o.county, o.frontline) for o in roster],
                unit,
                None,
            )
    out = []
    for r in rows:
        theirs = tuple(sorted(members.get(r.case_id, ())))
        if unit is not None and r.unit != unit and unit not in {units_of.get(o) for o in theirs}:
            continue
        out.append(CaseRow(r.case_id, r.category, r.unit, r.start, r.end, r.location, theirs))
    return out
