"""The fast check of custody-log rows against their leaves: pure, and light enough to import
in a worker process (no ORM, no store).

A catalog row is (idx, leaf, stored leaf hash, kind, at, actor, station, item). The
canonical form of a leaf sorts its keys (actor, at, details, index, item, kind, station, v),
so the row's own columns determine the leaf's first and last bytes around the details: a
row is checked without decoding its leaf. `bwc log verify` runs this over millions of rows;
whatever it does not pass (a differing row, a gap, a key announcement) the caller looks at
row by row, with the full decoder, to say exactly what is wrong.

Batches travel from worker processes as frames: a header, the positions to look at, the
items logged as ingested whose catalog row is missing, then the leaf hashes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bwc.evidence.timefmt import format_utc

LEAF_VERSION = 1
# announcements are read in full by the caller (they add keys), never passed in bulk
_LOOK_AT_KINDS = frozenset({"key-rotated"})


_AT = {  # `at` as text in UTC, as SQLite stores it
    "sqlite": "at",
    "postgresql": "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
}
_PARAM = {"sqlite": "?", "postgresql": "%s"}


def rows_sql(dialect: str, *, upto: bool) -> str:
    """The query for the rows ``check_batch`` reads, in index order, with two parameters:
    rows [lo, hi) (``upto``), or from lo, at most n. `at` comes as text, "2026-10-15
    01:30:00.000000": SQLite stores it so (SQLAlchemy's form), PostgreSQL is asked to write
    it so (a driver making datetime objects of millions of rows costs more than reading
    them)."""
    p = _PARAM[dialect]
    where = f"idx >= {p} AND idx < {p} ORDER BY idx" if upto else f"idx >= {p} ORDER BY idx "
    where += "" if upto else f"LIMIT {p}"
    columns = f"idx, leaf, leaf_hash, kind, {_AT[dialect]}, actor, station_id, item_sha256"
    return f"SELECT {columns} FROM event WHERE {where}"  # noqa: S608 - constants only


def text_leaf_time(value: object) -> str:
    """A catalog's `at` as the leaf writes it (RFC 3339, Z, microseconds when non-zero),
    from the text ``rows_sql`` reads ("2026-10-15 01:30:00.000000"); any other value as
    ``leaf_time`` does."""
    if type(value) is str and len(value) == 26:
        t = value.replace(" ", "T", 1)
        return (t[:19] if t.endswith(".000000") else t) + "Z"
    return leaf_time(value)


def leaf_time(value: object) -> str:
    """A catalog's `at` as the leaf writes it, from any driver's value (ValueError if it
    is no time)."""
    if isinstance(value, datetime):
        return format_utc(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, str):
        return format_utc(datetime.fromisoformat(value).replace(tzinfo=UTC))
    raise ValueError(f"an event time the catalog cannot have: {value!r}")


@dataclass
class Checked:
    """One batch checked: a leaf hash per row, and the positions of the rows the caller
    must look at one by one (their hash here is not to be used)."""

    hashes: list[bytes]
    irregular: list[int]


@dataclass
class Quotes:
    """Strings as canonical JSON writes them, cached: actors, kinds and stations repeat."""

    cache: dict[str, bytes] = field(default_factory=dict)

    def __call__(self, value: str) -> bytes:
        q = self.cache.get(value)
        if q is None:
            q = json.dumps(value, ensure_ascii=False).encode("utf-8")
            if len(self.cache) < 100_000:
                self.cache[value] = q
        return q


def check_batch(
    rows: Sequence[Sequence[Any]],
    start: int,
    at_text: Callable[[object], str],
    quotes: Quotes,
) -> Checked:
    """Re-hash each row's leaf and pass the rows that are exactly what their leaf says:
    index one more than the row before (the first: ``start``), stored hash equal to the
    leaf's hash, columns equal to the leaf's first and last bytes. ``at_text``: the row's
    `at` as the leaf writes it (``text_leaf_time`` for ``rows_sql``'s rows)."""
    sha256 = hashlib.sha256
    cache = quotes.cache
    hashes: list[bytes] = []
    irregular: list[int] = []
    expected = start
    for pos, (idx, leaf, stored, kind, when, actor, station, item) in enumerate(rows):
        if type(leaf) is not bytes or type(stored) is not bytes or idx != expected:
            irregular.append(pos)
            hashes.append(b"")
            expected = idx + 1 if type(idx) is int else expected + 1
            continue
        expected += 1
        lh = sha256(b"\x00" + leaf).digest()
        hashes.append(lh)
        try:
            at = at_text(when)
            head = b'{"actor":%s,"at":"%s","details":{' % (
                cache.get(actor) or quotes(actor),
                at.encode(),
            )
            tail = b',"index":%d,"item":%s,"kind":%s,"station":%s,"v":%d}' % (
                idx,
                b"null" if item is None else b'"%s"' % item.encode(),
                cache.get(kind) or quotes(kind),
                cache.get(station) or quotes(station),
                LEAF_VERSION,
            )
        except (ValueError, TypeError, AttributeError):  # a column no leaf could have
            irregular.append(pos)
            continue
        if (
            stored != lh
            or not leaf.startswith(head)
            or not leaf.endswith(tail)
            or kind in _LOOK_AT_KINDS
        ):
            irregular.append(pos)
    return Checked(hashes, irregular)


# ---------------------------------------------------------------------------- frames

_HEAD = struct.Struct("<qIII")  # first index, rows, irregular positions, missing items
_END = -1


@dataclass(frozen=True)
class Frame:
    """A checked batch as a worker sends it: rows [lo, lo + count) read (the caller knows
    how many it asked for), their hashes, the positions to look at, and the items logged
    as ingested in it whose catalog row is missing."""

    lo: int
    count: int
    irregular: list[int]
    missing: list[str]
    hashes: list[bytes]


def encode_frame(lo: int, checked: Checked, missing: Sequence[str]) -> bytes:
    pos = array("I", checked.irregular)
    if pos.itemsize != 4:  # pragma: no cover - every platform bwc runs on
        raise RuntimeError("array('I') is not 32-bit here")
    hashes = [h if len(h) == 32 else bytes(32) for h in checked.hashes]
    return b"".join(
        [
            _HEAD.pack(lo, len(hashes), len(pos), len(missing)),
            pos.tobytes(),
            "".join(missing).encode("ascii"),
            b"".join(hashes),
        ]
    )


def end_frame() -> bytes:
    return _HEAD.pack(_END, 0, 0, 0)


def read_frame(read: Callable[[int], bytes]) -> Frame | None:
    """The next frame from ``read(n)`` (exactly n bytes, or fewer at the end of the
    stream: ValueError); None at the end marker."""

    def exactly(n: int) -> bytes:
        data = read(n)
        if len(data) != n:
            raise ValueError(f"a row-check worker's output ended after {len(data)} of {n} bytes")
        return data

    lo, count, n_pos, n_missing = _HEAD.unpack(exactly(_HEAD.size))
    if lo == _END:
        return None
    pos = array("I")
    pos.frombytes(exactly(4 * n_pos))
    text = exactly(64 * n_missing).decode("ascii")
    missing = [text[i : i + 64] for i in range(0, len(text), 64)]
    blob = exactly(32 * count)
    hashes = [blob[i : i + 32] for i in range(0, len(blob), 32)]
    return Frame(lo, count, pos.tolist(), missing, hashes)
