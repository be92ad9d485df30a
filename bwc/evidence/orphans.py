"""Objects in the store that the catalog does not know ("orphans"): what a commit that failed
after its store write leaves behind, or bytes put there by someone else. Found by a sorted
merge of the store's listing against the catalog's item ids (memory flat whatever the size),
reported by `bwc verify --all` and `bwc store check`; never deleted here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bwc.errors import NoteError
from bwc.evidence import custody, note
from bwc.evidence.models import Checkpoint, IngestJob, Item, SigningKey
from bwc.evidence.station import Station

_BATCH = 10_000
# ingest jobs (of any station) whose object may be in the store before its item is committed
_IN_FLIGHT = ("signed", "stored", "verified", "committed")


@dataclass(frozen=True)
class Orphan:
    sha256: str
    written: datetime


def unknown_objects(
    listed: Iterable[tuple[str, datetime]], known: Iterable[str]
) -> Iterator[tuple[str, datetime]]:
    """The objects of ``listed`` that are not in ``known``; both in ascending order (pure)."""
    ids = iter(known)
    cur = next(ids, None)
    for sha, at in listed:
        while cur is not None and cur < sha:
            cur = next(ids, None)
        if cur != sha:
            yield sha, at


def item_ids(session: Session) -> Iterator[str]:
    """Every item id in the catalog, ascending, a batch at a time."""
    last = ""
    while True:
        batch = list(
            session.exec(
                select(Item.sha256)
                .where(col(Item.sha256) > last)
                .order_by(col(Item.sha256))
                .limit(_BATCH)
            )
        )
        if not batch:
            return
        yield from batch
        last = batch[-1]


def find(station: Station, session: Session, grace_seconds: float) -> Iterator[Orphan]:
    """The store's objects that ``session``'s catalog does not know, each confirmed in a
    fresh read (an item committed since the session's snapshot began is no orphan) and
    left alone while an ingest still has it in flight or it is younger than
    ``grace_seconds`` (a `bwc ingest` between its store write and its commit)."""
    cutoff = station.clock.now() - timedelta(seconds=grace_seconds)
    for sha, written in unknown_objects(station.store.iter_objects(), item_ids(session)):
        if written > cutoff:
            continue
        with station.session(snapshot=True) as s:
            if s.get(Item, sha) is not None:
                continue
            busy = s.exec(
                select(IngestJob.id)
                .where(IngestJob.sha256 == sha)
                .where(col(IngestJob.state).in_(_IN_FLIGHT))
                .limit(1)
            ).first()
        if busy is None:
            yield Orphan(sha, written)


def store_checkpoint_problem(station: Station, session: Session) -> str | None:
    """Why the store's published checkpoint (``log/checkpoint``) cannot be accepted, or
    None: missing, unreadable, or older than the latest this station signed (its copy of
    the log rolled back, or a checkpoint not published); newer than the catalog's latest:
    the catalog was rolled back. (`bwc log verify` also checks its signature and the
    consistency of the two.)"""
    text = station.store.get_checkpoint()
    latest = custody.latest_checkpoint(session)
    if latest is None:
        return None if text is None else "the store holds a checkpoint, the catalog none"
    if text is None:
        return "the store holds no checkpoint (log/checkpoint is missing)"
    try:
        size = note.unverified_checkpoint(text).size
    except NoteError as e:
        return f"the store's checkpoint cannot be read: {e}"
    own = session.exec(
        select(Checkpoint)
        .join(SigningKey, col(SigningKey.key_id) == col(Checkpoint.key_id))
        .where(SigningKey.station_id == station.station_id)
        .order_by(col(Checkpoint.id).desc())
        .limit(1)
    ).first()
    if size > latest.size:
        return (
            f"the store holds a checkpoint of size {size}, newer than the catalog's latest "
            f"({latest.size}): the catalog was rolled back"
        )
    if own is not None and size < own.size:
        return (
            f"the store holds a checkpoint of size {size}, older than this station's latest "
            f"({own.size}): the store's copy of the log was rolled back, or a checkpoint was "
            "not published (run `bwc log checkpoint`)"
        )
    return None
