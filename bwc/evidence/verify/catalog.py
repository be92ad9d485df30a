"""Verification against a catalog: thin loaders that read rows, tiles and stored objects and
hand the values to the pure core (``bwc.evidence.verify.core``).

Two ways, by what is asked:

* items by id (`bwc verify ID…`, `bwc show`): cost by item, not by the log's age. The latest
  checkpoint is checked (signed by an announced key, consistent with the previous one, the
  store's copy and the checkpoint this station last trusted) with O(log n) tiles; each event
  of the item carries an inclusion proof cut from the catalog's tiles.
* everything (`bwc verify --all`, `bwc log verify`): one streaming pass over the log (every
  leaf re-hashed, every row against its leaf, every tile and checkpoint against the rebuilt
  tree), then the items merged with their events in sha order: memory stays flat.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from bwc.errors import (
    BwcError,
    NoteError,
    NotFoundError,
    ProofError,
    StoreError,
    VerificationError,
)
from bwc.evidence import custody, note, rowworkers
from bwc.evidence.events import decode_leaf
from bwc.evidence.fingerprint import Digest
from bwc.evidence.merkle import leaf_hash, verify_inclusion
from bwc.evidence.models import CaseLink, Checkpoint, Event, Item, LogHead, SigningKey, log_tile
from bwc.evidence.rowcheck import text_leaf_time
from bwc.evidence.stores import ObjectStore, ReadAhead
from bwc.evidence.tlog import TILE_WIDTH, StreamingTree, Tile, TiledTree, TileError, tile_width
from bwc.evidence.verify.core import (
    CheckpointRow,
    EventColumns,
    ItemReport,
    KeyInfo,
    LogAuditor,
    LoggedEvent,
    LogReport,
    LogTrust,
    check_item,
    consistency_problem,
    decoded,
    item_facts,
    note_b64decode,
    open_checkpoint,
    verifiers_of,
)
from bwc.evidence.verify.published import Ahead, compare_tile

logger = logging.getLogger(__name__)

_ITEM_BATCH = 500
# rows a worker checks at a time (a frame: 64 KB of hashes); measured at 1 M rows, 2,000
# is as fast as 5,000 and each worker holds ~10 MB less (~25 MB on SQLite, ~41 on PostgreSQL)
_BATCH = 2000
# Below this many rows, starting worker processes (~0.1 s each) costs more than it saves.
PARALLEL_MIN = 100_000

# ---------------------------------------------------------------------------- keys


def catalog_keys(session: Session) -> dict[str, SigningKey]:
    return {k.key_id: k for k in session.exec(select(SigningKey))}


def _announcement(leaf: bytes, key_id: str) -> bytes | None:
    """The public key a `key-rotated` leaf announces for ``key_id`` (None if it does not)."""
    try:
        d = decode_leaf(leaf)
        if d.kind != "key-rotated" or d.details.get("key_id") != key_id:
            return None
        return note_b64decode(str(d.details["public_key"]))
    except (ValueError, KeyError):
        return None


# ---------------------------------------------------------------------------- items by id


@dataclass
class Trust:
    """A LogTrust and what it was built from (for the caller to remember and to cut proofs)."""

    log: LogTrust
    tree: TiledTree | None
    latest_note: str | None = None


def trust_latest(
    session: Session,
    store: ObjectStore,
    trusted_note: str | None,
    station_id: str | None = None,
) -> Trust:
    """Check the catalog's latest checkpoint without reading the whole log: its signature
    (by a key whose announcement is proven in it), its origin, and its consistency with the
    previous catalog checkpoint, the store's copy and ``trusted_note`` (the newest this
    station verified before), each by an RFC 9162 proof from the catalog's tiles; and that
    the store's copy is not older than the latest ``station_id`` signed (a rollback)."""
    problems: list[str] = []
    origin = custody.log_origin(session)
    rows = catalog_keys(session)
    latest_row = custody.latest_checkpoint(session)
    keys: dict[str, KeyInfo] = {}
    if latest_row is None:
        problems.append("the log has no signed checkpoint")
        for k in rows.values():
            keys[k.key_id] = KeyInfo(k.station_id, k.public_key, None)
        return Trust(LogTrust(None, keys, problems), None)
    head = session.get(LogHead, 1)
    size = latest_row.size
    if head is not None and size > head.size:
        problems.append(
            f"checkpoint {latest_row.id} (size {size}): signed for {size} events but the "
            f"log holds only {head.size} (events deleted)"
        )
        size = head.size
    tree = custody.tree(session, size)
    # keys: announced by a `key-rotated` event proven in the checkpoint being trusted
    announcing = custody.events_at(
        session, [k.announced_idx for k in rows.values() if k.announced_idx is not None]
    )
    by_idx = {e.idx: e for e in announcing}
    proofs: dict[int, list[bytes] | None] = {}
    for k in rows.values():
        ev = by_idx.get(k.announced_idx) if k.announced_idx is not None else None
        pub = _announcement(ev.leaf, k.key_id) if ev is not None else None
        if ev is not None and pub is not None and ev.idx < size:
            try:
                proofs[ev.idx] = tree.inclusion_proof(ev.idx)
            except (TileError, ValueError) as e:
                problems.append(f"the catalog's tiles cannot prove key {k.key_id}: {e}")
                proofs[ev.idx] = None
        keys[k.key_id] = KeyInfo(k.station_id, k.public_key, pub)
    if not any(k.announced for k in keys.values()) and keys:
        problems.append("no signing key in the catalog is announced in the log")
    cp, found = open_checkpoint(
        f"checkpoint {latest_row.id} (size {latest_row.size})",
        latest_row.note,
        verifiers_of({i: k for i, k in keys.items() if k.announced is not None}, problems),
        origin,
    )
    problems.extend(found)
    if cp is not None and (cp.size != latest_row.size or cp.root != latest_row.root):
        problems.append(
            f"checkpoint {latest_row.id} (size {latest_row.size}): catalog size/root columns "
            "differ from the signed note"
        )
    if cp is None:
        return Trust(LogTrust(None, keys, problems), tree)
    # the announcements themselves, proven against it
    for k in rows.values():
        ev = by_idx.get(k.announced_idx) if k.announced_idx is not None else None
        proof = proofs.get(ev.idx) if ev is not None else None
        if ev is None or proof is None or ev.idx >= cp.size:
            continue
        try:
            verify_inclusion(leaf_hash(ev.leaf), ev.idx, cp.size, proof, cp.root)
        except ProofError as e:
            problems.append(f"the announcement of signing key {k.key_id} is not in the log: {e}")
            keys[k.key_id] = KeyInfo(k.station_id, k.public_key, None)
    try:
        root = tree.root(cp.size) if cp.size <= tree.size else None
    except (TileError, ValueError) as e:
        problems.append(f"the catalog's tiles do not give the log's root: {e}")
        root = None
    if root is not None and cp.size and not hmac.compare_digest(root, cp.root):
        problems.append(
            f"checkpoint {latest_row.id} (size {cp.size}): signed root differs from the log's "
            "root (the log was rewritten, or the checkpoint comes from a forked log)"
        )
    verifiers = verifiers_of({i: k for i, k in keys.items() if k.announced is not None}, [])
    earlier: list[tuple[str, str | None, bool]] = []  # label, note, in the catalog
    previous = session.exec(
        select(Checkpoint)
        .where(col(Checkpoint.id) < latest_row.id)
        .order_by(col(Checkpoint.id).desc())
        .limit(1)
    ).first()
    if previous is not None:
        label = f"checkpoint {previous.id} (size {previous.size})"
        earlier.append((label, previous.note, True))
    earlier.append(("checkpoint copy in the store", _store_checkpoint(store, problems), False))
    earlier.append(("checkpoint this station verified last", trusted_note, False))
    for label, text, in_catalog in earlier:
        if text is None:
            continue
        older, found = open_checkpoint(label, text, verifiers, origin)
        problems.extend(found)
        if older is None:
            continue
        own = _latest_of(session, station_id) if station_id and not in_catalog else None
        if label.endswith("in the store") and own is not None and older.size < own.size:
            problems.append(
                f"the store holds a checkpoint of size {older.size}, older than this "
                f"station's latest ({own.size}): the store's copy of the log was rolled back, "
                "or a checkpoint was not published (run `bwc log checkpoint`)"
            )
        if older.size > cp.size:
            problems.append(
                f"checkpoint {latest_row.id}: log rolled back from size {older.size} to "
                f"{cp.size} (a checkpoint was replaced by an older one)"
                if in_catalog
                else f"the {label} is of size {older.size}, newer than the catalog's latest "
                f"({cp.size}): the catalog was rolled back"
            )
            continue
        try:
            proof = tree.consistency_proof(older.size, cp.size) if older.size else []
        except (TileError, ValueError) as e:
            problems.append(f"{label}: no consistency proof from the catalog's tiles: {e}")
            continue
        why = consistency_problem(label, older, cp, proof)
        if why:
            problems.append(why + " (a forked log?)")
    return Trust(LogTrust(cp, keys, problems), tree, latest_row.note)


