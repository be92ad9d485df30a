"""The log's published copy in a store (C2SP tlog-tiles under ``log/``), checked without a
catalog: the disaster-recovery check (`bwc log verify --from-store URL`), and what anyone
with read access to the bucket can do with any tlog-tiles client.

Every entry bundle is read in order, every entry re-hashed into the tree, each level-0 tile
compared with the hashes of its entries and each tile above with the tiles below it, and
the store's checkpoint with the rebuilt tree. Keys are the ones the log itself announces
(`key-rotated` entries); ``pinned`` verifier keys (as `bwc keys list` prints them) must
also have signed the checkpoint, so a forged log with forged announcements fails too.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from bwc.errors import NoteError, StoreError
from bwc.evidence import note
from bwc.evidence.stores import ObjectStore
from bwc.evidence.timestamp import imprint_problems, verify_token
from bwc.evidence.tlog import (
    TILE_WIDTH,
    Tile,
    TileError,
    decode_entries,
    tile_width,
)
from bwc.evidence.verify.core import CheckpointRow, LogAuditor, LogReport

_LOOKAHEAD = 8  # blocks of 256 entries fetched ahead (S3 answers one request at a time)


class Ahead:
    """Files of a store fetched a few ahead of their use, in a known order."""

    def __init__(self, store: ObjectStore, paths: Iterator[str], workers: int = 4) -> None:
        self._store = store
        self._paths = paths
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="bwc-tiles")
        self._queue: list[tuple[str, Future[bytes | None]]] = []
        self._fill()

    def _fill(self) -> None:
        while len(self._queue) < 2 * _LOOKAHEAD:
            path = next(self._paths, None)
            if path is None:
                return
            self._queue.append((path, self._pool.submit(self._store.get_log, path)))

    def get(self, path: str) -> bytes | None:
        """The file at ``path``: the next in the order given, else read now."""
        if self._queue and self._queue[0][0] == path:
            _, fut = self._queue.pop(0)
            self._fill()
            return fut.result()
        return self._store.get_log(path)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def compare_tile(
    store_get: Callable[[str], bytes | None],
    tile: Tile,
    data: bytes,
    problems: list[str],
    differs: str = "in the store differs from the hashes below it (a published tile was changed)",
) -> None:
    """The store's copy of ``tile`` must be ``data`` (rebuilt from the entries below it);
    ``differs`` says what it means when it is not."""
    try:
        stored = store_get(tile.path)
    except StoreError as e:
        problems.append(f"log/{tile.path} cannot be read from the store: {e}")
        return
    if stored is None:
        problems.append(f"log/{tile.path} is missing from the store")
    elif not hmac.compare_digest(stored, data):
        problems.append(f"log/{tile.path} {differs}")


def verify_published(
    store: ObjectStore,
    *,
    pinned: Sequence[note.Verifier] = (),
    origin: str | None = None,
    tsa_roots: bytes | None = None,
) -> LogReport:
    try:
        text = store.get_checkpoint()
    except StoreError as e:
        return LogReport(problems=[f"cannot read the store's checkpoint: {e}"])
    if text is None:
        return LogReport(problems=["the store holds no checkpoint: no log is published there"])
    row = CheckpointRow("checkpoint in the store", text)
    try:
        shown = note.unverified_checkpoint(text)
    except NoteError as e:
        return LogReport(problems=[f"checkpoint in the store: {e}"])
    size = shown.size
    problems: list[str] = []
    rows = [row]
    has_token, stamped = _timestamp_of(store, size, text, tsa_roots, problems)
    if stamped is not None:
        rows.append(stamped)  # another signature of this size: checked like the checkpoint
    auditor = LogAuditor(
        origin or shown.origin,
        {},
        rows,
        on_tile=lambda lv, i, d: compare_tile(store.get_log, Tile(lv, i, TILE_WIDTH), d, problems),
        roots_at=[size],
        trust_announced=True,
    )
    blocks = -(-size // TILE_WIDTH)

    def paths() -> Iterator[str]:
        for k in range(blocks):
            w = tile_width(size, 0, k)
            yield Tile(-1, k, w).path
            yield Tile(0, k, w).path

    ahead = Ahead(store, paths())
    try:
        for k in range(blocks):
            width = tile_width(size, 0, k)
            bundle = Tile(-1, k, width)
            try:
                data = ahead.get(bundle.path)
                if data is None:
                    raise TileError(f"log/{bundle.path} is missing from the store")
                leaves = decode_entries(data, width)
            except (TileError, StoreError) as e:
                problems.append(f"{e}; the log cannot be checked past entry #{k * TILE_WIDTH}")
                break
            hashes = bytearray()
            for n, leaf in enumerate(leaves):
                idx = k * TILE_WIDTH + n
                hashes += auditor.add_entry(idx, leaf)
            differs = (
                f"does not hold the hashes of the entries in log/{bundle.path} "
                "(an entry or a tile was changed)"
            )
            compare_tile(ahead.get, Tile(0, k, width), bytes(hashes), problems, differs)
    finally:
        ahead.close()
    rep = auditor.finish(auditor.tree.size)
    for level, index, data in rep.partials.get(size, []):
        compare_tile(store.get_log, Tile(level, index, len(data) // 32), data, problems)
    rep.problems.extend(problems)
    rep.timestamps = int(has_token)
    if pinned:
        try:
            note.open_checkpoint(text, pinned)
        except NoteError as e:
            rep.problems.append(f"the store's checkpoint is not signed by a pinned key: {e}")
    keys = auditor.keys.values()
    try:
        verifiers = [note.Verifier.from_public_key(k.station_id, k.public_key) for k in keys]
        rep.latest = note.open_checkpoint(text, verifiers)
    except NoteError:
        rep.latest = None  # reported by the auditor
    return rep


def _timestamp_of(
    store: ObjectStore, size: int, text: str, roots: bytes | None, problems: list[str]
) -> tuple[bool, CheckpointRow | None]:
    """The RFC 3161 timestamp published for the store checkpoint's size, if there is one
    (whether there is, first; log/timestamps/<size>.tsr over .../<size>.checkpoint): its
    imprint checked, and its signature when the TSA's roots are given (``ca_file``). Only this
    size: the store cannot be listed for older ones; `bwc log verify` checks them all. The
    timestamped note, when it is not the store checkpoint's bytes, is returned to be checked
    against the rebuilt tree like the checkpoint."""
    note_path, tsr_path = f"timestamps/{size}.checkpoint", f"timestamps/{size}.tsr"
    try:
        tsr, stamped = store.get_log(tsr_path), store.get_log(note_path)
    except StoreError as e:
        problems.append(f"cannot read the checkpoint's timestamp from the store: {e}")
        return False, None
    if tsr is None:
        return False, None
    if stamped is None:
        problems.append(f"log/{note_path} is missing from the store (its token is there)")
        return True, None
    # no roots given: the imprint alone (the command line says so)
    found = imprint_problems(tsr, stamped) if roots is None else verify_token(tsr, stamped, roots)
    problems.extend(f"log/{tsr_path} in the store: {p}" for p in found)
    if stamped == text.encode("utf-8"):
        return True, None
    text2 = stamped.decode("utf-8", errors="replace")
    return True, CheckpointRow(f"log/{note_path} in the store", text2)
