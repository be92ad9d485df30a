"""The audit's catalog I/O: imports (all-or-nothing, idempotent), explanations, and reading
exactly the rows an audit needs. Every function takes a Session; none opens a connection.

Reading is the expensive part of an audit (millions of items), so clips come back as plain
tuples with times already converted to epoch milliseconds by the database (SQLite:
``julianday``; PostgreSQL: ``extract(epoch ...)``), streamed in batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, cast, delete, extract, func, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bwc.audit.model import (
    HOUR_MS,
    SECOND_MS,
    Assignment,
    Case,
    ClipRow,
    ClockMeasurement,
    Officer,
    Pair,
    Period,
    Rules,
    from_ms,
    to_ms,
)
from bwc.audit.parse import AssignmentIn, CaseIn, OfficerIn
from bwc.errors import NotFoundError, UsageError, VerificationError
from bwc.evidence import auditlog
from bwc.evidence import models as db
from bwc.evidence.events import decode_leaf
from bwc.evidence.manifest import parse_manifest
from bwc.evidence.timefmt import format_utc

# Clips are looked for from this long before the audited window: a single file (cameras
# split recordings into files of minutes) is not expected to be longer.
LOOKBACK_MS = 24 * HOUR_MS
_CHUNK = 500
_BATCH = 20_000
_SQLITE_CACHE_KIB = 64 * 1024
# julianday of the Unix epoch, in milliseconds
_JD_EPOCH_MS = 210_866_760_000_000

T = TypeVar("T")


def _chunks(seq: Sequence[T], n: int = _CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


@dataclass(frozen=True)
class ImportCounts:
    new: int
    changed: int
    unchanged: int

    def text(self, what: str) -> str:
        return f"{what}: {self.new} new, {self.changed} changed, {self.unchanged} unchanged"


# ------------------------------------------------------------------------------ imports


_OFFICER_FIELDS = (
    "name",
    "unit",
    "county",
    "frontline",
    "active",
    "inactive_from",
    "inactive_reason",
)
_FACT_FIELDS = ("officer_id", *_OFFICER_FIELDS)


def _officer_values(r: OfficerIn, old: db.Officer | None) -> dict[str, Any]:
    """The row an imported officer becomes. Without an ``active`` value a new officer is
    active and a known one keeps its state (a monthly roster must not bring back officers
    deactivated with a date and a reason); ``active`` yes reactivates; no keeps an earlier
    deactivation's date and reason, else marks the officer inactive with no date."""
    if r.active is None and old is not None:
        state: tuple[bool, datetime | None, str | None] = (
            old.active,
            old.inactive_from,
            old.inactive_reason,
        )
    elif r.active is False and old is not None and not old.active:
        state = (False, old.inactive_from, old.inactive_reason)
    else:
        state = (r.active is not False, None, None)
    return {
        "officer_id": r.officer_id,
        "name": r.name,
        "unit": r.unit,
        "county": r.county,
        "frontline": r.frontline,
        "active": state[0],
        "inactive_from": state[1],
        "inactive_reason": state[2],
    }


def officer_of(o: db.Officer) -> Officer:
    """A roster row as the engine sees it."""
    since = None if o.inactive_from is None else to_ms(o.inactive_from)
    return Officer(o.officer_id, o.name, o.unit, o.county, o.frontline, o.active, since)


def officer_fact_of(v: dict[str, Any] | db.Officer) -> auditlog.Fact:
    """An officer row (or the values it is written from) as the custody log records it."""
    d: dict[str, Any] = v if isinstance(v, dict) else {f: getattr(v, f) for f in _FACT_FIELDS}
    return auditlog.officer_fact(*(d[f] for f in _FACT_FIELDS))