def _store_checkpoint(store: ObjectStore, problems: list[str]) -> str | None:
    try:
        text = store.get_checkpoint()
    except StoreError as e:
        problems.append(f"cannot read the store's checkpoint copy: {e}")
        return None
    if text is None:
        problems.append(
            "the copy of the latest checkpoint is missing from the store (deleted?), so a "
            "rolled-back catalog cannot be ruled out; if a crash interrupted `bwc log "
            "checkpoint`, run it again"
        )
    return text


def _columns(ev: Event) -> EventColumns:
    return EventColumns(ev.kind, ev.at, ev.actor, ev.station_id, ev.item_sha256, ev.leaf_hash)


def item_events(session: Session, sha256: str, trust: Trust) -> list[LoggedEvent]:
    """The item's custody events, each with its inclusion proof in the trusted checkpoint
    (cut from the catalog's tiles) when the checkpoint covers it."""
    cp = trust.log.checkpoint
    out = []
    for ev in custody.iter_events(session, sha256):
        proof: list[bytes] | None = None
        if cp is not None and trust.tree is not None and ev.idx < min(cp.size, trust.tree.size):
            try:
                proof = trust.tree.inclusion_proof(ev.idx, cp.size)
            except (TileError, ValueError):
                proof = None  # reported as "no inclusion proof"
        out.append(LoggedEvent(ev.idx, ev.leaf, proof, _columns(ev)))
    return out


