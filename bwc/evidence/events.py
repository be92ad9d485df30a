"""Custody events as log leaves. Pure: values in, bytes out, and back.

A leaf is the RFC 8785 canonical JSON of the event *including its index*, so a row moved to
another index no longer matches its own bytes, and the Merkle root binds the order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bwc.evidence.canonical import canonical_json, loads
from bwc.evidence.timefmt import format_utc, parse_utc

EVENT_KINDS = frozenset(
    {
        "ingested",
        "seen-again",
        "verified",
        "verification-run",
        "log-verified",
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
        "receipt",
        "source-wiped",
        "explained",
        "explanation-reviewed",
        "audit-input",
        "case-linked",
        "case-unlinked",
        # a failed file put back to be copied again / a failure accepted (bwc.ingest.failures)
        "ingest-retried",
        "failure-acknowledged",
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


# The events whose `manifest_sha256` says which manifest an item has: its intake, and an
# attribution that carries one (docs/bundle.md lets it; `bwc attribute` today records the
# officer and signs no new manifest). Others may carry one (an `exported` event names the
# manifest it handed over) but never decide it.
MANIFEST_KINDS = frozenset({"ingested", "attributed"})


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
    """The canonical JSON of the event at ``index`` (what ``leaf_parts`` assembles)."""
    head, tail = leaf_parts(ev)
    return head + str(index).encode("ascii") + tail


def leaf_parts(ev: NewEvent) -> tuple[bytes, bytes]:
    """The leaf of ``ev`` but for its index: what comes before the index and after it.
    The canonical form sorts the keys (actor, at, details, index, item, kind, station, v),
    so the index sits between the details and the rest: an appender builds the leaf before
    it knows the index, and only puts the number in while it holds the log's lock. A
    property test holds this to ``canonical_json`` of the whole event."""
    if not all(isinstance(x, str) for x in (ev.kind, ev.actor, ev.station_id)):
        raise TypeError("an event's kind, actor and station are text")
    if ev.item_sha256 is not None and not isinstance(ev.item_sha256, str):
        raise TypeError("an event's item is a sha256 or None")
    q = _quote
    head = b'{"actor":%s,"at":"%s","details":%s,"index":' % (
        q(ev.actor),
        format_utc(ev.at).encode("ascii"),
        canonical_json(ev.details),
    )
    item = b"null" if ev.item_sha256 is None else q(ev.item_sha256)
    tail = b',"item":%s,"kind":%s,"station":%s,"v":%d}' % (
        item,
        q(ev.kind),
        q(ev.station_id),
        LEAF_VERSION,
    )
    return head, tail


def _quote(text: str) -> bytes:
    """A string as RFC 8785 writes it (which is what json writes without ASCII escapes)."""
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


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


def row_matches_leaf(
    leaf: bytes, index: int, kind: str, at: str, actor: str, station: str, item: str | None
) -> bool:
    """Whether a catalog row's columns are exactly what its leaf says, without decoding the
    leaf: the canonical form puts the event's own fields, sorted, around its details, so the
    row determines the leaf's first and last bytes. (`bwc log verify` checks millions of rows
    this way; item-level checks decode the leaf.)"""
    dumps = json.dumps
    head = f'{{"actor":{dumps(actor, ensure_ascii=False)},"at":"{at}","details":{{'
    tail = (
        f',"index":{index},"item":{dumps(item)},"kind":{dumps(kind, ensure_ascii=False)},'
        f'"station":{dumps(station, ensure_ascii=False)},"v":{LEAF_VERSION}}}'
    )
    return leaf.startswith(head.encode("utf-8")) and leaf.endswith(tail.encode("utf-8"))
