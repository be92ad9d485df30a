"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles) for the custody log. Pure logic, no I/O.

The log's Merkle tree (RFC 9162) is kept as tiles of 256 hashes: at level 0 the leaf hashes,
at level L the hashes of the full tiles of level L-1 (each the root of a subtree of
``256**L`` leaves). A tree of size ``s`` has at level ``L`` the full tiles ``0 ..
(s >> 8L) // 256 - 1`` and, when ``(s >> 8L) % 256`` is not 0, one partial tile of that
width. Roots, inclusion and consistency proofs then need O(log n) tiles, whatever the log's
age, and anyone holding the tiles (the catalog, the store's published copy, a court bundle)
can compute them.

* :class:`TiledTree` answers RFC 9162 questions from any :class:`TileSource`.
* :class:`TileAppender` extends stored tiles by a batch of leaves (the catalog's append).
* :class:`StreamingTree` rebuilds every tile and any prefix root from a stream of leaf
  hashes, in memory bounded by the tree's height (migration, `bwc log verify`, publishing).
* Paths (``tile/<L>/<N>[.p/<W>]``, ``tile/entries/<N>[.p/<W>]``) and entry bundles.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from bwc.evidence.merkle import HASH_SIZE, SubtreeHashes

__all__ = [
    "MAX_ENTRY_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "StreamingTree",
    "Tile",
    "TileAppender",
    "TileError",
    "TileSource",
    "TiledTree",
    "decode_entries",
    "encode_entries",
    "entries_path",
    "parse_tile_path",
    "superseded",
    "tile_hash",
    "tile_path",
    "tile_width",
    "tiles_of",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # hashes in a full tile
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_ENTRY_SIZE = 0xFFFF  # an entry bundle prefixes each entry with a big-endian uint16 length
_NODE = b"\x01"


class TileError(ValueError):
    """A tile is missing, of the wrong size, or not what the tree needs."""


@dataclass(frozen=True)
class Tile:
    level: int  # -1 for an entry bundle
    index: int
    width: int  # 1..256

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        if self.level < 0:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)


class TileSource(Protocol):
    def read_tile(self, level: int, index: int, width: int) -> bytes:
        """The first ``width`` hashes (``width * 32`` bytes) of tile ``index`` at ``level``.
        Raise TileError when they are not there."""


def tile_width(size: int, level: int, index: int) -> int:
    """How many hashes tile ``index`` at ``level`` holds in a tree of ``size`` leaves (0: the
    tile does not exist yet)."""
    count = size >> (TILE_HEIGHT * level)
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def tiles_of(size: int, *, since: int = 0, entries: bool = False) -> list[Tile]:
    """The tiles of a tree of ``size`` leaves that a tree of ``since`` leaves did not have
    in this form (new full tiles, and every partial one that grew), bottom level first;
    with ``entries``, the entry bundles too (level -1)."""
    out: list[Tile] = []
    levels = [-1] if entries else []
    level = 0
    while size >> (TILE_HEIGHT * level):
        levels.append(level)
        level += 1
    for lv in levels:
        shift = TILE_HEIGHT * max(lv, 0)
        old, new = since >> shift, size >> shift
        first = old // TILE_WIDTH
        for index in range(first, -(-new // TILE_WIDTH)):
            width = tile_width(size, max(lv, 0), index)
            if index == first and old % TILE_WIDTH and width == old % TILE_WIDTH:
                continue  # unchanged partial
            if width:
                out.append(Tile(lv, index, width))
    return out


def superseded(tile: Tile, since: int) -> Tile | None:
    """The partial version of ``tile`` a tree of ``since`` leaves had, which ``tile`` (grown
    or full) replaces in a published copy; None if it had none."""
    old = tile_width(since, max(tile.level, 0), tile.index)
    return Tile(tile.level, tile.index, old) if 0 < old < TILE_WIDTH and old != tile.width else None


# ---------------------------------------------------------------------------- paths


def _index_path(n: int) -> str:
    """``1234067`` -> ``x001/x234/067`` (3-digit elements, all but the last with an x)."""
    if n < 0:
        raise ValueError(f"negative tile index {n}")
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    if not 0 <= level <= 63:
        raise ValueError(f"tile level {level} is outside 0..63")
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} is outside 1..256")
    partial = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{_index_path(index)}{partial}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"bundle width {width} is outside 1..256")
    partial = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/entries/{_index_path(index)}{partial}"


_PATH_RE = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


def parse_tile_path(path: str) -> Tile:
    """The tile a path names (strict: exactly the spec's form, so one tile has one path)."""
    m = _PATH_RE.fullmatch(path)
    if m is None:
        raise TileError(f"not a tile path: {path!r}")
    index = 0
    for part in m["index"].split("/"):
        index = index * 1000 + int(part.lstrip("x"))
    if m["index"].startswith("x000"):
        raise TileError(f"tile path with a leading zero element: {path!r}")
    width = int(m["width"]) if m["width"] else TILE_WIDTH
    level = -1 if m["level"] == "entries" else int(m["level"])
    if (m["width"] and width >= TILE_WIDTH) or level > 63:
        raise TileError(f"tile path out of range: {path!r}")
    return Tile(level, index, width)


# ---------------------------------------------------------------------------- entry bundles


def encode_entries(entries: Iterable[bytes]) -> bytes:
    out = bytearray()
    for e in entries:
        if len(e) > MAX_ENTRY_SIZE:
            raise ValueError(f"a log entry of {len(e)} bytes does not fit an entry bundle")
        out += struct.pack(">H", len(e)) + e
    return bytes(out)


def decode_entries(data: bytes, count: int) -> list[bytes]:
    """Exactly ``count`` entries, and nothing after them; TileError otherwise."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise TileError("entry bundle ends inside a length prefix")
        (n,) = struct.unpack_from(">H", data, pos)
        if pos + 2 + n > len(data):
            raise TileError("entry bundle ends inside an entry")
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if len(out) != count:
        raise TileError(f"entry bundle holds {len(out)} entries, expected {count}")
    return out


# ---------------------------------------------------------------------------- hashing


def _fold(hashes: bytes | memoryview) -> bytes:
    """MTH of a power-of-two run of hashes (each level pairwise, left to right)."""
    level = bytes(hashes)
    while len(level) > HASH_SIZE:
        step = 2 * HASH_SIZE
        level = b"".join(
            hashlib.sha256(_NODE + level[j : j + step]).digest() for j in range(0, len(level), step)
        )
    return level


def tile_hash(full_tile: bytes) -> bytes:
    """The hash a full tile contributes to the level above: MTH of its 256 hashes."""
    if len(full_tile) != FULL_TILE_BYTES:
        raise TileError(f"a full tile is {FULL_TILE_BYTES} bytes, not {len(full_tile)}")
    return _fold(full_tile)


class TiledTree(SubtreeHashes):
    """The tree of ``size`` leaves held in tiles: any prefix root and proof, reading only the
    tiles on the paths asked about (each read once, then cached)."""

    def __init__(self, size: int, source: TileSource) -> None:
        if size < 0:
            raise ValueError(f"negative tree size {size}")
        self._size = size
        self._source = source
        self._tile = lru_cache(maxsize=64)(self._read)

    @property
    def size(self) -> int:
        return self._size

    def _read(self, level: int, index: int) -> bytes:
        width = tile_width(self._size, level, index)
        data = self._source.read_tile(level, index, width)
        if len(data) != width * HASH_SIZE:
            raise TileError(
                f"tile {tile_path(level, index, width)} holds {len(data)} bytes, "
                f"expected {width * HASH_SIZE}"
            )
        return data

    def _node(self, height: int, index: int) -> bytes:
        level, rest = divmod(height, TILE_HEIGHT)
        first = index << rest  # the subtree's first hash at this tile level
        tile, offset = divmod(first, TILE_WIDTH)
        data = self._tile(level, tile)
        run = data[offset * HASH_SIZE : (offset + (1 << rest)) * HASH_SIZE]
        if len(run) != (HASH_SIZE << rest):
            raise TileError(f"tile {level}/{tile} is too short for subtree {height}/{index}")
        return _fold(run)


# ---------------------------------------------------------------------------- appending


class TileAppender:
    """Extends a tree's stored tiles by a batch of leaf hashes. ``read`` gives the tiles as
    they are (the source of the stored tree); only the right edge of each level is read, and
    a level above 0 only when a tile below it fills, so an append costs amortised O(1)."""

    def __init__(self, size: int, read: Callable[[int, int, int], bytes]) -> None:
        self.size = size
        self._read = read

    def append(self, leaf_hashes: Sequence[bytes]) -> dict[tuple[int, int], bytes]:
        """The tiles at levels >= 1 that change, (level, index) -> their whole new content;
        level 0 (the leaf hashes themselves) is the caller's."""
        changed: dict[tuple[int, int], bytes] = {}
        new = list(leaf_hashes)
        level = 0
        while new:
            before = self.size >> (TILE_HEIGHT * level)  # hashes at this level so far
            tile, offset = divmod(before, TILE_WIDTH)
            fills = offset + len(new) >= TILE_WIDTH
            if level == 0 and not fills:
                break  # nothing reaches level 1
            prefix = self._read(level, tile, offset) if offset else b""
            data = prefix + b"".join(new)
            completed: list[bytes] = []
            for k in range(0, len(data), FULL_TILE_BYTES):
                chunk = data[k : k + FULL_TILE_BYTES]
                if level > 0:
                    changed[(level, tile + k // FULL_TILE_BYTES)] = chunk
                if len(chunk) == FULL_TILE_BYTES:
                    completed.append(tile_hash(chunk))
            new = completed
            level += 1
        self.size += len(leaf_hashes)
        return changed


# ---------------------------------------------------------------------------- streaming


class StreamingTree:
    """A tree built leaf by leaf, as the log is read: the root at the current size in
    O(log n), and each tile as it fills (``on_tile(level, index, data)``), in memory bounded
    by the tree's height. ``keep_leaves``: also collect level-0 tiles (the leaf hashes)."""

    def __init__(
        self,
        on_tile: Callable[[int, int, bytes], None] | None = None,
        *,
        keep_leaves: bool = False,
    ) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # complete subtrees, heights decreasing
        self._current: list[bytearray] = []  # the unfilled tile at each level
        self._full: list[int] = []  # full tiles so far at each level
        self._on_tile = on_tile
        self._first_level = 0 if keep_leaves else 1

    @classmethod
    def resume(
        cls,
        size: int,
        partials: Mapping[int, bytes],
        on_tile: Callable[[int, int, bytes], None] | None = None,
        *,
        keep_leaves: bool = False,
    ) -> StreamingTree:
        """The tree as it stands at ``size``, from the hashes of its rightmost unfilled tile
        at each level (level 0 included: level -> bytes). Nothing here proves them right:
        the caller compares ``root()`` with a trusted root of that size."""
        t = cls(on_tile, keep_leaves=keep_leaves)
        t.size = size
        levels = 0
        while size >> (TILE_HEIGHT * levels):
            levels += 1
        for level in range(levels):
            count = size >> (TILE_HEIGHT * level)
            data = partials.get(level, b"")
            if len(data) != (count % TILE_WIDTH) * HASH_SIZE:
                raise TileError(
                    f"the partial tile at level {level} of a tree of size {size} holds "
                    f"{len(data) // HASH_SIZE} hashes, expected {count % TILE_WIDTH}"
                )
            keep = level >= t._first_level
            t._current.append(bytearray(data) if keep else bytearray())
            t._full.append(count // TILE_WIDTH)
        for level in reversed(range(levels)):
            data = partials.get(level, b"")
            width, offset = len(data) // HASH_SIZE, 0
            for bit in reversed(range(TILE_HEIGHT)):
                if width >> bit & 1:
                    run = data[offset * HASH_SIZE : (offset + (1 << bit)) * HASH_SIZE]
                    t._stack.append((TILE_HEIGHT * level + bit, _fold(run)))
                    offset += 1 << bit
        return t

    def add(self, leaf_hash: bytes) -> None:
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, expected {HASH_SIZE}")
        self.size += 1
        self._push(0, leaf_hash)

    def add_all(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.add(h)

    def add_many(self, leaf_hashes: Sequence[bytes]) -> None:
        """Many leaves at once: each run of 256 that fills a level-0 tile is hashed as one
        tile (its root pushed as one subtree of height 8) instead of leaf by leaf."""
        n, pos = len(leaf_hashes), 0
        while pos < n and self.size % TILE_WIDTH:
            self.add_fast(leaf_hashes[pos])
            pos += 1
        while n - pos >= TILE_WIDTH:
            chunk = b"".join(leaf_hashes[pos : pos + TILE_WIDTH])
            if len(chunk) != FULL_TILE_BYTES:
                raise ValueError("leaf hashes must be 32 bytes each")
            pos += TILE_WIDTH
            self.size += TILE_WIDTH
            if self._first_level == 0:
                while not self._current:
                    self._current.append(bytearray())
                    self._full.append(0)
                self._current[0] += chunk
                self._record_full(0)
            self._push(TILE_HEIGHT, _fold(chunk))
        while pos < n:
            self.add_fast(leaf_hashes[pos])
            pos += 1

    def _push(self, height: int, h: bytes) -> None:
        """A complete subtree of ``height`` (its leaves already counted) onto the stack."""
        stack = self._stack
        while True:
            if height % TILE_HEIGHT == 0 and height // TILE_HEIGHT >= self._first_level:
                self._record(height // TILE_HEIGHT, h)
            if stack and stack[-1][0] == height:
                h = hashlib.sha256(_NODE + stack.pop()[1] + h).digest()
                height += 1
            else:
                stack.append((height, h))
                return

    def add_fast(self, leaf_hash: bytes) -> None:
        """``add`` for a caller that checked the hash's length: the hot loop of a check of
        millions of leaves (level 0 recorded inline, the merges unrolled)."""
        self.size += 1
        if self._first_level == 0:
            if not self._current:
                self._current.append(bytearray())
                self._full.append(0)
            cur = self._current[0]
            cur += leaf_hash
            if len(cur) == FULL_TILE_BYTES:
                self._record_full(0)
        stack = self._stack
        if not stack or stack[-1][0] != 0:
            stack.append((0, leaf_hash))
            return
        h, height = leaf_hash, 0
        while stack and stack[-1][0] == height:
            h = hashlib.sha256(_NODE + stack.pop()[1] + h).digest()
            height += 1
            if height % TILE_HEIGHT == 0 and height // TILE_HEIGHT >= self._first_level:
                self._record(height // TILE_HEIGHT, h)
        stack.append((height, h))

    def _record_full(self, level: int) -> None:
        cur = self._current[level]
        index = self._full[level]
        self._full[level] += 1
        data = bytes(cur)
        cur.clear()
        if self._on_tile is not None:
            self._on_tile(level, index, data)

    def _record(self, level: int, h: bytes) -> None:
        while len(self._current) <= level:
            self._current.append(bytearray())
            self._full.append(0)
        cur = self._current[level]
        cur += h
        if len(cur) == FULL_TILE_BYTES:
            self._record_full(level)

    def root(self) -> bytes:
        """MTH of the leaves so far (EMPTY_ROOT for none)."""
        if not self._stack:
            return hashlib.sha256(b"").digest()
        r = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            r = hashlib.sha256(_NODE + left + r).digest()
        return r

    def partial_tiles(self) -> Iterator[tuple[int, int, bytes]]:
        """The unfilled tile of each level, (level, index, data), as the tree stands."""
        for level, cur in enumerate(self._current):
            if level >= self._first_level and cur:
                yield level, self._full[level], bytes(cur)
