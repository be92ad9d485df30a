"""Verification on a station: what `bwc verify`, `bwc show`, `bwc log verify` and `bwc log
proof` do, between opening the catalog and printing. Checks are the core's; this module picks
the way (by id, or everything streamed), remembers the checkpoint it verified, and records
the run in the custody log when asked to (and only when the log itself verifies: appending to
a damaged log would bury the damage under new events and a fresh checkpoint)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bwc.config.settings import Settings
from bwc.errors import NoteError, NotFoundError, UsageError
from bwc.evidence import custody, note, trust
from bwc.evidence.items import resolve_id
from bwc.evidence.models import Event, Item
from bwc.evidence.station import Station
from bwc.evidence.stores import ReadAhead
from bwc.evidence.verify import catalog
from bwc.evidence.verify.core import ItemReport, LogReport


@dataclass
class Outcome:
    reports: list[ItemReport]
    log_problems: list[str]
    recorded: bool = False
    not_recorded: str | None = None  # why a run asked to be recorded was not

    @property
    def log_ok(self) -> bool:
        return not self.log_problems

    @property
    def failed(self) -> list[ItemReport]:
        return [r for r in self.reports if not r.ok]


def verify_ids(
    station: Station,
    ids: Sequence[str],
    *,
    record: bool,
    on_done: Callable[[ItemReport], None] | None = None,
) -> Outcome:
    """Items by id, each proven against the latest checkpoint: cost by item."""
    if record:
        station.signer()  # a wrong passphrase fails before anything is read
    with station.session(snapshot=True) as s:
        items = [resolve_id(s, i) for i in ids]
        t = catalog.trust_latest(s, station.store, trust.load(station.settings.home))
        reports = catalog.verify_items(
            s, station.store, items, t, workers=station.settings.verify_workers, on_done=on_done
        )
    if t.log.ok and t.latest_note is not None:
        trust.remember(station.settings.home, t.latest_note)
    out = Outcome(reports, list(t.log.problems))
    _record(station, out, record)
    return out


def verify_everything(
    station: Station,
    *,
    record: bool,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[ItemReport], None] | None = None,
    ahead: ReadAhead | None = None,
) -> Outcome:
    """The whole log streamed, then every item: memory flat whatever the catalog's size."""
    if record:
        station.signer()
    with station.session(snapshot=True) as s:
        log, reports = catalog.verify_all(
            s,
            station.store,
            workers=station.settings.verify_workers,
            station_id=station.station_id,
            on_start=on_start,
            on_done=on_done,
            ahead=ahead,
        )
        latest = custody.latest_checkpoint(s)
    if log.ok and latest is not None:
        trust.remember(station.settings.home, latest.note)
    out = Outcome(reports, list(log.problems))
    _record(station, out, record)
    return out


def _record(station: Station, out: Outcome, record: bool) -> None:
    if not record or not out.reports:
        return
    if not out.log_ok:
        out.not_recorded = "the custody log fails verification"
        return
    with station.session() as s:
        custody.append_events(
            s,
            [
                station.event(
                    "verified",
                    r.sha256,
                    ok=r.ok,
                    failed=[f"{c.name}: {c.detail}" for c in r.failures()],
                )
                for r in out.reports
            ],
        )
    station.checkpoint()
    out.recorded = True


def verify_log(station: Station) -> LogReport:
    """The whole log, streamed (`bwc log verify`)."""
    with station.session(snapshot=True) as s:
        rep = catalog.verify_log(s, station.store, station_id=station.station_id)
        latest = custody.latest_checkpoint(s)
    if rep.ok and latest is not None:
        trust.remember(station.settings.home, latest.note)
    return rep


def verify_store_copy(url: str, settings: Settings | None, pinned: Sequence[str] = ()) -> LogReport:
    """The log's published copy in the store at ``url``, with no catalog (`bwc log verify
    --from-store`). ``pinned``: note verifier keys (`name+hash+key`, as `bwc keys list`
    prints them) that must have signed the store's checkpoint."""
    from bwc.evidence.stores import open_store
    from bwc.evidence.verify.published import verify_published

    try:
        verifiers = [note.parse_verifier_key(k) for k in pinned]
    except NoteError as e:
        raise UsageError(f"--key: {e}", hint="give a key as `bwc keys list` prints it") from e
    return verify_published(open_store(url, settings), pinned=verifiers)


@dataclass
class Shown:
    item: Item
    events: list[Event]
    report: ItemReport


def show(station: Station, item_id: str) -> Shown:
    """An item, its chain of custody and every check (`bwc show`)."""
    with station.session(snapshot=True) as s:
        item = resolve_id(s, item_id)
        events = list(custody.iter_events(s, item.sha256))
        t = catalog.trust_latest(s, station.store, trust.load(station.settings.home))
        (rep,) = catalog.verify_items(s, station.store, [item], t, workers=1)
    return Shown(item, events, rep)


@dataclass
class EventProof:
    index: int
    kind: str
    leaf: bytes
    proof: list[bytes] | None  # None: not yet covered by the checkpoint


@dataclass
class ItemProofs:
    sha256: str
    checkpoint: str
    tree_size: int
    events: list[EventProof] = field(default_factory=list)


def item_proofs(station: Station, item_id: str) -> ItemProofs:
    """Inclusion proofs of an item's events in the latest signed checkpoint (`bwc log
    proof`), cut from the catalog's tiles: O(log n) each."""
    with station.session(snapshot=True) as s:
        item = resolve_id(s, item_id)
        cp = custody.latest_checkpoint(s)
        if cp is None:
            raise NotFoundError("the log has no checkpoint", hint="run `bwc log checkpoint`")
        tree = custody.tree(s, cp.size)
        out = ItemProofs(item.sha256, cp.note, cp.size)
        for ev in custody.iter_events(s, item.sha256):
            proof = tree.inclusion_proof(ev.idx) if ev.idx < cp.size else None
            out.events.append(EventProof(ev.idx, ev.kind, ev.leaf, proof))
    return out
