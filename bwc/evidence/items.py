"""Finding evidence items in the catalog: by id (a sha256 or a unique prefix) and by the
filters `bwc list` offers. Every function takes a Session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, literal
from sqlmodel import Session, col, select

from bwc.errors import NotFoundError, UsageError
from bwc.evidence.manifest import FLAG_ID_FILE
from bwc.evidence.models import CaseLink, Item
from bwc.evidence.station import Station


def resolve_id(session: Session, prefix: str) -> Item:
    """An item by its sha256 or a unique prefix of at least 8 hex digits."""
    p = prefix.strip().lower()
    if len(p) < 8 or any(c not in "0123456789abcdef" for c in p) or len(p) > 64:
        raise UsageError(
            f"{prefix!r} is not an evidence id",
            hint="give the sha256 or 8+ of its first hex digits",
        )
    rows = list(session.exec(select(Item).where(col(Item.sha256).startswith(p)).limit(2)))
    if not rows:
        raise NotFoundError(f"no evidence item with id {p}", hint="see `bwc list`")
    if len(rows) > 1:
        raise NotFoundError(f"id prefix {p} is ambiguous", hint="give more hex digits")
    return rows[0]


@dataclass(frozen=True)
class ItemFilter:
    officer: str | None = None
    device: str | None = None
    unattributed: bool = False
    since: datetime | None = None  # ingested at or after
    flag: str | None = None
    # recording started at or after / before (UTC); items without a recording time never match
    recorded_from: datetime | None = None
    recorded_to: datetime | None = None
    # "recorded": by recording start, items without one last (by ingest); "ingested"
    order: str = "recorded"
    case: str | None = None  # linked to this case (the catalog's links; `bwc verify` checks them)


def find(station: Station, f: ItemFilter) -> Sequence[Item]:
    """The items matching ``f`` in ``f.order`` (`bwc list`)."""
    with station.session(snapshot=True) as s:  # a long read never holds the write lock
        return list_items(s, f)


def list_items(session: Session, f: ItemFilter) -> Sequence[Item]:
    if f.order == "recorded":
        # NULLs last on SQLite and PostgreSQL alike: order by "has no recording time" first
        stmt = select(Item).order_by(
            col(Item.recorded_start).is_(None),
            col(Item.recorded_start),
            col(Item.ingested_at),
            col(Item.sha256),
        )
    elif f.order == "ingested":
        stmt = select(Item).order_by(col(Item.ingested_at), col(Item.sha256))
    else:
        raise UsageError(f"unknown order {f.order!r}", hint="recorded or ingested")
    if f.officer:
        stmt = stmt.where(Item.officer_id == f.officer)
    if f.device:
        stmt = stmt.where(Item.device_id == f.device)
    if f.unattributed:  # the camera's id file is metadata, not footage to attribute
        stmt = stmt.where(col(Item.officer_id).is_(None)).where(~_has_flag(FLAG_ID_FILE))
    if f.since:
        stmt = stmt.where(col(Item.ingested_at) >= f.since)
    if f.recorded_from:
        stmt = stmt.where(col(Item.recorded_start) >= f.recorded_from)
    if f.recorded_to:
        stmt = stmt.where(col(Item.recorded_start) < f.recorded_to)
    if f.flag:
        stmt = stmt.where(_has_flag(f.flag))
    if f.case is not None:
        linked = select(CaseLink.sha256).where(CaseLink.case_id == f.case)
        stmt = stmt.where(col(Item.sha256).in_(linked))
    return list(session.exec(stmt))


def _has_flag(flag: str) -> ColumnElement[bool]:
    # flags are stored comma-joined: match one whole flag
    joined = literal(",") + col(Item.flags) + literal(",")
    return joined.contains(f",{flag},", autoescape=True)
