"""The access trail: who looked at or exported which footage, when.

`bwc show`, `bwc log proof`, `bwc case show` (one event per item shown) record a `viewed`
custody event (``details.what``: show, proof, case-show; ``case`` when a case was shown);
`bwc export` records `exported` events. :func:`trail` reads them back from the log, each
event's leaf checked against its catalog row and proven in the latest signed checkpoint, as
`bwc show` checks an item's chain.

Recording appends to the log and then signs a checkpoint, so it needs the signing key like
any other command that logs: an event no checkpoint covers would make the item's own
``custody`` check fail ("not yet covered by a signed checkpoint") until someone signed one.
A view that cannot be recorded fails the command (before anything is shown), unless the
caller chose not to record (``--no-record``, for read-only diagnostics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bwc.evidence import custody, trust
from bwc.evidence.cases import linked_items
from bwc.evidence.events import decode_leaf
from bwc.evidence.items import resolve_id
from bwc.evidence.station import Station
from bwc.evidence.verify import catalog
from bwc.evidence.verify.core import event_problems, inclusion_problem

VIEWED = "viewed"
EXPORTED = "exported"
TRAIL_KINDS = (VIEWED, EXPORTED)


def prepare(station: Station) -> None:
    """Before a view that will be recorded reads anything: the key that will sign the
    checkpoint loads (KeyMaterialError otherwise), so a view is never shown unrecorded."""
    station.signer()


def record_views(
    station: Station,
    shas: Sequence[str],
    what: str,
    *,
    case: str | None = None,
    **details: Any,
) -> list[int]:
    """One `viewed` event per item (``what`` was done: show, proof, case-show, get), then a
    signed checkpoint covering them. Returns their indexes."""
    if not shas:
        return []
    station.signer()
    extra = {k: v for k, v in details.items() if v is not None}
    if case is not None:
        extra["case"] = case
    events = [station.event(VIEWED, sha, what=what, **extra) for sha in shas]
    with station.session() as s:
        done = custody.append_events(s, events)
    station.checkpoint()
    return [a.idx for a in done]


@dataclass(frozen=True)
class Access:
    index: int
    kind: str  # viewed / exported
    at: datetime
    actor: str
    station_id: str
    sha256: str
    details: dict[str, Any]
    problem: str | None  # None: the event is what was logged, proven in the checkpoint

    @property
    def what(self) -> str:
        what = self.details.get("what")
        return str(what) if what is not None else self.kind


@dataclass
class Trail:
    entries: list[Access] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.log_problems and all(e.problem is None for e in self.entries)


def trail(station: Station, *, item_id: str | None = None, case: str | None = None) -> Trail:
    """The `viewed` and `exported` events of one item, or of every item linked to a case,
    oldest first, each checked against the signed log (O(log n) per event)."""
    out = Trail()
    with station.session(snapshot=True) as s:
        if item_id is not None:
            out.items = [resolve_id(s, item_id).sha256]
        elif case is not None:
            out.items = linked_items(s, case)
        t = catalog.trust_latest(
            s, station.store, trust.load(station.settings.home), station.station_id
        )
        out.log_problems = list(t.log.problems)
        cp = t.log.checkpoint
        for sha in out.items:
            for ev in catalog.item_events(s, sha, t):
                try:
                    leaf_kind: str | None = decode_leaf(ev.leaf).kind
                except ValueError:
                    leaf_kind = None
                # by the leaf's kind or the row's: a row relabelled to hide a view is shown
                column_kind = ev.columns.kind if ev.columns is not None else None
                if leaf_kind not in TRAIL_KINDS and column_kind not in TRAIL_KINDS:
                    continue
                problems = event_problems(ev)
                if cp is None:
                    problems.append("no signed checkpoint to prove it against")
                elif ev.index >= cp.size:
                    problems.append(f"event #{ev.index} is not yet covered by a checkpoint")
                else:
                    why = inclusion_problem(ev, cp, t.log)
                    if why:
                        problems.append(why)
                try:
                    dec = decode_leaf(ev.leaf)
                except ValueError:
                    c = ev.columns
                    assert c is not None  # the catalog's events carry their columns
                    entry = Access(
                        ev.index, c.kind, c.at, c.actor, c.station_id, sha, {}, "; ".join(problems)
                    )
                else:  # what the leaf says, not the catalog's copy
                    entry = Access(
                        ev.index,
                        dec.kind,
                        dec.at,
                        dec.actor,
                        dec.station_id,
                        sha,
                        dec.details,
                        "; ".join(problems) or None,
                    )
                out.entries.append(entry)
    out.entries.sort(key=lambda e: e.index)
    return out


def record_view_of(station: Station, item_id: str, what: str) -> str:
    """``record_views`` of one item named by id (or prefix); its sha256."""
    with station.session(snapshot=True) as s:
        sha = resolve_id(s, item_id).sha256
    record_views(station, [sha], what)
    return sha
