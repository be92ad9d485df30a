"""The custody log: events as RFC 9162 leaves, serialized appends, signed checkpoints.

Leaf bytes are the RFC 8785 canonical JSON of the event *including its index*, so a row moved
to another index no longer matches its own bytes, and the Merkle root binds the order.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from bwc.errors import CatalogError, NoteError
from bwc.evidence import note
from bwc.evidence.canonical import canonical_json, loads
from bwc.evidence.merkle import MerkleTree, leaf_hash
from bwc.evidence.models import Checkpoint, Event, LogHead, SigningKey
from bwc.evidence.signing import Ed25519Signer
from bwc.evidence.timefmt import format_utc, parse_utc

EVENT_KINDS = frozenset(
    {
        "ingested",
        "seen-again",
        "verified",
        "viewed",
        "exported",
        "hold-placed",
        "hold-released",
        "retention-changed",
        "deleted-by-policy",
        "attributed",
        "key-rotated",
        "checkpoint",
        "docked",
        "undocked",
        "source-wiped",
        "explained",
    }
)
LEAF_VERSION = 1


@dataclass(frozen=True)
class NewEvent:
    kind: str
    at: datetime
    actor: str
    station_id: str
    item_sha256: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown custody event kind {self.kind!r}")


@dataclass(frozen=True)
class DecodedEvent:
    index: int
    kind: str
    at: datetime
    actor: str
    station_id: str
    item_sha256: str | None
    details: dict[str, Any]


def event_leaf(index: int, ev: NewEvent) -> bytes:
    return canonical_json(
        {
            "v": LEAF_VERSION,
            "index": index,
            "kind": ev.kind,
            "at": format_utc(ev.at),
            "actor": ev.actor,
            "station": ev.station_id,
            "item": ev.item_sha256,
            "details": ev.details,
        }
    )


def decode_leaf(data: bytes) -> DecodedEvent:
    """Decode logged leaf bytes; raise ValueError when they are not a bwc event leaf."""
    try:
        obj = loads(data)
        if not isinstance(obj, dict) or obj.get("v") != LEAF_VERSION:
            raise ValueError("unknown leaf version")
        if canonical_json(obj) != data:
            raise ValueError("leaf bytes are not canonical JSON")
        return DecodedEvent(
            index=int(obj["index"]),
            kind=str(obj["kind"]),
            at=parse_utc(obj["at"]),
            actor=str(obj["actor"]),
            station_id=str(obj["station"]),
            item_sha256=obj["item"],
            details=dict(obj["details"]),
        )
    except (KeyError, TypeError, UnicodeDecodeError) as e:
        raise ValueError(f"malformed event leaf: {e}") from e


def append_events(session: Session, events: Sequence[NewEvent]) -> list[Event]:
    """Append events at the end of the log inside the caller's transaction.

    The log head row is locked (FOR UPDATE on PostgreSQL; SQLite transactions already hold
    the write lock), so concurrent appenders from several stations get consecutive indexes.
    """
    if not events:
        return []
    head = lock_head(session)
    last = session.exec(select(func.max(Event.idx))).one()
    stored = 0 if last is None else last + 1
    if stored != head.size:
        # Never append to a log that was cut or padded behind our back: the damage must stay
        # visible to `bwc log verify`, not be papered over by new events and checkpoints.
        raise CatalogError(
            f"the custody log head says {head.size} events but the last stored is #{stored - 1}",
            hint="run `bwc log verify`; the log was changed outside bwc",
        )
    rows: list[Event] = []
    for i, ev in enumerate(events):
        index = head.size + i
        leaf = event_leaf(index, ev)
        rows.append(
            Event(
                idx=index,
                leaf=leaf,
                leaf_hash=leaf_hash(leaf),
                kind=ev.kind,
                at=ev.at,
                actor=ev.actor,
                station_id=ev.station_id,
                item_sha256=ev.item_sha256,
            )
        )
    session.add_all(rows)
    head.size += len(events)
    session.add(head)
    return rows


def lock_head(session: Session) -> LogHead:
    head = session.exec(select(LogHead).where(LogHead.id == 1).with_for_update()).one_or_none()
    if head is None:
        raise CatalogError("the catalog has no log head row", hint="run `bwc init` to migrate it")
    return head


def log_origin(session: Session) -> str:
    head = session.get(LogHead, 1)
    if head is None or not head.origin:
        raise CatalogError("the custody log has no origin", hint="run `bwc init` to set it")
    return head.origin


def ensure_origin(session: Session, default: str) -> str:
    """Set the log's origin on first initialisation; later stations keep the catalog's."""
    head = lock_head(session)
    if not head.origin:
        head.origin = default
        session.add(head)
    return head.origin


def log_size(session: Session) -> int:
    head = session.get(LogHead, 1)
    return head.size if head else 0


def load_tree(session: Session, size: int | None = None) -> MerkleTree:
    """The Merkle tree of the log as stored. Leaf hashes are recomputed from the leaf bytes,
    never taken from the stored ``leaf_hash`` column."""
    stmt = select(Event.leaf).order_by(col(Event.idx))
    if size is not None:
        stmt = stmt.where(col(Event.idx) < size)
    return MerkleTree([leaf_hash(leaf) for leaf in session.exec(stmt)])


def iter_events(session: Session, item_sha256: str | None = None) -> Iterable[Event]:
    stmt = select(Event).order_by(col(Event.idx))
    if item_sha256 is not None:
        stmt = stmt.where(Event.item_sha256 == item_sha256)
    return session.exec(stmt)


def verifiers(session: Session, problems: list[str] | None = None) -> list[note.Verifier]:
    """Note verifiers for every key the catalog knows (checkpoints are signed by the station
    key active at the time; retired keys stay valid for what they signed). A malformed key
    row is skipped and reported into ``problems``."""
    out = []
    for k in session.exec(select(SigningKey)):
        try:
            out.append(note.Verifier.from_public_key(k.station_id, k.public_key))
        except NoteError as e:
            if problems is not None:
                problems.append(f"signing key {k.key_id}: catalog public key is not usable: {e}")
    return out


def note_signer(station_id: str, signer: Ed25519Signer) -> note.Signer:
    return note.Signer.from_private_key(station_id, signer.private_key)


def make_checkpoint(
    session: Session, signer: Ed25519Signer, station_id: str, now: datetime
) -> Checkpoint:
    """Sign the log as it stands and store the checkpoint. The head is locked first, so no
    other station appends between reading the size and reading the leaves."""
    head = lock_head(session)
    size = head.size
    if not head.origin:
        raise CatalogError("the custody log has no origin", hint="run `bwc init` to set it")
    tree = load_tree(session, size)
    if tree.size != size:
        raise CatalogError(f"log head says {size} events but {tree.size} are stored")
    cp = note.Checkpoint(origin=head.origin, size=size, root=tree.root())
    text = note.sign_checkpoint(cp, note_signer(station_id, signer))
    row = Checkpoint(size=size, root=cp.root, note=text, key_id=signer.key_id, created_at=now)
    session.add(row)
    return row


def latest_checkpoint(session: Session) -> Checkpoint | None:
    return session.exec(select(Checkpoint).order_by(col(Checkpoint.id).desc()).limit(1)).first()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
