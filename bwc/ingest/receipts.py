"""Dock receipts in the catalog and the custody log: drawn up from a dock session's jobs
(``receipt.build``), logged as custody events (``receipt`` when all of a camera's files are
in, ``undocked`` when it leaves), and read back for `bwc receipt` with the logged one checked
against the log. The catalog functions take a ``Session`` in the caller's transaction.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from bwc.errors import NotFoundError, ProofError, VerificationError
from bwc.evidence import custody
from bwc.evidence.events import DecodedEvent, decode_leaf
from bwc.evidence.manifest import encode_path
from bwc.evidence.merkle import leaf_hash, verify_inclusion
from bwc.evidence.models import DockSession, Event, IngestJob, Item
from bwc.evidence.station import Station
from bwc.evidence.tlog import TileError
from bwc.ingest.receipt import (
    SAFE_STATES,
    FileJob,
    ItemFacts,
    Moment,
    Receipt,
    Tally,
    build,
    differences,
    receipt_json,
    tally,
)

# the events that carry a receipt: drawn up when all files are in, and at undock
ReceiptKind = Literal["receipt", "undocked"]
RECEIPT_KINDS: tuple[str, ...] = get_args(ReceiptKind)
_SETTLED = (*SAFE_STATES, "failed", "ignored", "abandoned", "acknowledged")


def session_jobs(s: Session, session_id: int) -> list[FileJob]:
    # the columns only (a job also holds its signed manifest): sqlalchemy's select, which
    # takes any number of them
    rows = s.execute(
        sa_select(
            col(IngestJob.id),
            col(IngestJob.rel),
            col(IngestJob.state),
            col(IngestJob.outcome),
            col(IngestJob.size),
            col(IngestJob.reason),
            col(IngestJob.sha256),
        ).where(col(IngestJob.session_id) == session_id)
    ).all()
    return [
        FileJob(i, encode_path(rel)[0], state, outcome, size, reason, sha)
        for i, rel, state, outcome, size, reason, sha in rows
        if i is not None
    ]


def in_progress(s: Session, session_id: int) -> bool:
    """Whether any file of the session is still being taken (a cheap look, every scan)."""
    row = s.exec(
        select(IngestJob.id)
        .where(IngestJob.session_id == session_id)
        .where(col(IngestJob.state).not_in(_SETTLED))
        .limit(1)
    ).first()
    return row is not None


def sessions_in_progress(s: Session, station_id: str) -> list[int]:
    """The dock sessions of a station with a file still being taken (the same few jobs a
    restarted daemon resumes)."""
    rows = s.exec(
        select(IngestJob.session_id)
        .where(IngestJob.station_id == station_id)
        .where(col(IngestJob.state).not_in(_SETTLED))
        .distinct()
    ).all()
    return sorted(rows)


def changed_since(s: Session, since: dict[int, datetime]) -> set[int]:
    """The sessions (of ``since``: session -> when its last receipt was drawn up) with a
    file whose job changed after that: a retried file taken again, a failure acknowledged.
    One grouped query over their jobs (indexed by session)."""
    if not since:
        return set()
    rows = s.execute(
        sa_select(col(IngestJob.session_id), func.max(col(IngestJob.updated_at)))
        .where(col(IngestJob.session_id).in_(sorted(since)))
        .group_by(col(IngestJob.session_id))
    ).all()
    return {int(sid) for sid, latest in rows if latest is not None and latest > since[int(sid)]}


def _last_logged(s: Session, row: DockSession) -> DecodedEvent | None:
    """The session's latest logged receipt as the log holds it (None: none, or unreadable;
    `bwc receipt` says which, with the proof)."""
    ev = s.get(Event, row.receipt_idx) if row.receipt_idx is not None else None
    if ev is None:
        return None
    try:
        return decode_leaf(bytes(ev.leaf))
    except ValueError:
        return None


def drawn_up_at(s: Session, row: DockSession) -> datetime | None:
    """When the session's latest logged receipt was logged (None: none yet)."""
    ev = s.get(Event, row.receipt_idx) if row.receipt_idx is not None else None
    return ev.at if ev is not None else None


def same_as_logged(s: Session, row: DockSession, r: Receipt) -> bool:
    """Whether ``r`` says what the session's latest logged receipt says (COMPARED fields)."""
    d = _last_logged(s, row)
    return d is not None and not differences(d.details, receipt_json(r))


def last_job(s: Session, session_id: int) -> int:
    n = s.exec(select(func.max(IngestJob.id)).where(IngestJob.session_id == session_id)).one()
    return int(n or 0)


def item_facts(s: Session, shas: Sequence[str]) -> dict[str, ItemFacts]:
    out: dict[str, ItemFacts] = {}
    wanted = sorted(set(shas))
    for i in range(0, len(wanted), 500):  # bounded IN lists
        for sha, officer, start, end in s.exec(
            select(Item.sha256, Item.officer_id, Item.recorded_start, Item.recorded_end).where(
                col(Item.sha256).in_(wanted[i : i + 500])
            )
        ):
            out[sha] = ItemFacts(officer, start, end)
    return out