def import_officers(
    s: Session, rows: Sequence[OfficerIn]
) -> tuple[ImportCounts, list[auditlog.Fact]]:
    """Upsert the roster by officer id (officers not in the file are kept): the counts, and
    the officers' facts as written (for the custody log)."""
    existing: dict[str, db.Officer] = {}
    for chunk in _chunks([r.officer_id for r in rows]):
        for o in s.exec(select(db.Officer).where(col(db.Officer.officer_id).in_(chunk))):
            existing[o.officer_id] = o
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    facts: list[auditlog.Fact] = []
    for r in rows:
        old = existing.get(r.officer_id)
        values = _officer_values(r, old)
        facts.append(officer_fact_of(values))
        if old is None:
            new.append(values)
        elif tuple(getattr(old, f) for f in _OFFICER_FIELDS) != tuple(
            values[f] for f in _OFFICER_FIELDS
        ):
            changed.append(values)
    if new:
        s.execute(insert(db.Officer), new)
    if changed:
        s.execute(update(db.Officer), changed)
    counts = ImportCounts(len(new), len(changed), len(rows) - len(new) - len(changed))
    return counts, facts


def import_cases(s: Session, rows: Sequence[CaseIn]) -> ImportCounts:
    """Upsert cases by case id; a changed case gets its officer list replaced."""
    existing: dict[str, tuple[Any, ...]] = {}
    ids = [r.case_id for r in rows]
    for chunk in _chunks(ids):
        for c in s.exec(
            select(db.EnforcementCase).where(col(db.EnforcementCase.case_id).in_(chunk))
        ):
            existing[c.case_id] = (c.category, c.unit, c.start, c.end, c.location)
    members: dict[str, set[str]] = {}
    for chunk in _chunks([i for i in ids if i in existing]):
        for cid, oid in s.exec(
            select(db.CaseOfficer.case_id, db.CaseOfficer.officer_id).where(
                col(db.CaseOfficer.case_id).in_(chunk)
            )
        ):
            members.setdefault(cid, set()).add(oid)
    new: list[CaseIn] = []
    changed: list[CaseIn] = []
    for r in rows:
        old = existing.get(r.case_id)
        if old is None:
            new.append(r)
        elif old != (r.category, r.unit, r.start, r.end, r.location) or members.get(
            r.case_id, set()
        ) != set(r.officers):
            changed.append(r)

    def values(r: CaseIn) -> dict[str, Any]:
        return {
            "case_id": r.case_id,
            "category": r.category,
            "unit": r.unit,
            "start": r.start,
            "end": r.end,
            "location": r.location,
        }

    for chunk in _chunks([r.case_id for r in changed]):
        s.execute(delete(db.CaseOfficer).where(col(db.CaseOfficer.case_id).in_(chunk)))
    if changed:
        s.execute(update(db.EnforcementCase), [values(r) for r in changed])
    if new:
        s.execute(insert(db.EnforcementCase), [values(r) for r in new])
    links = [{"case_id": r.case_id, "officer_id": o} for r in (*new, *changed) for o in r.officers]
    if links:
        s.execute(insert(db.CaseOfficer), links)
    return ImportCounts(len(new), len(changed), len(rows) - len(new) - len(changed))


def import_assignments(
    s: Session, rows: Sequence[AssignmentIn], *, source: str = "import"
) -> ImportCounts:
    """Upsert ledger rows by (officer, device, start): the same ledger `bwc devices assign`
    writes. A row already there gets its end updated."""
    existing: dict[tuple[str, str, datetime], tuple[int | None, datetime | None]] = {}
    for chunk in _chunks(sorted({r.officer_id for r in rows})):
        for a in s.exec(select(db.Assignment).where(col(db.Assignment.officer_id).in_(chunk))):
            existing[(a.officer_id, a.device_id, a.start)] = (a.id, a.end)
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for r in rows:
        old = existing.get((r.officer_id, r.device_id, r.start))
        if old is None:
            new.append(
                {
                    "officer_id": r.officer_id,
                    "device_id": r.device_id,
                    "start": r.start,
                    "end": r.end,
                    "source": source,
                }
            )
        elif old[1] != r.end:
            changed.append({"id": old[0], "end": r.end})
    if new:
        s.execute(insert(db.Assignment), new)
    if changed:
        s.execute(update(db.Assignment), changed)
    return ImportCounts(len(new), len(changed), len(rows) - len(new) - len(changed))


# ------------------------------------------------------------------------------ explanations


def find_case(s: Session, case_id: str) -> tuple[db.EnforcementCase, list[str]]:
    c = s.get(db.EnforcementCase, case_id)
    if c is None:
        raise NotFoundError(f"no case {case_id!r}", hint="import it with `bwc audit import cases`")
    officers = sorted(
        s.exec(select(db.CaseOfficer.officer_id).where(db.CaseOfficer.case_id == case_id))
    )
    return c, officers


