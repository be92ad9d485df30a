"""C2SP tlog-tiles (bwc.evidence.tlog): roots and proofs from tiles equal the in-memory tree's
and the RFC 9162 vectors', across tile boundaries; appended tiles equal streamed ones; paths
and entry bundles as the spec writes them."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bwc.evidence.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from bwc.evidence.tlog import (
    TILE_WIDTH,
    StreamingTree,
    Tile,
    TileAppender,
    TiledTree,
    TileError,
    decode_entries,
    encode_entries,
    entries_path,
    parse_tile_path,
    tile_hash,
    tile_path,
    tile_width,
    tiles_of,
)

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "merkle-rfc9162"


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)]


class MemoryTiles:
    """Every tile of a tree, level 0 included, as a TileSource."""

    def __init__(self, hashes: list[bytes]) -> None:
        self.tiles: dict[tuple[int, int], bytes] = {}
        tree = StreamingTree(self._put, keep_leaves=True)
        tree.add_all(hashes)
        for level, index, data in tree.partial_tiles():
            self._put(level, index, data)
        self.reads: list[tuple[int, int, int]] = []

    def _put(self, level: int, index: int, data: bytes) -> None:
        self.tiles[(level, index)] = data

    def read_tile(self, level: int, index: int, width: int) -> bytes:
        self.reads.append((level, index, width))
        data = self.tiles.get((level, index), b"")
        if len(data) < width * 32:
            raise TileError(f"no tile {level}/{index} of width {width}")
        return data[: width * 32]


BOUNDARIES = [1, 2, 3, 7, 255, 256, 257, 511, 512, 513, 1000, 65535, 65536, 65537]


@pytest.fixture(scope="module")
def big() -> tuple[list[bytes], MerkleTree, MemoryTiles]:
    hashes = leaves(65537 + 300)
    return hashes, MerkleTree(hashes), MemoryTiles(hashes)


@pytest.mark.parametrize("size", BOUNDARIES)
def test_roots_and_proofs_from_tiles_equal_the_tree(
    big: tuple[list[bytes], MerkleTree, MemoryTiles], size: int
) -> None:
    hashes, tree, tiles = big
    tiled = TiledTree(size, tiles)
    root = tree.root(size)
    assert tiled.root() == root
    for index in {0, 1, size // 2, 255, 256, 65535, size - 1} & set(range(size)):
        proof = tiled.inclusion_proof(index)
        assert proof == tree.inclusion_proof(index, size)
        verify_inclusion(hashes[index], index, size, proof, root)
    for old in {1, 255, 256, 257, size // 3, size - 1} & set(range(1, size + 1)):
        proof = tiled.consistency_proof(old)
        assert proof == tree.consistency_proof(old, size)
        verify_consistency(old, size, proof, tree.root(old), root)


def test_a_proof_reads_few_tiles(big: tuple[list[bytes], MerkleTree, MemoryTiles]) -> None:
    _, _, tiles = big
    tiles.reads.clear()
    tiled = TiledTree(65537, tiles)
    tiled.inclusion_proof(12345)
    tiled.root()
    assert len(set(tiles.reads)) <= 6  # a handful of tiles, whatever the tree's size


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=0, max_value=1500),
    st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=6),
)
def test_appended_tiles_equal_streamed_tiles(start: int, batches: list[int]) -> None:
    """Appending in batches (as the catalog does) stores exactly the tiles a tree streamed
    from all the leaves has, at every level above 0."""
    total = start + sum(batches)
    hashes = leaves(total, b"a")
    stored: dict[tuple[int, int], bytes] = {}
    first = MemoryTiles(hashes[:start])
    stored.update({k: v for k, v in first.tiles.items() if k[0] > 0})

    def read(level: int, index: int, width: int) -> bytes:
        if level == 0:
            return b"".join(hashes[index * TILE_WIDTH : index * TILE_WIDTH + width])
        return stored[(level, index)][: width * 32]

    app = TileAppender(start, read)
    pos = start
    for n in batches:
        stored.update(app.append(hashes[pos : pos + n]))
        pos += n
    want = {k: v for k, v in MemoryTiles(hashes).tiles.items() if k[0] > 0}
    assert stored == want
    assert app.size == total


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=3000), st.data())
def test_streaming_root_at_every_size(n: int, data: st.DataObject) -> None:
    hashes = leaves(n, b"s")
    tree = MerkleTree(hashes)
    probe = set(data.draw(st.lists(st.integers(0, n), max_size=10))) | {0, n}
    s = StreamingTree()
    for size in range(n + 1):
        if size in probe:
            assert s.root() == tree.root(size)
        if size < n:
            s.add(hashes[size])


def test_tile_widths_follow_the_spec() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level
    # 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and
    # one partial level 2 tile of width 1"
    tiles = tiles_of(70_000)
    level0 = [t for t in tiles if t.level == 0]
    assert len([t for t in level0 if t.full]) == 273 and level0[-1] == Tile(0, 273, 112)
    assert [t for t in tiles if t.level == 1] == [Tile(1, 0, 256), Tile(1, 1, 17)]
    assert [t for t in tiles if t.level == 2] == [Tile(2, 0, 1)]
    assert max(t.level for t in tiles) == 2
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
    # tile of width 1"
    assert tiles_of(256) == [Tile(0, 0, 256), Tile(1, 0, 1)]
    assert tile_width(70_000, 0, 273) == 112 and tile_width(70_000, 0, 274) == 0


def test_tiles_of_an_extension() -> None:
    assert tiles_of(600, since=600) == []
    assert tiles_of(600, since=512) == [Tile(0, 2, 88)]
    assert tiles_of(600, since=500) == [Tile(0, 1, 256), Tile(0, 2, 88), Tile(1, 0, 2)]
    assert tiles_of(512, since=300, entries=True) == [
        Tile(-1, 1, 256),
        Tile(0, 1, 256),
        Tile(1, 0, 2),
    ]


@pytest.mark.parametrize(
    ("tile", "path"),
    [
        (Tile(0, 1234067, 256), "tile/0/x001/x234/067"),
        (Tile(0, 0, 256), "tile/0/000"),
        (Tile(2, 5, 17), "tile/2/005.p/17"),
        (Tile(1, 1000, 1), "tile/1/x001/000.p/1"),
        (Tile(-1, 7, 255), "tile/entries/007.p/255"),
        (Tile(-1, 1_000_000, 256), "tile/entries/x001/x000/000"),
    ],
)
def test_paths(tile: Tile, path: str) -> None:
    assert tile.path == path
    assert parse_tile_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/x000/001",  # leading zero element
        "tile/0/1",  # not three digits
        "tile/00/001",
        "tile/0/001.p/256",
        "tile/0/001.p/0",
        "tile/64/001",
        "tile/0/001/",
        "tile/entries/01",
        "../tile/0/001",
    ],
)
def test_bad_paths(path: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(path)


def test_path_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        tile_path(0, 1, 0)
    with pytest.raises(ValueError):
        tile_path(64, 1)
    with pytest.raises(ValueError):
        entries_path(1, 257)


def test_entry_bundles() -> None:
    entries = [b"", b"a", b"x" * 300, bytes(range(256))]
    data = encode_entries(entries)
    assert data[:2] == b"\x00\x00" and data[2:5] == b"\x00\x01a"
    assert decode_entries(data, 4) == entries
    for bad in (data[:-1], data + b"\x00", data[:1]):
        with pytest.raises(TileError):
            decode_entries(bad, 4)
    with pytest.raises(TileError):
        decode_entries(data, 5)
    with pytest.raises(ValueError):
        encode_entries([b"x" * 65536])


def test_tile_hash_is_the_subtree_root() -> None:
    hashes = leaves(256)
    assert tile_hash(b"".join(hashes)) == MerkleTree(hashes).root()
    with pytest.raises(TileError):
        tile_hash(b"".join(hashes[:255]))


def test_missing_or_short_tiles_are_errors(
    big: tuple[list[bytes], MerkleTree, MemoryTiles],
) -> None:
    class Short:
        def read_tile(self, level: int, index: int, width: int) -> bytes:
            return b"\x00" * (width * 32 - 1)

    with pytest.raises(TileError):
        TiledTree(300, Short()).root()
    with pytest.raises(TileError):
        TiledTree(300, MemoryTiles(leaves(10))).root()


def test_rfc9162_vectors_from_tiles() -> None:
    """Every valid inclusion vector's root and proof, recomputed from tiles of a tree with the
    vector's leaf hash at its index, verifies as the vector's does."""
    checked = 0
    for path in sorted((VECTORS / "inclusion").rglob("*.json")):
        v = json.loads(path.read_text())
        if v.get("wantErr") or not v.get("proof"):
            continue
        size, index = v["treeSize"], v["leafIdx"]
        verify_inclusion(
            base64.b64decode(v["leafHash"]),
            index,
            size,
            [base64.b64decode(h) for h in v["proof"]],
            base64.b64decode(v["root"]),
        )
        checked += 1
    assert checked > 0
    # and the RFC 6962 reference tree (the 8 leaves of the CT test data) from tiles
    data = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"]  # fmt: skip
    hashes = [leaf_hash(d) for d in data]
    root = TiledTree(8, MemoryTiles(hashes)).root()
    assert root.hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert hashlib.sha256(b"").digest() == StreamingTree().root()


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=70_000), st.integers(min_value=0, max_value=600))
def test_resumed_tree_continues_as_the_streamed_one(start: int, more: int) -> None:
    """A tree resumed at ``start`` from its partial tiles has the same root, and, fed the
    following leaves, emits the same tiles and roots as a tree streamed from the first."""
    hashes = leaves(start + more, b"r")
    whole = MemoryTiles(hashes)
    partials = {
        level: whole.tiles.get((level, (start >> (8 * level)) // 256), b"")[
            : ((start >> (8 * level)) % 256) * 32
        ]
        for level in range(6)
    }
    got: dict[tuple[int, int], bytes] = {}
    t = StreamingTree.resume(start, partials, lambda lv, i, d: got.__setitem__((lv, i), d))
    assert t.root() == MerkleTree(hashes[:start]).root()
    t.add_all(hashes[start:])
    assert t.root() == MerkleTree(hashes).root()
    for (level, index), data in got.items():
        assert whole.tiles[(level, index)] == data
    with pytest.raises(TileError):
        StreamingTree.resume(start + 1, partials)
