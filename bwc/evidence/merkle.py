"""RFC 9162 (RFC 6962 compatible) Merkle tree for the custody log: hashing, proofs, checks.

Pure logic, no I/O: callers pass leaf hashes in and get hashes and proofs out.

* Leaf hash  = SHA-256(0x00 ‖ event bytes); node hash = SHA-256(0x01 ‖ left ‖ right). The
  distinct prefixes stop a leaf from being passed off as an interior node (second preimage).
* :class:`MerkleTree` keeps every complete, aligned power-of-two subtree hash ("levels"), so
  the root of any prefix, an inclusion proof or a consistency proof needs only O(log² n) cached
  lookups and O(log n) fresh hashes after one O(n) build. Logs hold millions of events and
  ``bwc log verify`` asks for many proofs, so recomputing subtrees per proof is not an option.
* :func:`verify_inclusion` and :func:`verify_consistency` are the RFC 9162 §2.1.3.2 and
  §2.1.4.2 algorithms. They are strict on purpose (the log is evidence): every hash must be
  exactly 32 bytes, the proof must have exactly the expected length, and a consistency proof
  from the empty tree (size1 == 0) is rejected, as it proves nothing. Failures raise
  :class:`bwc.errors.ProofError` with a message saying what is wrong.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from bwc.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "SubtreeHashes",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) — the root of the empty tree (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n`` >= 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


class SubtreeHashes:
    """The RFC 9162 algorithms over the hashes of complete, aligned subtrees: a root of any
    prefix, inclusion and consistency proofs, each in O(log n) subtree lookups. Where those
    hashes come from is the subclass's business: all in memory (:class:`MerkleTree`) or
    read from C2SP tiles (``bwc.evidence.tlog.TiledTree``)."""

    @property
    def size(self) -> int:
        """Number of leaves in the tree."""
        raise NotImplementedError

    def _node(self, height: int, index: int) -> bytes:
        """The hash of the complete subtree of ``2**height`` leaves starting at leaf
        ``index * 2**height`` (it must lie within the tree)."""
        raise NotImplementedError

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all); EMPTY_ROOT for size 0."""
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ValueError(f"size {n} is outside the tree (0..{self.size})")
        if n == 0:
            return EMPTY_ROOT
        return self._range_hash(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]) (default size: the whole tree)."""
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ValueError(f"size {n} is outside the tree (0..{self.size})")
        if not 0 <= index < n:
            raise ValueError(f"index {index} is outside a tree of size {n}")
        # Walk down from the root; at each split the proof needs the sibling of the side that
        # holds the leaf. Collected top-down, returned bottom-up (the RFC's order).
        proof: list[bytes] = []
        start, end = 0, n
        while end - start > 1:
            mid = start + _split(end - start)
            if index < mid:
                proof.append(self._range_hash(mid, end))
                end = mid
            else:
                proof.append(self._range_hash(start, mid))
                start = mid
        proof.reverse()
        return proof

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]) (default size2: the whole tree)."""
        n = self.size if size2 is None else size2
        if not 0 <= n <= self.size:
            raise ValueError(f"size2 {n} is outside the tree (0..{self.size})")
        if size1 <= 0:
            raise ValueError(f"size1 must be at least 1, got {size1}")
        if size1 > n:
            raise ValueError(f"size1 {size1} is greater than size2 {n}")
        # Iterative SUBPROOF(m, D[start:end], b): m is relative to start; b says whether the
        # current subtree is the old tree's own root (whose hash the verifier already has).
        proof: list[bytes] = []
        start, end, m, complete = 0, n, size1, True
        while m != end - start:
            mid = start + _split(end - start)
            if m <= mid - start:
                proof.append(self._range_hash(mid, end))
                end = mid
            else:
                proof.append(self._range_hash(start, mid))
                m -= mid - start
                start = mid
                complete = False
        if not complete:
            proof.append(self._range_hash(start, end))
        proof.reverse()
        return proof

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range that is a node of the RFC 9162 tree shape.

        Such a range starts at a multiple of a power of two >= its length, so greedily taking
        the largest power of two that fits yields aligned, cached complete subtrees; the
        node's hash is their right fold (the RFC's recursion always splits at the largest
        power of two, so the ragged right edge nests to the right). O(log n).
        """
        parts: list[bytes] = []
        pos = start
        while pos < end:
            height = (end - pos).bit_length() - 1
            parts.append(self._node(height, pos >> height))
            pos += 1 << height
        result = parts.pop()
        while parts:
            result = node_hash(parts.pop(), result)
        return result


class MerkleTree(SubtreeHashes):
    """An append-only RFC 9162 Merkle tree over leaf hashes, with cached subtree hashes.

    ``_levels[h]`` holds, back to back in one ``bytearray``, the hashes of the complete subtrees
    of height ``h`` (``2**h`` leaves each) in left-to-right order: entry ``i`` covers leaves
    ``[i * 2**h, (i + 1) * 2**h)``. Level 0 is the leaf hashes. Flat byte arrays rather than
    lists of ``bytes`` keep memory near 64 bytes per leaf, which matters at millions of events.
    """

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        for i, h in enumerate(leaf_hashes):
            _check_leaf(h, f"leaf hash {i}")
        self._size = len(leaf_hashes)
        self._levels: list[bytearray] = [bytearray(b"".join(leaf_hashes))]
        # Batch build: each level is the pairwise node hashes of the level below (an odd last
        # entry has no complete parent yet). Same state as appending one at a time, O(n).
        below = self._levels[0]
        while len(below) >= 2 * HASH_SIZE:
            data = bytes(below)
            pairs = len(data) // (2 * HASH_SIZE)
            step = 2 * HASH_SIZE
            level = bytearray(
                b"".join(
                    hashlib.sha256(_NODE_PREFIX + data[j : j + step]).digest()
                    for j in range(0, pairs * step, step)
                )
            )
            self._levels.append(level)
            below = level

    @property
    def size(self) -> int:
        """Number of leaves in the tree."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf hash; amortised O(1) hashes (O(log n) worst case)."""
        _check_leaf(leaf_hash, "leaf hash")
        self._levels[0] += leaf_hash
        self._size += 1
        # Each time a level gains an even count, its last two entries just completed a parent.
        height = 0
        count = self._size
        while count % 2 == 0:
            level = self._levels[height]
            parent = hashlib.sha256(_NODE_PREFIX + level[-2 * HASH_SIZE :]).digest()
            if height + 1 == len(self._levels):
                self._levels.append(bytearray())
            self._levels[height + 1] += parent
            height += 1
            count //= 2

    def _node(self, height: int, index: int) -> bytes:
        offset = index * HASH_SIZE
        return bytes(self._levels[height][offset : offset + HASH_SIZE])


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (EMPTY_ROOT for none)."""
    return MerkleTree(leaf_hashes).root()


def _check_leaf(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes], kind: str) -> None:
    for i, h in enumerate(proof):
        _check_hash(h, f"{kind} proof hash {i}")


def _inclusion_proof_length(index: int, size: int) -> int:
    """Exact length of PATH(index, D[0:size]) for 0 <= index < size.

    Below the highest bit where index and the last index differ, the leaf's path runs through
    complete subtrees (one sibling per level); above it, only the levels where ``index`` has a
    set bit have a left sibling (on the right there is nothing: index is on the tree's edge).
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def _equal(a: bytes, b: bytes) -> bool:
    # Constant-time comparison: the cost of a check reveals nothing about how much matched.
    return hmac.compare_digest(a, b)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    RFC 9162 §2.1.3.2. Returns None on success; raises ProofError on any failure.
    """
    if index < 0 or size < 0:
        raise ProofError(f"negative index ({index}) or tree size ({size})")
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    _check_proof_hashes(proof, "inclusion")
    expected = _inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, expected {expected}")

    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:  # unreachable after the length check; kept as the RFC's guard
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # On the right edge: skip levels where this node has no sibling.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if not _equal(r, root):
        raise ProofError("computed root differs from expected root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (size2, root2) extends the tree (size1, root1).

    RFC 9162 §2.1.4.2. Returns None on success; raises ProofError on any failure. size1 == 0
    is rejected even when size2 == 0: an empty tree is a prefix of everything, so such a
    "proof" would assert nothing and usually means the caller lost track of the old checkpoint.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"negative tree size (size1 {size1}, size2 {size2})")
    if size1 == 0:
        raise ProofError("size1 is 0: a consistency proof from the empty tree proves nothing")
    if size1 > size2:
        raise ProofError(f"size1 ({size1}) is greater than size2 ({size2})")
    _check_hash(root1, "root1")
    _check_hash(root2, "root2")
    _check_proof_hashes(proof, "consistency")

    if size1 == size2:
        if proof:
            raise ProofError(
                f"consistency proof has {len(proof)} hashes, expected 0 (size1 == size2)"
            )
        if not _equal(root1, root2):
            raise ProofError(f"root1 and root2 differ although both trees have size {size1}")
        return

    # The proof is, in effect, an inclusion proof in the new tree of the largest complete
    # subtree ending at size1 (a "seed" node). When size1 is a power of two that node is the
    # old root itself, which the verifier already has, so it is not sent (RFC 9162 step 2).
    shift = (size1 & -size1).bit_length() - 1
    seed_index = (size1 - 1) >> shift
    last_index = (size2 - 1) >> shift
    expected = _inclusion_proof_length(seed_index, last_index + 1) + (1 if seed_index else 0)
    if len(proof) != expected:
        raise ProofError(f"consistency proof has {len(proof)} hashes, expected {expected}")

    path = list(proof)
    if seed_index == 0:  # size1 is an exact power of two
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check; kept as the RFC's guard
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if not _equal(fr, root1):
        raise ProofError("computed root1 differs from expected root1")
    if not _equal(sr, root2):
        raise ProofError("computed root2 differs from expected root2")