def add_explanation(
    s: Session,
    case_id: str,
    officer_id: str,
    reason: str,
    *,
    actor: str,
    station_id: str,
    at: datetime,
) -> db.Explanation:
    if not reason.strip():
        raise UsageError("--reason is empty: say why the recording is incomplete")
    _c, officers = find_case(s, case_id)
    if officer_id not in officers:
        raise NotFoundError(
            f"officer {officer_id!r} is not on case {case_id!r}",
            hint=f"officers on it: {', '.join(officers)}",
        )
    row = db.Explanation(
        case_id=case_id,
        officer_id=officer_id,
        reason=reason.strip(),
        actor=actor,
        station_id=station_id,
        at=at,
    )
    s.add(row)
    s.flush()
    return row


def review_explanation(
    s: Session,
    case_id: str,
    officer_id: str,
    *,
    approve: bool,
    by: str,
    reason: str | None,
    at: datetime,
) -> db.Explanation:
    """Approve or reject the pair's explanation awaiting review (the latest submitted one).
    Refuses, changing nothing: an empty ``by``, a rejection without a reason, an unknown case
    or officer, no explanation, or none awaiting review (approving twice)."""
    by = by.strip()
    reason = (reason or "").strip() or None
    if not by:
        raise UsageError("--by is empty: name the supervisor who reviewed the explanation")
    if not approve and reason is None:
        raise UsageError("--reject needs --reason: say why the explanation is not accepted")
    _c, officers = find_case(s, case_id)
    if officer_id not in officers:
        raise NotFoundError(
            f"officer {officer_id!r} is not on case {case_id!r}",
            hint=f"officers on it: {', '.join(officers)}",
        )
    rows = [e for e in explanations_of(s, case_id) if e.officer_id == officer_id]
    if not rows:
        raise NotFoundError(
            f"no explanation for case {case_id!r}, officer {officer_id!r}",
            hint="one is submitted with `bwc audit explain`",
        )
    pending = [e for e in rows if e.status == "submitted"]
    if not pending:
        last = rows[-1]
        when = format_utc(last.reviewed_at) if last.reviewed_at else "?"
        raise UsageError(
            f"the explanation for case {case_id!r}, officer {officer_id!r} was already "
            f"{last.status} by {last.reviewed_by} at {when}: none awaits review",
            hint="a new explanation is submitted with `bwc audit explain`",
        )
    row = pending[-1]
    row.status = "approved" if approve else "rejected"
    row.reviewed_by = by
    row.review_reason = reason
    row.reviewed_at = at
    s.add(row)
    s.flush()
    return row


def explanation_states(s: Session, period: Period) -> dict[Pair, str]:
    """Per pair of a case starting in ``period`` that has explanations, where they stand:
    "approved" if any is, else the latest one's status ("submitted" or "rejected")."""
    m0, m1 = period.bounds_ms()
    ec, ex = db.EnforcementCase, db.Explanation
    out: dict[Pair, str] = {}
    for cid, oid, status in s.exec(
        select(ex.case_id, ex.officer_id, ex.status)
        .join(ec, col(ec.case_id) == col(ex.case_id))
        .where(col(ec.start) >= from_ms(m0))
        .where(col(ec.start) < from_ms(m1))
        .order_by(col(ex.at), col(ex.id))
    ):
        if out.get((cid, oid)) != "approved":
            out[(cid, oid)] = status
    return out


def explanations_of(s: Session, case_id: str) -> list[db.Explanation]:
    return list(
        s.exec(
            select(db.Explanation)
            .where(db.Explanation.case_id == case_id)
            .order_by(col(db.Explanation.at), col(db.Explanation.id))
        )
    )


# ------------------------------------------------------------------------------ reading


def _ms(dialect: str, column: Any) -> ColumnElement[int] | None:
    """A SQL expression for ``column`` as epoch milliseconds, or None (convert in Python)."""
    if dialect == "sqlite":
        # julianday is always positive: adding 0.5 and truncating rounds to the nearest ms
        return cast(func.julianday(column) * 86_400_000.0 + 0.5, BigInteger) - _JD_EPOCH_MS
    if dialect == "postgresql":
        return cast(func.round(extract("epoch", column) * 1000), BigInteger)
    return None


