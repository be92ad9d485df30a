"""The contract every evidence store keeps (``ObjectStore``), what a store says about itself
(``StoreInfo``) and the helpers every backend shares. No backend code here.

Layout, in every backend: ``objects/<aa>/<sha256>`` (the bytes), ``objects/<aa>/<sha256>
.manifest.json`` and ``.manifest.sig`` beside it, and ``log/checkpoint``: the latest signed
checkpoint, a second copy outside the catalog, so that a catalog rolled back is detected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from bwc.errors import StoreError
from bwc.evidence.fingerprint import Digest
from bwc.evidence.tlog import parse_tile_path

SHA_RE = re.compile(r"^[0-9a-f]{64}$")
META_NAMES = ("manifest.json", "manifest.sig")


def check_sha(sha256: str) -> None:
    """Refuse anything but a lowercase sha256 hex digest as an object name (it becomes a
    path or an object key)."""
    if not SHA_RE.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")


# a timestamped checkpoint's exact note bytes and its RFC 3161 token (bwc.evidence.stamps)
TIMESTAMP_PATH_RE = re.compile(r"^timestamps/(0|[1-9][0-9]{0,18})\.(checkpoint|tsr)$")


def check_log_path(path: str) -> None:
    """Only tile paths (the spec's exact form) and timestamp files name files of the log's
    published copy."""
    if TIMESTAMP_PATH_RE.match(path):
        return
    parse_tile_path(path)


_RECORD_RE = re.compile(r"^verification/[0-9a-f]{32}\.(jsonl|json|sig)$")


def check_record_name(name: str) -> None:
    if not _RECORD_RE.match(name):
        raise ValueError(f"not a record name: {name!r}")


def check_meta_name(name: str) -> None:
    if name not in META_NAMES:
        raise ValueError(f"unknown meta name {name!r}")


class MetaConflict(StoreError):
    """The store already holds another manifest (or signature) for these bytes: another
    ingest of the same bytes signed its own and stored it first. Nothing was replaced."""


def meta_conflict(sha256: str, name: str) -> MetaConflict:
    return MetaConflict(
        f"the store already holds another {name} of {sha256[:12]}; it was left as it is",
        hint="the catalog decides which manifest is the item's; an ingest of the same bytes "
        "puts the item's back in the store",
    )


@dataclass(frozen=True)
class StoreInfo:
    """What a store offers for evidence, for `bwc store check`: facts, and what they mean in
    plain words (``notes``)."""

    url: str
    kind: str  # the URL scheme's backend: "local" or "s3"
    versioning: str | None = None  # "Enabled", "Suspended", or None (never enabled / n.a.)
    object_lock: bool = False  # retention and legal holds enforced by the store itself
    default_retention: str | None = None  # e.g. "COMPLIANCE 30 days"
    encryption: str | None = None  # e.g. "AES256", "aws:kms"
    notes: tuple[str, ...] = field(default_factory=tuple)


class ObjectStore(Protocol):
    url: str
    # Files an ingest keeps in flight: enough to keep the store busy between one file's
    # requests (its read-back, its manifest) and the next file's upload.
    in_flight: int

    def create(self) -> None:
        """Prepare the store for first use (`bwc init`); nothing where the store is made by
        its operator (an S3 bucket)."""

    def check(self) -> None:
        """Raise StoreError when the store cannot be reached or written."""

    def has_object(self, sha256: str) -> bool: ...

    def put_object(self, sha256: str, staged: Path) -> str | None:
        """Store the staged file (already hashed to ``sha256``) under its digest. The staged
        file may be consumed (moved). Returns a version id where the store has one."""

    def read_back(self, sha256: str) -> Digest:
        """Re-read the stored object from the medium and return its digest and size."""

    def iter_objects(self) -> Iterator[tuple[str, datetime]]:
        """Every object in the store (not its manifests) as (sha256, when it was written),
        in ascending sha256 order, listed a page or a folder at a time: memory flat
        whatever the store's size. StoreError when the store cannot be listed."""
        ...

    def prefetch_ids(self) -> list[str]:
        """The objects worth re-hashing ahead of a whole-store verification, where listing
        them is cheap (a local folder); [] where each is better read as it is checked."""

    def open_object(self, sha256: str) -> BinaryIO: ...

    def put_meta(self, sha256: str, name: str, data: bytes) -> None:
        """Store a manifest or signature beside the object, write-once like the object: if
        the store holds other bytes under that name, they stay and MetaConflict is raised
        (the same bytes again are fine)."""

    def repair_meta(self, sha256: str, name: str, data: bytes) -> None:
        """Put the committed item's manifest or signature (from the catalog, checked against
        the custody log) in place of a damaged, missing or losing copy."""

    def get_meta(self, sha256: str, name: str) -> bytes: ...

    def put_checkpoint(self, note: str) -> None: ...

    def get_checkpoint(self) -> str | None: ...

    # -- records: statements and reports of bwc's own runs (verification/<run>.…)
    def put_record(self, name: str, source: Path, sha256: str) -> None:
        """Store a record file (write-once; kept like permanent evidence where the store
        locks objects). ``sha256``: the file's digest, checked on the way."""

    def get_record(self, name: str) -> bytes | None:
        """A record (small ones: statements, signatures), or None if it is not there."""

    # -- the log's published copy (C2SP tlog-tiles under log/: tile/…, tile/entries/…)
    def put_log(self, path: str, data: bytes, *, final: bool) -> None:
        """Publish one file of the log's static copy. ``final`` (a full tile or bundle): it
        never changes, so it is written once (an existing copy with other bytes is a
        StoreError; with Object Lock it is locked like permanent evidence); otherwise (a
        partial tile) it may later be deleted."""

    def get_log(self, path: str) -> bytes | None:
        """A file of the log's published copy, or None if it is not there."""

    def delete_log(self, path: str) -> None:
        """Remove a partial tile its full or wider version supersedes (missing is fine)."""

    # -- retention and legal hold (stores without Object Lock: catalog-only, see StoreInfo)
    def describe(self) -> StoreInfo:
        """What the store offers (versioning, Object Lock, encryption) and what it means."""

    def extend_retention(self, sha256: str, until: datetime) -> datetime | None:
        """Make the store keep the item (object, manifest, signature) until at least
        ``until``: COMPLIANCE retention where the store has Object Lock. Never shortens a
        retention already set. Returns the date now enforced, None if the store has no lock."""

    def set_legal_hold(self, sha256: str, on: bool) -> bool:
        """Place or lift the store's legal hold on the item; False if the store has none."""

    def delete_item(self, sha256: str) -> int:
        """Delete the object, its manifest and signature, with every stored version; return
        how many were deleted. Raise StoreError if the store refuses (e.g. still locked)."""

    def protection(self, sha256: str) -> tuple[datetime | None, bool]:
        """The store's own protection of the item: the latest Object Lock date over its
        stored versions, and whether any is on legal hold ((None, False) without a lock)."""


class ReadAhead:
    """Read-backs started before they are needed. `bwc verify --all` starts re-hashing a
    local store's objects while it loads the catalog code (~half of its start), and each
    item's check then takes its result. Every object is still read once, from the medium,
    by ``read_back``; only the moment changes."""

    def __init__(self, store: ObjectStore, ids: Iterable[str], workers: int) -> None:
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="bwc-read-ahead")
        self._started: dict[str, Future[Digest]] = {}
        for sha in ids:
            self._started[sha] = self._pool.submit(store.read_back, sha)

    def take(self, sha256: str) -> Future[Digest] | None:
        """The read-back of this object if it was started (each is taken once)."""
        return self._started.pop(sha256, None)

    def close(self) -> None:
        """Cancel what has not started; wait for what has (no thread outlives the command)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