def draw_up(s: Session, row: DockSession, moment: Moment) -> Receipt:
    """The receipt of dock session ``row`` as its jobs and items stand."""
    assert row.id is not None
    jobs = session_jobs(s, row.id)
    return build(
        session=row.id,
        station_id=row.station_id,
        mount=encode_path(row.mount)[0],
        device_id=row.device_id,
        usb_serial=row.usb_serial,
        docked_at=row.first_seen,
        undocked_at=row.closed_at,
        jobs=jobs,
        items=item_facts(s, [j.sha256 for j in jobs if j.sha256 and j.state in SAFE_STATES]),
        moment=moment,
    )


def log(s: Session, station: Station, row: DockSession, r: Receipt, kind: ReceiptKind) -> int:
    """Append the receipt as a ``kind`` custody event (``receipt`` or ``undocked``) and
    remember it with the session; its log index."""
    assert kind in RECEIPT_KINDS
    details = receipt_json(r.for_log())
    (done,) = custody.append_events(s, [station.event(kind, None, **details)])
    row.receipt_idx = done.idx
    row.receipt_upto = r.tally.last_job
    s.add(row)
    return done.idx


@dataclass(frozen=True)
class Logged:
    """A receipt as the custody log holds it."""

    kind: str
    idx: int
    at: datetime
    actor: str
    details: dict[str, Any]
    # where the log vouches for it: "checkpoint N" (an inclusion proof verified), or None
    # when no checkpoint covers it yet
    proven_in: int | None


@dataclass(frozen=True)
class Shown:
    """`bwc receipt`'s answer: the receipt recomputed now, and the logged one, if any."""

    now: Receipt
    logged: Logged | None


def show(station: Station, session_id: int) -> Shown:
    """The receipt of a dock session (of any station on this catalog): recomputed from its
    jobs and items, beside its latest logged receipt, checked against the custody log.
    NotFoundError for an unknown session; VerificationError when the logged receipt is not
    what the log holds."""
    with station.session(snapshot=True) as s:
        row = s.get(DockSession, session_id)
        if row is None:
            raise NotFoundError(
                f"no dock session {session_id}",
                hint="`bwc receipt --list` shows the dock sessions",
            )
        now = draw_up(s, row, "now")
        logged = _logged(s, row) if row.receipt_idx is not None else None
    return Shown(now, logged)


def _logged(s: Session, row: DockSession) -> Logged:
    idx = row.receipt_idx
    assert idx is not None
    ev = s.get(Event, idx)
    what = f"dock session {row.id}: its logged receipt (log index {idx})"
    if ev is None:
        raise VerificationError(f"{what} is missing from the log", hint="run `bwc log verify`")
    leaf = bytes(ev.leaf)
    try:
        d = decode_leaf(leaf)
    except ValueError as e:
        raise VerificationError(f"{what} cannot be read: {e}", hint="run `bwc log verify`") from e
    if (
        d.kind not in RECEIPT_KINDS
        or d.details.get("dock_session") != row.id
        or not hmac.compare_digest(leaf_hash(leaf), bytes(ev.leaf_hash))
    ):
        raise VerificationError(
            f"{what} is not a receipt of this session", hint="run `bwc log verify`"
        )
    proven: int | None = None
    cp = custody.latest_checkpoint(s)
    if cp is not None and idx < cp.size:
        try:
            proof = custody.tree(s, cp.size).inclusion_proof(idx, cp.size)
            verify_inclusion(leaf_hash(leaf), idx, cp.size, proof, bytes(cp.root))
        except (ProofError, TileError, ValueError) as e:
            raise VerificationError(
                f"{what} is not in the signed log (checkpoint size {cp.size}): {e}",
                hint="run `bwc log verify`",
            ) from e
        proven = cp.size
    return Logged(d.kind, idx, d.at, d.actor, dict(d.details), proven)


@dataclass(frozen=True)
class SessionLine:
    id: int
    station_id: str
    mount: str
    device_id: str | None
    usb_serial: str | None
    docked_at: datetime
    undocked_at: datetime | None
    receipt_idx: int | None
    tally: Tally


def recent(station: Station, limit: int) -> list[SessionLine]:
    """The latest dock sessions of this station, newest first (to find a session id), each
    with its counters as they stand."""
    with station.session(snapshot=True) as s:
        rows = s.exec(
            select(DockSession)
            .where(DockSession.station_id == station.station_id)
            .order_by(col(DockSession.id).desc())
            .limit(limit)
        ).all()
        return [
            SessionLine(
                r.id,
                r.station_id,
                os.fsdecode(r.mount),
                r.device_id,
                r.usb_serial,
                r.first_seen,
                r.closed_at,
                r.receipt_idx,
                tally(session_jobs(s, r.id)) if r.id is not None else Tally(),
            )
            for r in rows
            if r.id is not None
        ]