def _max_abs_offset(s: Session) -> int:
    v = s.exec(select(func.max(func.abs(db.DeviceClock.offset_ms)))).one()
    return int(v or 0)


def _rows(
    s: Session,
    columns: Sequence[Any],
    times: Sequence[Any],
    where: Sequence[Any],
    group_by: Sequence[Any] = (),
) -> Iterator[tuple[Any, ...]]:
    """Stream rows of ``columns`` followed by ``times`` as epoch ms (None stays None)."""
    for batch in _batches(s, columns, times, where, group_by):
        yield from batch


def _batches(
    s: Session,
    columns: Sequence[Any],
    times: Sequence[Any],
    where: Sequence[Any],
    group_by: Sequence[Any] = (),
) -> Iterator[Sequence[tuple[Any, ...]]]:
    """``_rows`` in lists of up to _BATCH rows."""
    dialect = s.get_bind().dialect.name
    exprs = [_ms(dialect, c) for c in times]
    native = all(e is not None for e in exprs)
    stmt = sa_select(*columns, *(exprs if native else times)).where(*where).group_by(*group_by)
    if native and dialect == "sqlite":
        # The hot path: rows straight from the DBAPI cursor, skipping SQLAlchemy's Row
        # objects (the columns need no result processing: text and integers). A month of
        # items is read through the recorded_start index, row by row from the table: a page
        # cache larger than SQLite's 2 MB default keeps it from reading pages over again.
        conn = s.connection()
        old = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")
        raw = conn.execute(stmt)
        try:
            cursor = raw.cursor
            while batch := cursor.fetchmany(_BATCH):
                yield batch
        finally:
            raw.close()
            conn.exec_driver_sql(f"PRAGMA cache_size = {int(old or -2000)}")
        return
    result = s.connection().execution_options(yield_per=_BATCH).execute(stmt)
    n = len(columns)
    for part in result.partitions():
        if native:
            yield [tuple(row) for row in part]
        else:
            yield [(*row[:n], *(None if t is None else to_ms(t) for t in row[n:])) for row in part]


def _clips(
    s: Session, lo_dev: int, hi_dev: int, leading: Sequence[Any] = ()
) -> Iterator[Sequence[tuple[Any, ...]]]:
    """Items recorded (device time) in [lo_dev − LOOKBACK, hi_dev) still running at lo_dev,
    as batches of ``(*leading, officer_id, device_id, start, end, ingested)``."""
    it = db.Item
    start_c, end_c = col(it.recorded_start), col(it.recorded_end)
    return _batches(
        s,
        [*leading, col(it.officer_id), col(it.device_id)],
        [start_c, end_c, col(it.ingested_at)],
        [
            start_c >= from_ms(lo_dev - LOOKBACK_MS),
            start_c < from_ms(hi_dev),
            func.coalesce(end_c, start_c) >= from_ms(lo_dev),
        ],
    )


def _assignments(s: Session, lo: int, hi: int) -> list[Assignment]:
    a = db.Assignment
    rows = sorted(
        _rows(
            s,
            [col(a.id), col(a.officer_id), col(a.device_id)],
            [col(a.start), col(a.end)],
            [col(a.start) < from_ms(hi), col(a.end).is_(None) | (col(a.end) > from_ms(lo))],
        )
    )
    return [Assignment(o, d, st, en) for _id, o, d, st, en in rows]