def stored_meta(store: ObjectStore, sha256: str) -> tuple[bytes, bytes] | BwcError:
    try:
        return store.get_meta(sha256, "manifest.json"), store.get_meta(sha256, "manifest.sig")
    except BwcError as e:
        return e


def case_links(session: Session, shas: Sequence[str]) -> dict[str, set[str]]:
    """The catalog's case links of these items (each item present, with an empty set when
    it has none), for the ``cases`` check."""
    out: dict[str, set[str]] = {sha: set() for sha in shas}
    wanted = list(out)
    for lo in range(0, len(wanted), _ITEM_BATCH):
        rows = session.exec(
            select(CaseLink.sha256, CaseLink.case_id).where(
                col(CaseLink.sha256).in_(wanted[lo : lo + _ITEM_BATCH])
            )
        )
        for sha, case in rows:
            out[sha].add(case)
    return out


def _reader(
    store: ObjectStore, ahead: ReadAhead | None, skip: Callable[[str], bool]
) -> Callable[[str], Digest | BwcError | None]:
    def read(sha: str) -> Digest | BwcError | None:
        if skip(sha):
            return None  # deleted by policy: not read, reported as such
        started = ahead.take(sha) if ahead is not None else None
        try:
            return started.result() if started is not None else store.read_back(sha)
        except BwcError as e:
            return e
        except OSError as e:
            return VerificationError(f"cannot read stored object: {e.strerror or e}")

    return read


