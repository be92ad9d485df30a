"""The audit's inputs in the custody log: the roster, cases (with their officers), the device
checkout ledger, clock checks and explanations change what the monthly audit reports, so
every row bwc writes to them is logged as a custody event, and a report checks the catalog's
rows against the signed log before it counts them (DESIGN invariant 4: a catalog row is a
cache, never the authority).

Each row is one *fact*: a key (what identifies the row) and a digest of the values the audit
uses (SHA-256 of their canonical JSON, 128 bits kept). An `audit-input` event carries the
facts of one write (an import file, in parts that fit a log entry, with the file's SHA-256
and row count; one `bwc devices assign` / `clock`; a `bwc audit seal`); an `explained` event
is the fact of one explanation, and an `explanation-reviewed` event (`bwc audit approve`)
replaces it with the fact of the explanation as approved or rejected. Folding the proven
events in log order gives what each table should hold; the check compares it with every row
the catalog holds, and names rows changed, added or deleted outside bwc.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, not_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bwc.evidence import custody, trust
from bwc.evidence import models as db
from bwc.evidence.events import DecodedEvent, decode_leaf
from bwc.evidence.station import Station
from bwc.evidence.timefmt import format_utc
from bwc.evidence.tlog import TileError
from bwc.evidence.verify import catalog
from bwc.evidence.verify.core import LoggedEvent, inclusion_problem
from bwc.evidence.verify.run import require_proven

KIND = "audit-input"
TABLES = ("officers", "cases", "assignments", "clocks", "explanations")
_PART_BYTES = 48_000  # facts per event: well under a log entry's 64 KiB
_SHOWN = 5  # rows named per table in a report of unverified inputs

Fact = tuple[str, str | None]  # key, digest (None: the row is gone, `audit seal` only)


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def digest(values: Sequence[object]) -> str:
    # plain JSON of a list of strings, numbers, booleans and nulls is one text per value;
    # RFC 8785's checks cost more than the rest of the audit's check (only bwc reads these)
    return hashlib.sha256(_json(list(values)).encode("utf-8")).hexdigest()[:32]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _t(dt: datetime | None) -> int | None:
    """A time as integer microseconds since the epoch (exact, and cheap to compute)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        raise ValueError("naive datetime: all bwc times must carry a time zone")
    return (dt - _EPOCH) // _US


def officer_fact(
    officer_id: str,
    name: str,
    unit: str,
    county: str,
    frontline: bool,
    active: bool = True,
    inactive_from: datetime | None = None,
    inactive_reason: str | None = None,
) -> Fact:
    """An active officer digests as before officers could leave (facts logged then still
    verify); an inactive one also digests since when and why, so a row deactivated (or
    reactivated) without its logged event does not verify."""
    values: list[object] = [name, unit, county, bool(frontline)]
    if not active or inactive_from is not None or inactive_reason is not None:
        values += [bool(active), _t(inactive_from), inactive_reason]
    return officer_id, digest(values)


def case_fact(
    case_id: str,
    category: str,
    unit: str,
    start: datetime,
    end: datetime,
    location: str,
    officers: Iterable[str],
) -> Fact:
    return case_id, digest([category, unit, _t(start), _t(end), location, sorted(set(officers))])


def assignment_fact(officer_id: str, device_id: str, start: datetime, end: datetime | None) -> Fact:
    key = json.dumps([officer_id, device_id, format_utc(start)], ensure_ascii=False)
    return key, digest([_t(end)])


def clock_fact(row_id: int, device_id: str, offset_ms: int, measured_at: datetime) -> Fact:
    return str(row_id), digest([device_id, int(offset_ms), _t(measured_at)])


REVIEWED = "explanation-reviewed"


def explanation_fact(
    row_id: int,
    case_id: str,
    officer_id: str,
    reason: str,
    status: str = "submitted",
    reviewed_by: str | None = None,
    review_reason: str | None = None,
) -> Fact:
    """A submitted explanation digests as it always has (facts logged before reviews existed
    still verify); a reviewed one also digests its decision, who made it and why, so an
    approval written without its `explanation-reviewed` event does not verify."""
    values: list[object] = [case_id, officer_id, reason.strip()]
    if status != "submitted":
        values += [status, reviewed_by, review_reason]
    return str(row_id), digest(values)


def events(
    station: Station,
    table: str,
    facts: Sequence[Fact],
    *,
    source: str,
    file_sha256: str | None = None,
    rows: int | None = None,
    **extra: object,
) -> list[custody.NewEvent]:
    """The `audit-input` events of one write: its facts in parts that fit a log entry
    (``extra``: more details for each part, e.g. why an officer was deactivated)."""
    parts: list[list[list[object]]] = [[]]
    size = 0
    for key, dig in facts:
        cost = len(key.encode("utf-8")) * 2 + 48  # JSON escaping at worst doubles it
        if parts[-1] and size + cost > _PART_BYTES:
            parts.append([])
            size = 0
        parts[-1].append([key, dig])
        size += cost
    out = []
    for i, part in enumerate(parts):
        details: dict[str, object] = {
            "table": table,
            "source": source,
            "rows": len(facts) if rows is None else rows,
            "part": i + 1,
            "parts": len(parts),
            "facts": part,
        }
        if file_sha256 is not None:
            details["file_sha256"] = file_sha256
        details.update(extra)
        out.append(station.event(KIND, None, **details))
    return out