def _clocks(s: Session, lo: int, hi: int) -> list[ClockMeasurement]:
    """Measurements in [lo, hi) plus, per device, the last before and the first after: all
    that "nearest measurement" can pick for a clip recorded in [lo, hi)."""
    dc = db.DeviceClock
    lo_dt, hi_dt = from_ms(lo), from_ms(hi)
    before = (
        select(dc.device_id, func.max(dc.measured_at).label("t"))
        .where(col(dc.measured_at) < lo_dt)
        .group_by(col(dc.device_id))
        .subquery()
    )
    after = (
        select(dc.device_id, func.min(dc.measured_at).label("t"))
        .where(col(dc.measured_at) >= hi_dt)
        .group_by(col(dc.device_id))
        .subquery()
    )
    out: list[ClockMeasurement] = []
    queries = [
        select(dc.device_id, dc.offset_ms, dc.measured_at, dc.id).where(
            col(dc.measured_at) >= lo_dt, col(dc.measured_at) < hi_dt
        ),
        *(
            select(dc.device_id, dc.offset_ms, dc.measured_at, dc.id).join(
                sub,
                (col(dc.device_id) == sub.c.device_id) & (col(dc.measured_at) == sub.c.t),
            )
            for sub in (before, after)
        ),
    ]
    rows: list[Any] = []
    for q in queries:
        rows.extend(s.exec(q).all())
    rows.sort(key=lambda r: r[3])  # input order: by id (a re-measurement replaces)
    for dev, off, at, _id in rows:
        out.append(ClockMeasurement(dev, int(off), to_ms(at)))
    return out


_SEP = "\x1f"  # joins officer ids in SQL: ids hold no control characters (imports refuse them)


def _cases(s: Session, where: Sequence[Any]) -> list[Case]:
    """Cases with their officers, one row per case (officer ids joined by the database)."""
    ec, co = db.EnforcementCase, db.CaseOfficer
    dialect = s.get_bind().dialect.name
    if dialect == "sqlite":
        officers: Any = func.group_concat(col(co.officer_id), _SEP)
    elif dialect == "postgresql":
        officers = func.string_agg(col(co.officer_id), _SEP)
    else:
        officers = None
    same: dict[str, str] = {}  # one string object per distinct category/unit/location
    if officers is not None:
        rows: Iterable[tuple[Any, ...]] = _rows(
            s,
            [col(ec.case_id), col(ec.category), col(ec.unit), col(ec.location), officers],
            [col(ec.start), col(ec.end)],
            [col(ec.case_id) == col(co.case_id), *where],
            group_by=[col(ec.case_id)],
        )
        return [
            Case(
                cid,
                same.setdefault(cat, cat),
                same.setdefault(unit, unit),
                st,
                en,
                same.setdefault(loc, loc),
                tuple(ids.split(_SEP)),
            )
            for cid, cat, unit, loc, ids, st, en in rows
        ]
    members: dict[str, list[str]] = {}
    for cid, oid in _rows(
        s, [col(co.case_id), col(co.officer_id)], [], [col(ec.case_id) == col(co.case_id), *where]
    ):
        members.setdefault(cid, []).append(oid)
    return [
        Case(cid, cat, unit, st, en, loc, tuple(members.get(cid, ())))
        for cid, cat, unit, loc, st, en in _rows(
            s,
            [col(ec.case_id), col(ec.category), col(ec.unit), col(ec.location)],
            [col(ec.start), col(ec.end)],
            where,
        )
    ]


@dataclass
class AuditInputs:
    """Everything an audit of one month reads. ``clip_batches`` is a lazy cursor: consume
    it inside the session it came from."""

    officers: list[Officer]
    cases: list[Case]
    assignments: list[Assignment]
    clocks: list[ClockMeasurement]
    explanations: set[Pair]
    clip_batches: Iterable[Sequence[ClipRow]]
    undated: int  # items ingested in the month with no recorded time: not placeable


def month_cases(period: Period, first: Period | None = None) -> list[ColumnElement[bool]]:
    """The cases an audit of ``period`` reads: those overlapping the month (``first``: an
    earlier month also audited, e.g. for the comparison; the months from it on)."""
    m0, m1 = (first or period).bounds_ms()[0], period.bounds_ms()[1]
    ec = db.EnforcementCase
    return [col(ec.end) > from_ms(m0), col(ec.start) < from_ms(m1)]