def check_with_digest(
    store: ObjectStore,
    item: Item,
    events: Sequence[LoggedEvent],
    log: LogTrust,
    digest: Digest | BwcError | None,
    links: set[str],
) -> ItemReport:
    """Every check of one item, its object's digest already taken (by `bwc verify`'s readers,
    or by `bwc export` while it copied the object): the one way both call the core."""
    return check_item(
        item.sha256,
        item.manifest,
        item.signature,
        key_id=item.key_id,
        events=events,
        log=log,
        digest=digest,
        stored_meta=None if _deleted(events) else stored_meta(store, item.sha256),
        row=item,
        case_links=links,
    )


def _deleted(events: Sequence[LoggedEvent]) -> bool:
    """Whether the item's logged events (the leaves, not the catalog's columns) say it was
    deleted by policy: its object is then not read."""
    return item_facts(decoded(events)).deleted is not None


def verify_items(
    session: Session,
    store: ObjectStore,
    items: Sequence[Item],
    trust: Trust,
    *,
    workers: int,
    on_done: Callable[[ItemReport], None] | None = None,
) -> list[ItemReport]:
    """Items by id: re-hash their stored objects in parallel while their events are proven."""
    events = {i.sha256: item_events(session, i.sha256, trust) for i in items}
    links = case_links(session, [i.sha256 for i in items])
    read = _reader(store, None, lambda sha: _deleted(events[sha]))
    out: list[ItemReport] = []
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="bwc-verify") as pool:
        digests = pool.map(read, [i.sha256 for i in items])
        for item, digest in zip(items, digests, strict=True):
            rep = check_with_digest(
                store, item, events[item.sha256], trust.log, digest, links[item.sha256]
            )
            out.append(rep)
            if on_done:
                on_done(rep)
    return out


# ---------------------------------------------------------------------------- the whole log


def _checkpoint_rows(session: Session, min_size: int = 0) -> Iterator[CheckpointRow]:
    """Catalog checkpoints of ``min_size`` and more, by size (then id), one at a time."""
    last = (min_size - 1, -1)
    while True:
        rows = list(
            session.exec(
                select(Checkpoint)
                .where(
                    (col(Checkpoint.size) > last[0])
                    | ((col(Checkpoint.size) == last[0]) & (col(Checkpoint.id) > last[1]))
                )
                .order_by(col(Checkpoint.size), col(Checkpoint.id))
                .limit(1000)
            )
        )
        if not rows:
            return
        for r in rows:
            yield CheckpointRow(f"checkpoint {r.id} (size {r.size})", r.note, r.size, r.root)
        last = (rows[-1].size, rows[-1].id or 0)


def _rollbacks(session: Session) -> list[str]:
    """Checkpoints in the order they were made never shrink (catalog ids)."""
    out: list[str] = []
    prev: int | None = None
    last_id = 0
    while True:
        rows = list(
            session.exec(
                select(Checkpoint.id, Checkpoint.size)
                .where(col(Checkpoint.id) > last_id)
                .order_by(col(Checkpoint.id))
                .limit(5000)
            )
        )
        if not rows:
            return out
        for cid, size in rows:
            if prev is not None and size < prev:
                out.append(
                    f"checkpoint {cid} (size {size}): log rolled back from size {prev} to "
                    f"{size} (a checkpoint was replaced by an older one)"
                )
            prev = size
        last_id = rows[-1][0] or last_id