# ---------------------------------------------------------------------------- the catalog


def _stream(s: Session, q: Any) -> Iterator[Any]:
    """Rows in batches, without changing the session's connection options (the audit's
    own reads that follow set theirs)."""
    yield from s.execute(q, execution_options={"yield_per": 5000})


def catalog_facts(
    s: Session, table: str, cases_where: Sequence[Any] | None = None
) -> Iterator[Fact]:
    """Every row of ``table`` in the catalog as a fact (streamed). ``cases_where``: only the
    cases it selects (what an audit reads) are digested; the others come with a None digest,
    checked for being there, not for their values (they cannot change this report)."""
    if table == "officers":
        o = db.Officer
        q = sa_select(  # type: ignore[call-overload]
            o.officer_id,
            o.name,
            o.unit,
            o.county,
            o.frontline,
            o.active,
            o.inactive_from,
            o.inactive_reason,
        )
        for r in _stream(s, q):
            yield officer_fact(*r)
    elif table == "cases":
        ec, co = db.EnforcementCase, db.CaseOfficer
        where = list(cases_where) if cases_where is not None else []
        members: dict[str, list[str]] = {}
        mq = sa_select(co.case_id, co.officer_id)  # type: ignore[call-overload]
        if where:
            mq = mq.join(ec, col(ec.case_id) == col(co.case_id)).where(*where)
        for cid, oid in s.connection().execute(mq):
            members.setdefault(cid, []).append(oid)
        q = sa_select(ec.case_id, ec.category, ec.unit, ec.start, ec.end, ec.location)  # type: ignore[call-overload]
        for cid, cat, unit, st, en, loc in _stream(s, q.where(*where)):
            yield case_fact(cid, cat, unit, st, en, loc, members.pop(cid, ()))
        if where:
            for (cid,) in _stream(s, sa_select(ec.case_id).where(not_(and_(*where)))):  # type: ignore[call-overload]
                yield cid, None
        else:
            for cid in members:  # officers of a case that is not there
                yield cid, digest(["officers without a case"])
    elif table == "assignments":
        a = db.Assignment
        q = sa_select(a.officer_id, a.device_id, a.start, a.end)  # type: ignore[call-overload]
        for r in _stream(s, q):
            yield assignment_fact(*r)
    elif table == "clocks":
        c = db.DeviceClock
        q = sa_select(c.id, c.device_id, c.offset_ms, c.measured_at)  # type: ignore[call-overload]
        for r in _stream(s, q):
            yield clock_fact(*r)
    else:
        e = db.Explanation
        q = sa_select(  # type: ignore[call-overload]
            e.id, e.case_id, e.officer_id, e.reason, e.status, e.reviewed_by, e.review_reason
        )
        for r in _stream(s, q):
            yield explanation_fact(*r)


# ---------------------------------------------------------------------------- the check


@dataclass
class InputCheck:
    """What the audit's inputs look like against the custody log."""

    problems: list[str] = field(default_factory=list)  # the log, or an input event in it
    unverified: dict[str, int] = field(default_factory=dict)  # table -> rows
    examples: dict[str, list[str]] = field(default_factory=dict)  # table -> a few, named
    checked: dict[str, int] = field(default_factory=dict)  # table -> rows that verified

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unverified

    def lines(self) -> list[str]:
        """One line per problem: the log's first, then one per table."""
        out = list(self.problems[:_SHOWN])
        if len(self.problems) > _SHOWN:
            out.append(f"... and {len(self.problems) - _SHOWN} more problem(s) with the log")
        for table in TABLES:
            n = self.unverified.get(table, 0)
            if n:
                shown = "; ".join(self.examples.get(table, []))
                out.append(f"{table}: {n} row(s) not as the custody log records them ({shown})")
        return out

    def _bad(self, table: str, what: str) -> None:
        self.unverified[table] = self.unverified.get(table, 0) + 1
        ex = self.examples.setdefault(table, [])
        if len(ex) < _SHOWN:
            ex.append(what)


def _input_events(s: Session) -> Iterator[db.Event]:
    """The events that record audit inputs, in log order. They carry no item, so the item
    index narrows the read to events without one."""
    ev = db.Event
    q = (
        select(ev)
        .where(col(ev.item_sha256).is_(None))
        .where(col(ev.kind).in_((KIND, "explained", REVIEWED)))
        .order_by(col(ev.idx))
    )
    yield from s.exec(q)