def read_inputs(s: Session, period: Period, rules: Rules) -> AuditInputs:
    m0, m1 = period.bounds_ms()
    m0_dt, m1_dt = from_ms(m0), from_ms(m1)
    officers = [
        officer_of(o) for o in s.exec(select(db.Officer).order_by(col(db.Officer.officer_id)))
    ]
    ec = db.EnforcementCase
    # cases overlapping the month: those starting in it are audited; the others only mark
    # footage at the month's start as recorded during a case
    cases = _cases(s, month_cases(period))
    ex = db.Explanation
    explanations: set[Pair] = {
        (cid, oid)
        for cid, oid in s.exec(
            select(ex.case_id, ex.officer_id)
            .join(ec, col(ec.case_id) == col(ex.case_id))
            .where(col(ex.status) == "approved")  # only approved explanations count
            .where(col(ec.start) >= m0_dt)
            .where(col(ec.start) < m1_dt)
        )
    }
    # the window clips matter in (true time): from the month (or a case) start minus the
    # merge gap, to the month end or the last case's end
    lo = m0 - rules.max_gap_ms - SECOND_MS
    hi = max([m1, *(c.end for c in cases if c.start >= m0)])
    maxoff = _max_abs_offset(s)
    lo_dev, hi_dev = lo - maxoff, hi + maxoff
    undated = s.exec(
        select(func.count())
        .select_from(db.Item)
        .where(col(db.Item.recorded_start).is_(None))
        .where(col(db.Item.ingested_at) >= m0_dt)
        .where(col(db.Item.ingested_at) < m1_dt)
    ).one()
    return AuditInputs(
        officers=officers,
        cases=cases,
        assignments=_assignments(s, lo_dev - LOOKBACK_MS - maxoff, hi_dev + maxoff),
        clocks=_clocks(s, lo_dev - LOOKBACK_MS, hi_dev),
        explanations=explanations,
        clip_batches=_clips(s, lo_dev, hi_dev),
        undated=int(undated),
    )


@dataclass
class CaseInputs:
    case: Case
    roster: dict[str, Officer]
    clips: list[tuple[str, ClipRow]]  # (sha256, clip)
    assignments: list[Assignment]
    clocks: list[ClockMeasurement]
    explanations: list[db.Explanation]


def read_case(s: Session, case_id: str, rules: Rules) -> CaseInputs:
    row, officers = find_case(s, case_id)
    case = Case(
        row.case_id,
        row.category,
        row.unit,
        to_ms(row.start),
        to_ms(row.end),
        row.location,
        tuple(officers),
    )
    roster = {
        o.officer_id: officer_of(o)
        for o in s.exec(select(db.Officer).where(col(db.Officer.officer_id).in_(officers)))
    }
    lo = case.start - rules.max_gap_ms - SECOND_MS
    maxoff = _max_abs_offset(s)
    lo_dev, hi_dev = lo - maxoff, case.end + maxoff
    clips = [
        (r[0], (r[1], r[2], r[3], r[4], r[5]))
        for batch in _clips(s, lo_dev, hi_dev, leading=[col(db.Item.sha256)])
        for r in batch
    ]
    return CaseInputs(
        case=case,
        roster=roster,
        clips=clips,
        assignments=_assignments(s, lo_dev - LOOKBACK_MS - maxoff, hi_dev + maxoff),
        clocks=_clocks(s, lo_dev - LOOKBACK_MS, hi_dev),
        explanations=explanations_of(s, case_id),
    )


def attribution_sources(s: Session, shas: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Where each item's officer came from, for ``bwc audit case``: (source, actor). The
    latest ``attributed`` custody event wins ("attributed", its actor); else the signed
    manifest's ``officer_source`` ("file-name", "id-file", "ingest-operator",
    "ledger-at-ingest"); "unknown" when the manifest does not say (or cannot be read)."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    out: dict[str, tuple[str, str | None]] = {}
    for sha, manifest in s.exec(
        select(db.Item.sha256, db.Item.manifest).where(col(db.Item.sha256).in_(wanted))
    ):
        try:
            source = parse_manifest(manifest).officer_source
        except VerificationError:
            source = None
        out[sha] = (_MANIFEST_SOURCES.get(source or "", "unknown"), None)
    ev = db.Event
    for leaf in s.exec(
        select(ev.leaf)
        .where(col(ev.kind) == "attributed")
        .where(col(ev.item_sha256).in_(wanted))
        .order_by(col(ev.idx))
    ):
        d = decode_leaf(leaf)
        if d.item_sha256 is not None:
            out[d.item_sha256] = ("attributed", d.actor)
    return out


# the manifest's officer_source, as `audit case` names it
_MANIFEST_SOURCES = {
    "profile": "file-name",
    "id-file": "id-file",
    "operator": "ingest-operator",
    "ledger": "ledger-at-ingest",
}