class _StoredTiles:
    """Compares the tiles a streaming pass rebuilds with those the catalog stores, and with
    the store's published copy up to the store's checkpoint (``published``: its size)."""

    def __init__(
        self,
        session: Session,
        store: ObjectStore,
        published: int,
        problems: list[str],
        start: int = 0,
    ) -> None:
        self.session = session
        self.store = store
        self.published = published
        self.problems = problems
        first, full0 = start // TILE_WIDTH, published // TILE_WIDTH
        self.ahead = Ahead(store, (Tile(0, k, TILE_WIDTH).path for k in range(first, full0)))

    def full(self, level: int, index: int, data: bytes) -> None:
        if level > 0:
            stored = custody.stored_tile(self.session, level, index)
            if stored is None:
                self.problems.append(f"tile {level}/{index} is missing from the catalog")
            elif not hmac.compare_digest(stored, data):
                self.problems.append(
                    f"tile {level}/{index} in the catalog differs from the hashes of the events "
                    "below it (a tile hash was edited)"
                )
        if tile_width(self.published, level, index) == TILE_WIDTH:
            get = self.ahead.get if level == 0 else self.store.get_log
            compare_tile(get, Tile(level, index, TILE_WIDTH), data, self.problems)

    def finish(
        self,
        size: int,
        partials: Iterable[tuple[int, int, bytes]],
        published_partials: Iterable[tuple[int, int, bytes]],
    ) -> None:
        self.ahead.close()
        want = {(lv, i): d for lv, i, d in partials if lv > 0}
        for (level, index), data in want.items():
            stored = custody.stored_tile(self.session, level, index)
            if stored is None or stored != data:
                self.problems.append(
                    f"tile {level}/{index} in the catalog "
                    + ("is missing" if stored is None else "differs from the events below it")
                )
        t = log_tile.c
        for level, count, top in self.session.execute(
            sa_select(t.level, func.count(), func.max(t.idx)).group_by(t.level)
        ):
            expected = -(-(size >> (8 * level)) // 256)
            if count != expected or (top is not None and top >= expected):
                self.problems.append(
                    f"the catalog holds {count} tiles at level {level}, the log needs {expected}"
                )
        for level, index, data in published_partials:
            tile = Tile(level, index, len(data) // 32)
            compare_tile(self.store.get_log, tile, data, self.problems)


@dataclass(frozen=True)
class Resume:
    """Where an incremental check starts: a size the whole log was verified at, and the root
    that check found (from its `log-verified` custody event)."""

    size: int
    root: bytes
    event_idx: int


def last_full_check(session: Session) -> Resume:
    """The latest recorded check of the whole log (`bwc log verify --record`)."""
    head = session.get(LogHead, 1)
    idx = head.verified_idx if head else None
    hint = "run `bwc log verify --record` once, in full"
    if idx is None:
        raise NotFoundError("no check of the whole log was recorded yet", hint=hint)
    (ev,) = custody.events_at(session, [idx]) or (None,)
    try:
        if ev is None:
            raise ValueError("it is not in the log")
        d = decode_leaf(ev.leaf)
        if d.kind != "log-verified" or d.index != idx:
            raise ValueError(f"event #{idx} is not a log-verified event")
        size, root = int(d.details["size"]), note_b64decode(str(d.details["root"]))
    except (ValueError, KeyError, TypeError) as e:
        raise VerificationError(
            f"the record of the last full check of the log (#{idx}) is unusable: {e}", hint=hint
        ) from e
    if not 0 < size <= idx or len(root) != 32:
        raise VerificationError(f"the record of the last full check (#{idx}) is malformed")
    return Resume(size, root, idx)


def _resumed(
    session: Session, since: Resume, on_tile: Callable[[int, int, bytes], None]
) -> tuple[StreamingTree | None, str | None]:
    """The tree at ``since.size`` from the catalog's tiles, if they give the recorded root."""
    partials: dict[int, bytes] = {}
    source = custody.CatalogTiles(session)
    level = 0
    try:
        while since.size >> (8 * level):
            count = since.size >> (8 * level)
            width = count % TILE_WIDTH
            if width:
                partials[level] = source.read_tile(level, count // TILE_WIDTH, width)
            level += 1
        tree = StreamingTree.resume(since.size, partials, on_tile, keep_leaves=True)
    except TileError as e:
        return None, f"the catalog's tiles at size {since.size} are unreadable: {e}"
    if not hmac.compare_digest(tree.root(), since.root):
        return None, (
            f"the catalog's tiles at size {since.size} do not give the root the last full "
            "check recorded (the log was changed before it)"
        )
    return tree, None


def verify_log(
    session: Session,
    store: ObjectStore,
    origin: str | None = None,
    *,
    roots_at: Iterable[int] = (),
    station_id: str | None = None,
    since: Resume | None = None,
    workers: int | None = None,
) -> LogReport:
    """The whole log, streamed (see ``LogAuditor``); the store's checkpoint copy included.
    Run it in a snapshot transaction so that appends by other stations do not show up
    half-way. ``origin``: the log's (default: the catalog's). ``station_id``: the station
    whose store this is (stations sharing a catalog may keep stores of their own: each
    store must then hold at least its own station's latest checkpoint); None: the store
    must hold at least the catalog's latest. ``since``: check only what was appended after
    a recorded full check, from the tree it verified (the tiles must give its root).
    ``workers``: processes that read and check rows beside this one (default: one per
    core, for logs of more than ``PARALLEL_MIN`` rows; 0: none)."""
    origin = origin or custody.log_origin(session)
    head = session.get(LogHead, 1)
    head_size = head.size if head else 0
    keys = {
        k.key_id: KeyInfo(k.station_id, k.public_key, None) for k in catalog_keys(session).values()
    }
    problems: list[str] = []
    stored = _store_checkpoint(store, [])
    copy = CheckpointRow("checkpoint copy in the store", stored) if stored is not None else None
    published = copy.size_hint() if copy is not None else 0
    start = since.size if since is not None else 0
    tiles = _StoredTiles(session, store, published, problems, start)
    resumed: StreamingTree | None = None
    if since is not None:
        resumed, why = _resumed(session, since, tiles.full)
        if resumed is None:  # the tree it starts from is not the one verified: check it all
            problems.append(str(why))
            start = 0
            tiles = _StoredTiles(session, store, published, problems)
    rows: Iterable[CheckpointRow] = _checkpoint_rows(session, start)
    if copy is not None and published >= start:
        rows = _merge_by_size(rows, copy)
    auditor = LogAuditor(
        origin,
        keys,
        rows,
        on_tile=tiles.full,
        keep_leaves=True,
        roots_at={*roots_at, published},
        tree=resumed,
        announced=_announced_before(session, start),
    )
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if head_size - start >= PARALLEL_MIN else 0
    if workers > 0:
        start = _check_in_workers(session, auditor, start, head_size, workers, problems)
    for batch in custody.stream_rows(session, start):
        _add_batch(session, auditor, batch, problems)
    rep = auditor.finish(head_size)
    tiles.finish(rep.size, auditor.tree.partial_tiles(), rep.partials.get(published, []))
    rep.problems.extend(problems)
    rep.problems.extend(_rollbacks(session))
    latest = custody.latest_checkpoint(session)
    own = _latest_of(session, station_id) if station_id is not None else latest
    if latest is None:
        rep.problems.append("the log has no signed checkpoint")
    elif stored is None:
        rep.problems.append(
            "the copy of the latest checkpoint is missing from the store (deleted?), so a "
            "rolled-back catalog cannot be ruled out; if a crash interrupted `bwc log "
            "checkpoint`, run it again"
        )
    else:
        _store_copy_problems(stored, latest, own, keys, origin, rep)
    return rep


def _latest_of(session: Session, station_id: str) -> Checkpoint | None:
    """The latest checkpoint signed by one of this station's keys."""
    return session.exec(
        select(Checkpoint)
        .join(SigningKey, col(SigningKey.key_id) == col(Checkpoint.key_id))
        .where(SigningKey.station_id == station_id)
        .order_by(col(Checkpoint.id).desc())
        .limit(1)
    ).first()


def _announced_before(session: Session, size: int) -> dict[str, bytes]:
    """Keys announced by events before ``size`` (an incremental check does not read them:
    the full check it starts from did)."""
    if size == 0:
        return {}
    rows = [k for k in catalog_keys(session).values() if k.announced_idx is not None]
    out: dict[str, bytes] = {}
    by_idx = {e.idx: e for e in custody.events_at(session, [k.announced_idx or 0 for k in rows])}
    for k in rows:
        ev = by_idx.get(k.announced_idx or 0)
        if ev is not None and ev.idx < size:
            pub = _announcement(ev.leaf, k.key_id)
            if pub is not None:
                out[k.key_id] = pub
    return out


def _store_copy_problems(
    stored: str,
    latest: Checkpoint,
    own: Checkpoint | None,
    keys: dict[str, KeyInfo],
    origin: str,
    rep: LogReport,
) -> None:
    scp, found = open_checkpoint(
        "checkpoint copy in the store", stored, verifiers_of(keys, []), origin
    )
    if scp is None:
        rep.problems.extend(found)
        return
    if scp.size > latest.size:
        rep.problems.append(
            f"the store holds a checkpoint of size {scp.size}, newer than the catalog's latest "
            f"({latest.size}): the catalog was rolled back"
        )
    elif own is not None and scp.size < own.size:
        rep.problems.append(
            f"the store holds a checkpoint of size {scp.size}, older than the catalog's latest "
            f"({own.size}): the store's copy of the log was rolled back, or a checkpoint "
            "was not published (run `bwc log checkpoint`)"
        )


def _merge_by_size(rows: Iterable[CheckpointRow], extra: CheckpointRow) -> Iterator[CheckpointRow]:
    placed = False
    for r in rows:
        if not placed and extra.size_hint() < r.size_hint():
            yield extra
            placed = True
        yield r
    if not placed:
        yield extra


def _check_in_workers(
    session: Session, auditor: LogAuditor, start: int, stop: int, workers: int, out: list[str]
) -> int:
    """Rows [start, stop) read and checked by worker processes (``rowworkers``); a batch in
    which a worker saw anything unusual is read and checked again here, row by row. Returns
    where the caller's own pass begins: ``stop``, or where the workers stopped if they
    failed (the rest is then checked here: slower, never less)."""
    address = _address(session)
    if address is None:
        return start
    try:
        for lo, hi, frame in rowworkers.checked_batches(*address, start, stop, _BATCH, workers):
            if frame.irregular or frame.count != hi - lo or auditor.expected != lo:
                _add_batch(session, auditor, custody.rows_between(session, lo, hi), out)
                continue
            auditor.add_hashes(frame.hashes)
            out.extend(_missing_message(sha) for sha in frame.missing)
    except rowworkers.WorkerError as e:
        logger.warning("log verify: a worker failed (%s); checking the rest in one process", e)
        return auditor.expected
    return stop


def _address(session: Session) -> tuple[str, str] | None:
    """The catalog as a worker connects to it: (dialect, SQLite file or libpq URI); None
    for one it cannot reach (an in-memory database)."""
    url = session.get_bind().engine.url
    if url.get_backend_name() == "sqlite":
        db = url.database
        return ("sqlite", db) if db and db != ":memory:" and not db.startswith("file:") else None
    if url.get_backend_name() == "postgresql":
        return "postgresql", url.set(drivername="postgresql").render_as_string(hide_password=False)
    return None


def _add_batch(
    session: Session,
    auditor: LogAuditor,
    batch: Sequence[Any],
    out: list[str],
) -> None:
    missing = _missing_items(session, batch)
    auditor.add_rows(batch, text_leaf_time)
    out.extend(_missing_message(sha) for sha in missing)


def _missing_message(sha: str) -> str:
    return f"item {sha} was logged as ingested but its catalog row is missing (deleted?)"


def _missing_items(session: Session, batch: Sequence[tuple[object, ...]]) -> list[str]:
    """Items this batch logs as ingested whose catalog row is gone (rows are never deleted:
    an item deleted by policy keeps its record)."""
    logged = sorted({str(r[7]) for r in batch if r[3] == "ingested" and r[7]})
    if not logged:
        return []
    present = set(session.exec(select(Item.sha256).where(col(Item.sha256).in_(logged))))
    return [s for s in logged if s not in present]


def verify_all(
    session: Session,
    store: ObjectStore,
    *,
    workers: int,
    station_id: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[ItemReport], None] | None = None,
    ahead: ReadAhead | None = None,
) -> LogReport:
    """Everything: the log streamed (``verify_log``), then every item merged with its
    events in sha order, objects re-hashed ``workers`` at a time. ``on_done`` sees each
    item's report as it is made, in sha order; none is kept here (memory stays flat)."""
    latest = custody.latest_checkpoint(session)
    cp: note.Checkpoint | None = None
    if latest is not None:
        try:
            cp = note.unverified_checkpoint(latest.note)
        except NoteError:
            cp = None
    log = verify_log(session, store, roots_at=[cp.size] if cp else [], station_id=station_id)
    root_ok = cp is not None and log.matched(cp)
    keys = {
        k.key_id: KeyInfo(k.station_id, k.public_key, log.announced.get(k.key_id))
        for k in catalog_keys(session).values()
    }
    trust = LogTrust(cp, keys, log.problems, streamed=True, root_ok=root_ok)
    total = session.exec(select(func.count()).select_from(Item)).one()
    if on_start is not None:
        on_start(int(total))
    for chunk in _items_with_events(session):
        deleted = {sha for sha, _item, evs in chunk if _deleted(evs)}
        links = case_links(session, [sha for sha, _i, _e in chunk])
        read = _reader(store, ahead, lambda sha, d=deleted: sha in d)  # type: ignore[misc]
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="bwc-verify") as pool:
            digests = pool.map(read, [sha for sha, _i, _e in chunk])
            for (sha, item, evs), digest in zip(chunk, digests, strict=True):
                rep = check_item(
                    sha,
                    item.manifest,
                    item.signature,
                    key_id=item.key_id,
                    events=evs,
                    log=trust,
                    digest=digest,
                    stored_meta=None if sha in deleted else stored_meta(store, sha),
                    row=item,
                    case_links=links[sha],
                )
                if on_done:
                    on_done(rep)
    return log


def _items_with_events(
    session: Session,
) -> Iterator[list[tuple[str, Item, list[LoggedEvent]]]]:
    """Items in sha order, a batch at a time, each with its events (a merge of the item
    table and the events ordered by item): memory flat whatever the catalog's size."""
    last = ""
    while True:
        items = list(
            session.exec(
                select(Item)
                .where(col(Item.sha256) > last)
                .order_by(col(Item.sha256))
                .limit(_ITEM_BATCH)
            )
        )
        if not items:
            return
        last = items[-1].sha256
        events: dict[str, list[LoggedEvent]] = {i.sha256: [] for i in items}
        for ev in session.exec(
            select(Event)
            .where(col(Event.item_sha256).in_(list(events)))
            .order_by(col(Event.item_sha256), col(Event.idx))
        ):
            target = events.get(ev.item_sha256 or "")
            if target is not None:
                target.append(LoggedEvent(ev.idx, ev.leaf, None, _columns(ev)))
        yield [(i.sha256, i, events[i.sha256]) for i in items]