def fold(leaves: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, str]]:
    """What each table should hold, from the input events (kind, details) in log order."""
    want: dict[str, dict[str, str]] = {t: {} for t in TABLES}
    submitted: dict[int, tuple[str, str, str]] = {}  # explanation id -> case, officer, reason
    for kind, d in leaves:
        if kind in ("explained", REVIEWED):
            rid, cid, oid = d.get("explanation_id"), d.get("case_id"), d.get("officer_id")
            if not (isinstance(rid, int) and isinstance(cid, str) and isinstance(oid, str)):
                continue
            if kind == "explained":
                submitted[rid] = (cid, oid, str(d.get("reason", "")))
                key, dig = explanation_fact(rid, *submitted[rid])
            elif submitted.get(rid, ("", "", ""))[:2] == (cid, oid):
                # a review of an explanation the log has, for the same pair: its decision
                by, why = d.get("by"), d.get("reason")
                key, dig = explanation_fact(
                    rid,
                    *submitted[rid],
                    status=str(d.get("decision", "")),
                    reviewed_by=by if isinstance(by, str) else None,
                    review_reason=why if isinstance(why, str) else None,
                )
            else:
                continue  # a review of nothing logged: the row cannot match it
            want["explanations"][key] = dig or ""
            continue
        table = d.get("table")
        facts = d.get("facts")
        if table not in want or not isinstance(facts, list):
            continue
        into = want[str(table)]
        for f in facts:
            if isinstance(f, list) and len(f) == 2 and isinstance(f[0], str):
                if f[1] is None:
                    into.pop(f[0], None)
                elif isinstance(f[1], str):
                    into[f[0]] = f[1]
    return want


def _proven(ev: db.Event, t: catalog.Trust) -> tuple[str, DecodedEvent | None]:
    """One input event: its leaf decoded, at its own index, and proven in the trusted
    checkpoint (which binds its bytes and index); else why not. The leaf's kind is what
    counts, not the catalog's column."""
    cp = t.log.checkpoint
    label = f"custody event #{ev.idx} ({ev.kind})"
    try:
        dec = decode_leaf(ev.leaf)
    except ValueError as e:
        return f"{label}: {e}", None
    if dec.index != ev.idx:
        return f"{label} holds the leaf of event #{dec.index} (events reordered)", None
    if cp is None or t.tree is None:
        return f"{label}: no signed checkpoint to prove it against", None
    if ev.idx >= min(cp.size, t.tree.size):
        return f"{label} is not yet covered by a signed checkpoint (run `bwc log checkpoint`)", None
    try:
        proof: list[bytes] | None = t.tree.inclusion_proof(ev.idx, cp.size)
    except (TileError, ValueError):
        proof = None
    why = inclusion_problem(LoggedEvent(ev.idx, ev.leaf, proof), cp, t.log)
    return (why, None) if why else ("", dec)


def check_inputs(
    s: Session, station: Station, *, cases_where: Sequence[Any] | None = None
) -> InputCheck:
    """The audit's input tables against the custody log: the latest signed checkpoint
    verified (O(log n)), every input event proven in it, their facts folded, and every row
    of the five tables compared with them (of the cases, only those ``cases_where`` selects
    are compared by value; the others must be there and logged)."""
    out = InputCheck()
    t = catalog.trust_latest(s, station.store, trust.load(station.settings.home))
    out.problems.extend(t.log.problems)
    leaves: list[tuple[str, dict[str, Any]]] = []
    for ev in _input_events(s):
        why, dec = _proven(ev, t)
        if dec is None:
            out.problems.append(why)
        else:
            leaves.append((dec.kind, dec.details))
    want = fold(leaves)
    for table in TABLES:
        expected = want[table]
        seen = 0
        for key, dig in catalog_facts(s, table, cases_where):
            logged_dig = expected.pop(key, None)
            if logged_dig is None:
                out._bad(table, f"{key} is not in the log (added outside bwc?)")
            elif dig is None:
                continue  # outside what is audited: there, and logged
            elif logged_dig != dig:
                out._bad(table, f"{key} differs from the log (changed outside bwc?)")
            else:
                seen += 1
        for key in expected:
            out._bad(table, f"{key} is in the log but not in the catalog (deleted?)")
        out.checked[table] = seen
    return out


# ---------------------------------------------------------------------------- sealing


def seal(station: Station) -> dict[str, tuple[int, int, int]]:
    """Log the audit inputs as the catalog holds them now, where the log does not already
    say so (a catalog from before inputs were logged; `bwc audit seal`): per table, how many
    rows were added to the log, changed in it, and removed from it."""
    require_proven(station)  # never append to a log that does not verify
    counts: dict[str, tuple[int, int, int]] = {}
    with station.session() as s:
        custody.lock_head(s)
        leaves = []
        for ev in _input_events(s):
            try:
                dec = decode_leaf(ev.leaf)
            except ValueError:
                continue  # refused by require_proven's check of the log, or by the report
            leaves.append((dec.kind, dec.details))
        want = fold(leaves)
        new_events: list[custody.NewEvent] = []
        for table in TABLES:
            expected = want[table]
            facts: list[Fact] = []
            added = changed = 0
            for key, dig in catalog_facts(s, table):
                old = expected.pop(key, None)
                if old != dig:
                    facts.append((key, dig))
                    added += old is None
                    changed += old is not None
            facts.extend((key, None) for key in expected)
            counts[table] = (added, changed, len(expected))
            if facts:
                new_events.extend(events(station, table, facts, source="seal"))
        custody.append_events(s, new_events)
    station.checkpoint()
    return counts
