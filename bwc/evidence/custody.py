"""The custody log in the catalog: events as RFC 9162 leaves (``bwc.evidence.events``),
serialized appends, the tree kept as C2SP tiles, signed checkpoints. Every function works in
a caller's Session.

Appends lock the log head (FOR UPDATE on PostgreSQL; SQLite's write lock) and, in the same
transaction, insert the events and extend the stored tiles (levels 1 and up in ``log_tile``;
level 0 is ``event.leaf_hash``). A root, a checkpoint or a proof then reads O(log n) tiles,
whatever the log's age; the head lock is held for the append and the tile update only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from bwc.errors import CatalogError, NoteError, ProofError, UsageError
from bwc.evidence import note
from bwc.evidence.events import (
    EVENT_KINDS,
    LEAF_VERSION,
    DecodedEvent,
    NewEvent,
    decode_leaf,
    event_leaf,
    leaf_parts,
    row_matches_leaf,
)
from bwc.evidence.merkle import leaf_hash, verify_consistency
from bwc.evidence.models import Checkpoint, Event, LogHead, SigningKey, log_tile
from bwc.evidence.rowcheck import rows_sql
from bwc.evidence.signing import Ed25519Signer
from bwc.evidence.tlog import (
    MAX_ENTRY_SIZE,
    TILE_WIDTH,
    StreamingTree,
    Tile,
    TileAppender,
    TiledTree,
    TileError,
    encode_entries,
)

__all__ = [
    "EVENT_KINDS",
    "LEAF_VERSION",
    "CatalogTiles",
    "DecodedEvent",
    "NewEvent",
    "append_events",
    "build_tiles",
    "decode_leaf",
    "event_leaf",
    "row_matches_leaf",
]

_BATCH = 5000  # events read at a time by the streaming passes


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------------------- the head


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


# ---------------------------------------------------------------------------- tiles


class CatalogTiles:
    """The log's tiles as the catalog stores them (a ``tlog.TileSource``): level 0 from the
    events' leaf hashes, levels 1 and up from ``log_tile``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def read_tile(self, level: int, index: int, width: int) -> bytes:
        if width <= 0:
            return b""
        if level == 0:
            return b"".join(_tile_events(self.session, Event.leaf_hash, index, width))
        data = stored_tile(self.session, level, index)
        if data is None or len(data) < width * 32:
            raise TileError(f"tile {level}/{index} (width {width}) is missing from the catalog")
        return data[: width * 32]


def _tile_events(session: Session, column: Any, index: int, width: int) -> list[bytes]:
    """``column`` of the events under tile ``index`` of width ``width``, in index order;
    all of them, or TileError."""
    start = index * TILE_WIDTH
    rows = list(
        session.exec(
            select(Event.idx, column)
            .where(col(Event.idx) >= start, col(Event.idx) < start + width)
            .order_by(col(Event.idx))
        )
    )
    if [r[0] for r in rows] != list(range(start, start + width)):
        raise TileError(f"events #{start}..#{start + width - 1} are not all in the log")
    return [bytes(r[1]) for r in rows]


def stored_tile(session: Session, level: int, index: int) -> bytes | None:
    """The catalog's tile ``index`` of ``level`` (1 and up), whole, or None."""
    t = log_tile.c
    found = session.execute(
        sa_select(t.hashes).where(t.level == level, t.idx == index)
    ).scalar_one_or_none()
    return None if found is None else bytes(found)


def tree(session: Session, size: int) -> TiledTree:
    """The log's tree at ``size`` events, from the catalog's tiles."""
    return TiledTree(size, CatalogTiles(session))


def _store_tiles(session: Session, changed: dict[tuple[int, int], bytes]) -> None:
    t = log_tile.c
    for (level, index), data in changed.items():
        done = session.execute(
            update(log_tile).where(t.level == level, t.idx == index).values(hashes=data)
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            session.execute(insert(log_tile).values(level=level, idx=index, hashes=data))


# ---------------------------------------------------------------------------- appending


class Appended(NamedTuple):
    idx: int
    leaf: bytes


def append_events(session: Session, events: Sequence[NewEvent]) -> list[Appended]:
    """Append events at the end of the log inside the caller's transaction; where they went.

    The log head row is locked, so concurrent appenders from several stations get
    consecutive indexes; the tiles are extended in the same transaction. The leaves are
    made before the lock (all but their index), so the lock is held for the append only.
    """
    if not events:
        return []
    sqlite_text = session.get_bind().dialect.name == "sqlite"
    parts = []
    for ev in events:
        head_bytes, tail = leaf_parts(ev)
        if len(head_bytes) + len(tail) + 20 > MAX_ENTRY_SIZE:
            raise UsageError(
                f"a {ev.kind} custody event of {len(head_bytes) + len(tail)} bytes is too "
                f"large (at most {MAX_ENTRY_SIZE})",
                hint="shorten the reason or details given",
            )
        at = ev.at.astimezone(UTC)
        when: object = at.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite_text else at
        parts.append((head_bytes, tail, when, ev))
    head = lock_head(session)
    if head.tiled_size != head.size:
        raise CatalogError(
            f"the custody log's tiles cover {head.tiled_size} of its {head.size} events",
            hint="run `bwc init` to build them (once, after an upgrade)",
        )
    last = session.exec(select(func.max(Event.idx))).one()
    stored = 0 if last is None else last + 1
    if stored != head.size:
        # Never append to a log that was cut or padded behind our back: the damage must stay
        # visible to `bwc log verify`, not be papered over by new events and checkpoints.
        raise CatalogError(
            f"the custody log head says {head.size} events but the last stored is #{stored - 1}",
            hint="run `bwc log verify`; the log was changed outside bwc",
        )
    rows: list[tuple[object, ...]] = []
    hashes: list[bytes] = []
    out: list[Appended] = []
    sha256 = hashlib.sha256
    for i, (head_bytes, tail, when, ev) in enumerate(parts):
        index = head.size + i
        leaf = head_bytes + b"%d" % index + tail
        lh = sha256(b"\x00" + leaf).digest()
        hashes.append(lh)
        rows.append((index, leaf, lh, ev.kind, when, ev.actor, ev.station_id, ev.item_sha256))
        out.append(Appended(index, leaf))
    changed = TileAppender(head.size, CatalogTiles(session).read_tile).append(hashes)
    # straight to the driver (in the session's transaction): tens of thousands of rows a
    # second; PostgreSQL's COPY, several times faster than INSERTs there
    cursor = session.connection().connection.cursor()
    try:
        if sqlite_text:
            cursor.executemany(_INSERT_QMARK, rows)
        else:
            with cursor.copy(_COPY) as copy:
                for row in rows:
                    copy.write_row(row)
    finally:
        cursor.close()
    _store_tiles(session, changed)
    head.size += len(events)
    head.tiled_size = head.size
    session.add(head)
    return out


_INSERT = "INSERT INTO event (idx, leaf, leaf_hash, kind, at, actor, station_id, item_sha256) "
_INSERT_QMARK = _INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"  # SQLite (at: SQLAlchemy's text)
_COPY = "COPY event (idx, leaf, leaf_hash, kind, at, actor, station_id, item_sha256) FROM STDIN"


# ---------------------------------------------------------------------------- reading


def iter_events(session: Session, item_sha256: str | None = None) -> Iterable[Event]:
    stmt = select(Event).order_by(col(Event.idx))
    if item_sha256 is not None:
        stmt = stmt.where(Event.item_sha256 == item_sha256)
    return session.exec(stmt)


def events_at(session: Session, indexes: Iterable[int]) -> list[Event]:
    wanted = sorted(set(indexes))
    if not wanted:
        return []
    return list(
        session.exec(select(Event).where(col(Event.idx).in_(wanted)).order_by(col(Event.idx)))
    )


def stream_events(
    session: Session, start: int = 0, end: int | None = None, batch: int = _BATCH
) -> Iterator[list[tuple[int, bytes, bytes, str, datetime, str, str, str | None]]]:
    """Every event from ``start`` (to ``end``) in index order, a batch of plain tuples at a
    time (idx, leaf, leaf_hash, kind, at, actor, station, item): memory stays flat whatever
    the log's size. ``end`` is exclusive: rows past it are not read even where some below
    it are missing."""
    pos = start
    while end is None or pos < end:
        stmt = (
            sa_select(
                col(Event.idx),
                col(Event.leaf),
                col(Event.leaf_hash),
                col(Event.kind),
                col(Event.at),
                col(Event.actor),
                col(Event.station_id),
                col(Event.item_sha256),
            )
            .where(col(Event.idx) >= pos)
            .order_by(col(Event.idx))
            .limit(batch if end is None else min(batch, end - pos))
        )
        if end is not None:
            stmt = stmt.where(col(Event.idx) < end)
        rows = [tuple(r) for r in session.execute(stmt)]
        if not rows:
            return
        yield rows
        pos = rows[-1][0] + 1


def _driver(session: Session) -> tuple[Any, str]:
    """The session's DB-API connection (in its transaction), and its dialect's name."""
    dbapi = session.connection().connection.dbapi_connection
    if dbapi is None:
        raise CatalogError("the catalog connection is closed")
    return dbapi, session.get_bind().dialect.name


def rows_between(session: Session, lo: int, hi: int) -> list[Any]:
    """Events [lo, hi) as ``stream_rows`` gives them (a batch a worker flagged, read again
    to be looked at row by row)."""
    dbapi, dialect = _driver(session)
    cur = dbapi.cursor()
    try:
        cur.execute(rows_sql(dialect, upto=True), (lo, hi))
        return list(cur.fetchall())
    finally:
        cur.close()


def stream_rows(session: Session, start: int = 0, batch: int = _BATCH) -> Iterator[list[Any]]:
    """Every event from ``start`` in index order, a batch at a time, as the driver gives
    them (idx, leaf, leaf_hash, kind, at as text: ``rowcheck.text_leaf_time``, actor,
    station, item): the fast read of `bwc log verify`, millions of rows with flat memory.
    Straight from the driver's cursor, in the session's transaction (its snapshot)."""
    dbapi, dialect = _driver(session)
    query = rows_sql(dialect, upto=False)

    def fetch(out: queue.Queue[list[Any] | BaseException | None], stop: threading.Event) -> None:
        # The driver reads the next batch while the caller checks this one: the database's
        # work (the driver releases the GIL) overlaps Python's. One cursor, this thread only.
        cur = dbapi.cursor()
        try:
            pos = start
            while not stop.is_set():
                cur.execute(query, (pos, batch))
                raw = list(cur.fetchall())
                if not raw:
                    break
                out.put(raw)
                pos = raw[-1][0] + 1
            out.put(None)
        except BaseException as e:  # handed to the reader, which raises it
            out.put(e)
        finally:
            cur.close()

    def rows() -> Iterator[list[Any]]:
        out: queue.Queue[list[Any] | BaseException | None] = queue.Queue(maxsize=2)
        stop = threading.Event()
        reader = threading.Thread(target=fetch, args=(out, stop), name="bwc-log-read")
        reader.start()
        try:
            while (got := out.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            stop.set()
            while reader.is_alive():  # let it finish its batch and see the stop
                with contextlib.suppress(queue.Empty):
                    out.get(timeout=0.1)
            reader.join()

    return rows()


def latest_checkpoint(session: Session) -> Checkpoint | None:
    return session.exec(select(Checkpoint).order_by(col(Checkpoint.id).desc()).limit(1)).first()


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


# ---------------------------------------------------------------------------- checkpoints


def note_signer(station_id: str, signer: Ed25519Signer) -> note.Signer:
    return note.Signer.from_private_key(station_id, signer.private_key)


def make_checkpoint(
    session: Session, signer: Ed25519Signer, station_id: str, now: datetime
) -> Checkpoint:
    """Sign the log as it stands and store the checkpoint. The head is locked first, so no
    other station appends between reading the size and reading the tiles."""
    head = lock_head(session)
    size = head.size
    if not head.origin:
        raise CatalogError("the custody log has no origin", hint="run `bwc init` to set it")
    if head.tiled_size != size:
        raise CatalogError(
            "the custody log's tiles are not built", hint="run `bwc init` to build them"
        )
    t = tree(session, size)
    try:
        root = t.root()
    except TileError as e:
        raise CatalogError(
            f"cannot compute the log's root: {e}", hint="run `bwc log verify`"
        ) from e
    _extends_the_last(session, head.origin, t, root)
    cp = note.Checkpoint(origin=head.origin, size=size, root=root)
    text = note.sign_checkpoint(cp, note_signer(station_id, signer))
    row = Checkpoint(size=size, root=root, note=text, key_id=signer.key_id, created_at=now)
    session.add(row)
    return row


def _extends_the_last(session: Session, origin: str, t: TiledTree, root: bytes) -> None:
    """Never sign over damage: the new root must extend the last signed checkpoint, by an
    RFC 9162 consistency proof cut from the same tiles (O(log n)). Tiles or leaves edited
    under it cannot produce one."""
    last = latest_checkpoint(session)
    if last is None:
        return
    hint = "run `bwc log verify`; nothing was signed"
    try:
        prev = note.open_checkpoint(last.note, verifiers(session), origin=origin)
    except NoteError as e:
        raise CatalogError(
            f"the latest checkpoint in the catalog does not verify: {e}", hint=hint
        ) from e
    try:
        if prev.size > t.size:
            raise ProofError(f"the log holds {t.size} events, fewer than the {prev.size} signed")
        if prev.size:
            proof = t.consistency_proof(prev.size) if prev.size < t.size else []
            verify_consistency(prev.size, t.size, proof, prev.root, root)
    except (ProofError, TileError, ValueError) as e:
        raise CatalogError(
            f"the log as stored does not extend checkpoint {last.id} (size {prev.size}): {e}",
            hint=hint,
        ) from e


# ---------------------------------------------------------------------------- publishing


def tile_bytes(session: Session, tile: Tile) -> bytes:
    """A tile (or entry bundle, level -1) of the log as the catalog holds it, in the form the
    store publishes it (C2SP tlog-tiles)."""
    if tile.level >= 0:
        return CatalogTiles(session).read_tile(tile.level, tile.index, tile.width)
    return encode_entries(_tile_events(session, Event.leaf, tile.index, tile.width))


# ---------------------------------------------------------------------------- building tiles


def build_tiles(session: Session, progress: Callable[[int, int], None] | None = None) -> int:
    """Build the stored tiles of a log made before tiles (once, after an upgrade), and record
    which event announced each signing key: one streaming pass over the events, in the
    caller's transaction, with the head locked. Leaf hashes are recomputed from the leaf
    bytes. Returns how many events are now tiled."""
    head = lock_head(session)
    if head.tiled_size == head.size:
        return head.size
    session.execute(delete(log_tile))
    built: dict[tuple[int, int], bytes] = {}

    def keep(level: int, index: int, data: bytes) -> None:
        built[(level, index)] = data

    streamed = StreamingTree(keep)
    announced: dict[str, int] = {}
    done = 0
    for rows in stream_events(session, 0, head.size):
        for idx, leaf, _lh, kind, *_rest in rows:
            if idx != done:
                raise CatalogError(
                    f"custody event #{done} is missing, so the log's tiles cannot be built",
                    hint="run `bwc log verify`; restore the catalog from a backup",
                )
            streamed.add(leaf_hash(leaf))
            if kind == "key-rotated":
                with contextlib.suppress(ValueError, KeyError):  # `bwc log verify` says so
                    announced[str(decode_leaf(leaf).details["key_id"])] = idx
            done += 1
        _store_tiles(session, built)
        built.clear()
        if progress is not None:
            progress(done, head.size)
    if done != head.size:
        raise CatalogError(
            f"the log head says {head.size} events but {done} are stored",
            hint="run `bwc log verify`; restore the catalog from a backup",
        )
    _store_tiles(session, {(lv, i): d for lv, i, d in streamed.partial_tiles()})
    for key in session.exec(select(SigningKey)):
        if key.key_id in announced and key.announced_idx is None:
            key.announced_idx = announced[key.key_id]
            session.add(key)
    head.tiled_size = head.size
    session.add(head)
    return done


def manifest_sha256(manifest: bytes) -> str:
    return hashlib.sha256(manifest).hexdigest()
