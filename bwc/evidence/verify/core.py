"""The verification core: values in, a report of every failure out. No catalog, store,
network or clock in here: the catalog-backed `bwc verify` and `bwc log verify`
(``bwc.evidence.verify.catalog``), a check of the store's published log and an offline
bundle verifier all load values and hand them to these functions.

What is checked, and what each check is called in reports:

* ``signature``: the manifest's Ed25519 signature, by a key the custody log announced;
* ``manifest log``: the manifest is the one whose hash the custody log recorded;
* ``manifest``: well-formed and about this item;
* ``catalog``: the catalog's row (when there is one) says what the signed manifest says;
* ``object``: the stored bytes re-hash to the manifest's sha256 and size;
* ``stored manifest``: the store's copies of manifest and signature are the signed ones;
* ``custody``: every custody event of the item is well-formed, matches its catalog row and
  is in the signed log (an inclusion proof, or the whole log re-hashed);
* ``cases``: the catalog's case links of the item are the ones its custody events record
  (only for an item with links);
* ``log``: the checkpoint the events are proven against is signed, from this log, and
  consistent with every earlier checkpoint the verifier trusts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bwc.errors import BwcError, NoteError, ProofError, VerificationError
from bwc.evidence import note
from bwc.evidence.events import (
    LEAF_VERSION,
    MANIFEST_KINDS,
    DecodedEvent,
    decode_leaf,
    row_matches_leaf,
)
from bwc.evidence.fingerprint import Digest
from bwc.evidence.manifest import Manifest, parse_manifest
from bwc.evidence.merkle import leaf_hash, verify_consistency, verify_inclusion
from bwc.evidence.rowcheck import Quotes, check_batch
from bwc.evidence.signing import verify_signature
from bwc.evidence.timefmt import format_utc, parse_utc
from bwc.evidence.tlog import StreamingTree

# ---------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class ItemReport:
    sha256: str
    checks: list[Check] = field(default_factory=list)
    deleted: bool = False  # deleted by policy: its record stays, its object is gone

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def _eq(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True)
class EventColumns:
    """A catalog's decoded copy of an event (a cache for queries, checked against the leaf)."""

    kind: str
    at: datetime
    actor: str
    station_id: str
    item_sha256: str | None
    leaf_hash: bytes


@dataclass(frozen=True)
class LoggedEvent:
    """One custody event as a verifier receives it: its index, the exact leaf bytes, its
    inclusion proof in the trusted checkpoint (when proofs are used) and the catalog's copy of
    its fields (when there is a catalog)."""

    index: int
    leaf: bytes
    proof: Sequence[bytes] | None = None
    columns: EventColumns | None = None


def event_problems(ev: LoggedEvent) -> list[str]:
    """What is wrong with one event's leaf, and with the catalog's copy of it."""
    out: list[str] = []
    lh = leaf_hash(ev.leaf)
    if ev.columns is not None and not _eq(ev.columns.leaf_hash, lh):
        out.append(f"custody event #{ev.index}: stored leaf hash does not match its leaf bytes")
    try:
        dec = decode_leaf(ev.leaf)
    except ValueError as e:
        return [*out, f"custody event #{ev.index}: {e}"]
    if dec.index != ev.index:
        out.append(
            f"custody event #{ev.index} holds the leaf of event #{dec.index} "
            "(events reordered or swapped)"
        )
    if ev.columns is not None:
        c = ev.columns
        fields = {
            "kind": (c.kind, dec.kind),
            "time": (c.at, dec.at),
            "actor": (c.actor, dec.actor),
            "station": (c.station_id, dec.station_id),
            "item": (c.item_sha256, dec.item_sha256),
        }
        for name, (row, logged) in fields.items():
            if row != logged:
                out.append(
                    f"custody event #{ev.index}: catalog {name} {row!s} differs from the log "
                    f"({logged!s})"
                )
    return out


def decoded(events: Iterable[LoggedEvent]) -> list[DecodedEvent]:
    """The events whose leaves decode (the others are reported by ``event_problems``)."""
    out = []
    for ev in events:
        try:
            out.append(decode_leaf(ev.leaf))
        except ValueError:
            continue
    return out


# ---------------------------------------------------------------------------- trust in the log


@dataclass(frozen=True)
class KeyInfo:
    """A signing key as the verifier knows it: its public key, and whether the custody log
    announced exactly that key (``announced`` None: no announcement found)."""

    station_id: str
    public_key: bytes
    announced: bytes | None


@dataclass(frozen=True)
class LogTrust:
    """What a verifier established about the log before looking at items.

    ``checkpoint``: the signed checkpoint events are proven against (None: there is none);
    ``problems``: everything wrong with the log or that checkpoint (the ``log`` check);
    ``streamed``: every leaf was re-hashed and the tree recomputed (`verify --all`), so an
    event is in the signed log when its leaf hash is the stored one and ``root_ok`` (the
    recomputed tree has the checkpoint's root); otherwise each event carries a proof.
    """

    checkpoint: note.Checkpoint | None
    keys: Mapping[str, KeyInfo]
    problems: Sequence[str] = ()
    streamed: bool = False
    root_ok: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems


def open_checkpoint(
    label: str, text: str, verifiers: Sequence[note.Verifier], origin: str
) -> tuple[note.Checkpoint | None, list[str]]:
    try:
        cp = note.open_checkpoint(text, verifiers)
    except NoteError as e:
        return None, [f"{label}: {e}"]
    if cp.origin != origin:
        return cp, [f"{label}: origin {cp.origin!r} is not this log's ({origin!r})"]
    return cp, []


def consistency_problem(
    label: str, older: note.Checkpoint, newer: note.Checkpoint, proof: Sequence[bytes]
) -> str | None:
    """Why ``newer`` does not extend ``older`` (with the RFC 9162 proof between them)."""
    if newer.size < older.size:
        return (
            f"{label}: log rolled back from size {older.size} to {newer.size} "
            "(a checkpoint was replaced by an older one)"
        )
    if older.size == 0:
        return None
    try:
        verify_consistency(older.size, newer.size, list(proof), older.root, newer.root)
    except ProofError as e:
        return f"{label}: not consistent with the previous checkpoint: {e}"
    return None


def verifiers_of(keys: Mapping[str, KeyInfo], problems: list[str]) -> list[note.Verifier]:
    out = []
    for key_id, k in keys.items():
        try:
            out.append(note.Verifier.from_public_key(k.station_id, k.public_key))
        except NoteError as e:
            problems.append(f"signing key {key_id}: catalog public key is not usable: {e}")
    return out


def key_problems(keys: Mapping[str, KeyInfo], announced: Mapping[str, bytes]) -> list[str]:
    """Catalog keys against the keys the log announced."""
    out = []
    for key_id, pub in announced.items():
        k = keys.get(key_id)
        if k is None:
            out.append(f"signing key {key_id} announced in the log is missing from the catalog")
        elif not _eq(k.public_key, pub):
            out.append(f"signing key {key_id}: catalog public key differs from the logged one")
    for key_id in keys:
        if key_id not in announced:
            out.append(f"signing key {key_id} in the catalog was never announced in the log")
    return out


# ---------------------------------------------------------------------------- items


class ItemColumns(Protocol):
    """A catalog's row of an item (a cache of its signed manifest)."""

    @property
    def size(self) -> int: ...
    @property
    def officer_id(self) -> str | None: ...
    @property
    def device_id(self) -> str | None: ...
    @property
    def recorded_start(self) -> datetime | None: ...
    @property
    def recorded_end(self) -> datetime | None: ...
    @property
    def station_id(self) -> str: ...
    @property
    def ingested_at(self) -> datetime: ...
    @property
    def original_path(self) -> str: ...
    @property
    def flags(self) -> str: ...
    @property
    def key_id(self) -> str: ...


@dataclass
class ItemFacts:
    """What an item's custody events say about it, oldest first folded."""

    manifest_sha256: str | None = None  # as last logged (ingested, attributed)
    ingested: dict[str, Any] | None = None  # details of its `ingested` event
    officer: object = None  # as last attributed (overrides the manifest's)
    attributed: bool = False
    deleted: dict[str, Any] | None = None  # details of `deleted-by-policy`, with "at"


def item_facts(events: Iterable[DecodedEvent]) -> ItemFacts:
    f = ItemFacts()
    for d in events:
        if d.kind in MANIFEST_KINDS and isinstance(d.details.get("manifest_sha256"), str):
            f.manifest_sha256 = d.details["manifest_sha256"]
        if d.kind == "ingested":
            f.ingested = d.details
        elif d.kind == "attributed":
            f.officer, f.attributed = d.details.get("officer_id"), True
        elif d.kind == "deleted-by-policy":
            f.deleted = {**d.details, "at": format_utc(d.at)}
    return f


def logged_cases(events: Iterable[DecodedEvent]) -> set[str]:
    """The cases an item's custody events (oldest first) say it is linked to: every
    `case-linked` not undone by a later `case-unlinked`, and the case its last
    `retention-changed` event recorded (``classify --case``, which before case links was
    the one link an item had) unless that case was unlinked since."""
    links: set[str] = set()
    retention_case: str | None = None
    for d in events:
        case = d.details.get("case")
        if not isinstance(case, str):
            continue
        if d.kind == "retention-changed":
            retention_case = case
        elif d.kind == "case-linked":
            links.add(case)
        elif d.kind == "case-unlinked":
            links.discard(case)
            if retention_case == case:
                retention_case = None
    if retention_case is not None:
        links.add(retention_case)
    return links


def case_link_problems(
    sha256: str, rows: Collection[str], events: Iterable[DecodedEvent]
) -> list[str]:
    """The catalog's case links of an item (``rows``: case ids) against its custody
    events: a row the log does not have (linked outside bwc, or unlinked in the log), and a
    logged link the catalog lost."""
    logged = logged_cases(d for d in events if d.item_sha256 == sha256)
    out = [
        f"case link to {case!r} in the catalog has no `case-linked` custody event "
        "(linked outside bwc, or unlinked)"
        for case in sorted(set(rows) - logged)
    ]
    out += [
        f"case link to {case!r} is in the custody log but missing from the catalog"
        for case in sorted(logged - set(rows))
    ]
    return out


def check_item(
    sha256: str,
    manifest: bytes,
    signature: bytes,
    *,
    key_id: str,
    events: Sequence[LoggedEvent],
    log: LogTrust,
    digest: Digest | BwcError | None,
    stored_meta: tuple[bytes, bytes] | BwcError | None,
    row: ItemColumns | None = None,
    case_links: Collection[str] | None = None,
) -> ItemReport:
    """Every check of one item (see the module docstring). ``digest``: the stored object
    freshly re-hashed, or the error reading it (None: deleted by policy, not read);
    ``stored_meta``: the store's copies of manifest and signature, or the error reading
    them; ``row``: the catalog's row, checked against the manifest; ``case_links``: the
    catalog's case links of the item (None: no catalog, not checked)."""
    rep = ItemReport(sha256)
    m, facts = _signed(rep, manifest, signature, key_id, events, log, row)
    _object(rep, m, digest, facts)
    _stored_meta(rep, manifest, signature, stored_meta, facts)
    _custody(rep, sha256, events, log)
    if case_links is not None:
        _cases(rep, case_links, events)
    _log(rep, log)
    return rep


def _cases(rep: ItemReport, rows: Collection[str], events: Sequence[LoggedEvent]) -> None:
    """The ``cases`` check, only for an item with case links in the catalog or the log (an
    item never linked has nothing to check, and its report keeps the checks it had)."""
    good = decoded(events)
    if not rows and not logged_cases(d for d in good if d.item_sha256 == rep.sha256):
        return
    problems = case_link_problems(rep.sha256, rows, good)
    rep.add(
        "cases",
        not problems,
        "; ".join(problems)
        if problems
        else f"{len(rows)} case link(s), each as the custody log records it",
    )


def check_record(
    sha256: str,
    manifest: bytes,
    signature: bytes,
    *,
    key_id: str,
    events: Sequence[LoggedEvent],
    log: LogTrust,
    row: ItemColumns,
) -> ItemReport:
    """The checks of ``check_item`` that need no store (signature, manifest log, manifest,
    catalog, custody, log): whether the catalog's row and the item's custody events are what
    was signed and logged. What a decision taken from the catalog (a deletion by policy)
    checks first, without reading the object."""
    rep = ItemReport(sha256)
    _signed(rep, manifest, signature, key_id, events, log, row)
    _custody(rep, sha256, events, log)
    _log(rep, log)
    return rep


def _signed(
    rep: ItemReport,
    manifest: bytes,
    signature: bytes,
    key_id: str,
    events: Sequence[LoggedEvent],
    log: LogTrust,
    row: ItemColumns | None,
) -> tuple[Manifest | None, ItemFacts]:
    """The signature, manifest log, manifest and catalog checks; the parsed manifest and
    what the item's events say."""
    sha256 = rep.sha256
    good = decoded(events)
    facts = item_facts(d for d in good if d.item_sha256 == sha256)
    rep.deleted = facts.deleted is not None
    _signature(rep, manifest, signature, key_id, log.keys)
    _manifest_log(rep, manifest, facts)
    m: Manifest | None
    try:
        m = parse_manifest(manifest)
    except VerificationError as e:
        m = None
        rep.add("manifest", False, str(e))
    if m is not None:
        if m.sha256 != sha256:
            rep.add("manifest", False, f"manifest is for {m.sha256[:12]}…, not this item")
        elif m.key_id != key_id:
            rep.add("manifest", False, f"manifest names key {m.key_id}, row {key_id}")
        else:
            rep.add("manifest", True, "manifest well-formed and about this item")
        if row is not None:
            officer = facts.officer if facts.attributed else m.officer_id
            diffs = _row_diffs(row, m, officer)
            rep.add(
                "catalog",
                not diffs,
                "catalog row matches the signed manifest"
                if not diffs
                else "catalog row differs from the signed manifest: " + "; ".join(diffs),
            )
    return m, facts


def _log(rep: ItemReport, log: LogTrust) -> None:
    rep.add(
        "log",
        log.ok,
        "log consistent with the latest signed checkpoint"
        if log.ok
        else "custody log fails verification: " + "; ".join(list(log.problems)[:3]),
    )


def _signature(
    rep: ItemReport, manifest: bytes, signature: bytes, key_id: str, keys: Mapping[str, KeyInfo]
) -> None:
    key = keys.get(key_id)
    if key is None:
        rep.add("signature", False, f"signing key {key_id} is not in the catalog (key removed?)")
    elif not verify_signature(key.public_key, manifest, signature):
        rep.add("signature", False, f"manifest signature does not verify with key {key_id}")
    elif key.announced is None or not _eq(key.announced, key.public_key):
        rep.add(
            "signature",
            False,
            f"signing key {key_id} is not the key the custody log announced",
        )
    else:
        rep.add("signature", True, f"signed by key {key_id}")


def _manifest_log(rep: ItemReport, manifest: bytes, facts: ItemFacts) -> None:
    actual = hashlib.sha256(manifest).hexdigest()
    if facts.manifest_sha256 is None:
        rep.add("manifest log", False, "no custody event records this item's manifest hash")
    elif not hmac.compare_digest(facts.manifest_sha256, actual):
        rep.add(
            "manifest log",
            False,
            "manifest differs from the one recorded in the custody log (re-signed after "
            "ingest?)" + _diff_with_ingest_event(manifest, facts.ingested),
        )
    else:
        rep.add("manifest log", True, "manifest is the one recorded in the custody log")


def _diff_with_ingest_event(manifest: bytes, details: Mapping[str, Any] | None) -> str:
    """Name the fields where a manifest departs from what its `ingested` event logged."""
    if not details:
        return ""
    try:
        m = parse_manifest(manifest)
    except VerificationError:
        return ""
    now = {"officer": m.officer_id, "device": m.device_id, "path": m.path, "size": m.size}
    now["key"] = m.key_id
    then = {
        "officer": details.get("officer_id"),
        "device": details.get("device_id"),
        "path": details.get("path"),
        "size": details.get("size"),
        "key": details.get("key_id"),
    }
    diffs = [
        f"{k} {then[k]!s} was logged, manifest says {now[k]!s}" for k in now if now[k] != then[k]
    ]
    return ": " + "; ".join(diffs) if diffs else ""


def _row_diffs(item: ItemColumns, m: Manifest, officer: object) -> list[str]:
    pairs: Sequence[tuple[str, object, object]] = (
        ("size", item.size, m.size),
        ("officer", item.officer_id, officer),
        ("device", item.device_id, m.device_id),
        ("recorded start", item.recorded_start, m.recorded_start),
        ("recorded end", item.recorded_end, m.recorded_end),
        ("station", item.station_id, m.station_id),
        ("ingest time", item.ingested_at, m.ingested_at),
        ("path", item.original_path, m.path),
        ("flags", item.flags, ",".join(sorted(set(m.flags)))),
    )
    return [f"{n} is {a!s} in the catalog but {b!s} in the manifest" for n, a, b in pairs if a != b]


def _object(
    rep: ItemReport, m: Manifest | None, digest: Digest | BwcError | None, facts: ItemFacts
) -> None:
    gone = facts.deleted
    if gone is not None:
        rep.add(
            "object",
            True,
            f"deleted by policy at {gone.get('at')} (class {gone.get('class')}, retained until "
            f"{gone.get('retain_until')}); its record and sha256 stay in the catalog",
        )
    elif digest is None:
        rep.add("object", False, "the stored object was not read")
    elif isinstance(digest, BwcError):
        rep.add("object", False, str(digest))
    elif m is not None:
        if digest.size != m.size:
            rep.add(
                "object", False, f"stored object is {digest.size} bytes, manifest says {m.size}"
            )
        elif digest.sha256 != m.sha256:
            rep.add(
                "object",
                False,
                f"sha256 mismatch: stored object hashes to {digest.sha256[:12]}…, "
                "it differs from the manifest",
            )
        else:
            rep.add("object", True, f"re-hashed {digest.size} bytes, sha256 matches")


def _stored_meta(
    rep: ItemReport,
    manifest: bytes,
    signature: bytes,
    stored: tuple[bytes, bytes] | BwcError | None,
    facts: ItemFacts,
) -> None:
    if facts.deleted is not None:
        rep.add("stored manifest", True, "deleted by policy with the object")
    elif stored is None:
        return
    elif isinstance(stored, BwcError):
        rep.add("stored manifest", False, str(stored))
    elif not _eq(stored[0], manifest):
        rep.add("stored manifest", False, "manifest in the store differs from the catalog's")
    elif not _eq(stored[1], signature):
        rep.add("stored manifest", False, "signature in the store differs from the catalog's")
    else:
        rep.add("stored manifest", True, "store copy of manifest and signature match")


def _custody(rep: ItemReport, sha256: str, events: Sequence[LoggedEvent], log: LogTrust) -> None:
    problems: list[str] = []
    kinds = {d.kind for d in decoded(events) if d.item_sha256 == sha256}
    if "ingested" not in kinds:
        problems.append("no `ingested` custody event for this item")
    cp = log.checkpoint
    for ev in events:
        problems.extend(event_problems(ev))
        if cp is None:
            continue
        if ev.index >= cp.size:
            kind = ev.columns.kind if ev.columns else "event"
            problems.append(
                f"event #{ev.index} ({kind}) is not yet covered by a signed checkpoint "
                "(run `bwc log checkpoint`)"
            )
            continue
        why = inclusion_problem(ev, cp, log)
        if why:
            problems.append(why)
    if cp is None:
        problems.append("no signed checkpoint to prove the events against")
    rep.add(
        "custody",
        not problems,
        f"{len(events)} event{'' if len(events) == 1 else 's'}, each proven included in "
        f"checkpoint of size {cp.size}"
        if not problems and cp
        else "; ".join(problems),
    )


def inclusion_problem(ev: LoggedEvent, cp: note.Checkpoint, log: LogTrust) -> str | None:
    """Why ``ev`` is not shown to be in the log of checkpoint ``cp``, or None."""
    kind = ev.columns.kind if ev.columns else "event"
    lh = leaf_hash(ev.leaf)
    if log.streamed:
        if ev.columns is not None and not _eq(ev.columns.leaf_hash, lh):
            return f"event #{ev.index} ({kind}) is not in the signed log: its leaf was changed"
        if not log.root_ok:
            return (
                f"event #{ev.index} ({kind}) is not in the signed log: the log's tree differs "
                f"from the checkpoint of size {cp.size}"
            )
        return None
    if ev.proof is None:
        return f"event #{ev.index} ({kind}) has no inclusion proof"
    try:
        verify_inclusion(lh, ev.index, cp.size, ev.proof, cp.root)
    except ProofError as e:
        return f"event #{ev.index} ({kind}) is not in the signed log: {e}"
    return None


# ---------------------------------------------------------------------------- the whole log


@dataclass
class LogReport:
    """The result of checking a whole log, streamed (``LogAuditor``)."""

    size: int = 0
    root: bytes = b""
    problems: list[str] = field(default_factory=list)
    checkpoints: int = 0
    latest: note.Checkpoint | None = None
    announced: dict[str, bytes] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=dict)  # the rebuilt tree at asked sizes
    # the rebuilt tree's partial tiles at asked sizes: size -> [(level, index, data)]
    partials: dict[int, list[tuple[int, int, bytes]]] = field(default_factory=dict)
    timestamps: int = 0  # RFC 3161 checkpoint timestamps checked (bwc.evidence.stamps)

    @property
    def ok(self) -> bool:
        return not self.problems

    def matched(self, cp: note.Checkpoint) -> bool:
        """Whether the rebuilt tree has ``cp``'s root at its size (asked with ``roots_at``)."""
        root = self.roots.get(cp.size)
        return root is not None and _eq(root, cp.root)


@dataclass(frozen=True)
class CheckpointRow:
    """A signed checkpoint as a catalog (or a store) keeps it."""

    label: str
    note: str
    size: int | None = None  # the catalog's decoded copy, when there is one
    root: bytes | None = None

    def size_hint(self) -> int:
        """The size to check it at: the catalog's column, else what the note says (read
        without its signature, which is checked then)."""
        if self.size is not None:
            return self.size
        try:
            return note.unverified_checkpoint(self.note).size
        except NoteError:
            return 0


class LogAuditor:
    """Checks a whole log streamed in index order, in memory bounded by the tree's height:
    every leaf re-hashed, every catalog row against its leaf, the tree rebuilt (tiles
    reported as they fill, ``on_tile``, for the caller to compare with what it stores), and
    every checkpoint, fed in size order (``checkpoints``), against the rebuilt tree at its
    size when the stream gets there. Key announcements are collected on the way; a
    checkpoint is verified with the keys announced before it.

    ``start`` > 0 resumes from a tree already verified at that size (``resume``)."""

    def __init__(
        self,
        origin: str,
        keys: Mapping[str, KeyInfo],
        checkpoints: Iterable[CheckpointRow],
        *,
        on_tile: Callable[[int, int, bytes], None] | None = None,
        keep_leaves: bool = False,
        roots_at: Iterable[int] = (),
        tree: StreamingTree | None = None,
        announced: Mapping[str, bytes] | None = None,
        trust_announced: bool = False,
    ) -> None:
        self.origin = origin
        self.keys = dict(keys)
        # no catalog to hold keys (a published copy): the keys the log announces are the
        # keys, the first announcement of each
        self._trust_announced = trust_announced
        self.report = LogReport()
        self.tree = tree or StreamingTree(on_tile, keep_leaves=keep_leaves)
        self.expected = self.tree.size
        self._roots_at = set(roots_at)
        self._quotes = Quotes()
        self._note_size()
        self.report.announced = dict(announced or {})
        self._pending = iter(checkpoints)
        self._next: CheckpointRow | None = None
        self._last: tuple[str, note.Checkpoint] | None = None  # by size, the one before
        self._advance()
        self._catch_up()

    # -- events
    def add(
        self,
        idx: int,
        leaf: bytes,
        stored_hash: bytes,
        kind: str,
        at: datetime,
        actor: str,
        station: str,
        item: str | None,
    ) -> None:
        problems = self.report.problems
        if idx != self.expected:
            if idx > self.expected:
                problems.append(
                    f"custody events #{self.expected}..#{idx - 1} are missing "
                    "(deleted from the log)"
                )
            else:
                problems.append(f"custody event #{idx} appears twice")
            self.expected = idx
        lh = self._hash_in(leaf)
        fast = _eq(stored_hash, lh) and row_matches_leaf(
            leaf, idx, kind, format_utc(at), actor, station, item
        )
        if not fast:
            problems.extend(
                event_problems(
                    LoggedEvent(
                        idx, leaf, None, EventColumns(kind, at, actor, station, item, stored_hash)
                    )
                )
            )
        if kind == "key-rotated":
            self._announcement(idx, leaf)
        self._catch_up()

    def add_rows(self, rows: Sequence[Any], leaf_time: Callable[[object], str]) -> None:
        """A batch of catalog rows as a driver gives them (idx, leaf, stored leaf hash,
        kind, at, actor, station, item; ``leaf_time`` writes an `at` as a leaf does): the
        fast path of ``add``, for millions of rows. ``rowcheck.check_batch`` passes the rows
        that are exactly what their leaf says; only the others go through ``add``."""
        checked = check_batch(rows, self.expected, leaf_time, self._quotes)
        done = 0
        for pos in checked.irregular:
            self.add_hashes(checked.hashes[done:pos])
            idx, leaf, stored_hash, kind, when, actor, station, item = rows[pos]
            try:
                at = _parse_time(leaf_time(when))
            except ValueError:
                at = _UNREADABLE
            self.add(idx, bytes(leaf), bytes(stored_hash), kind, at, actor, station, item)
            done = pos + 1
        self.add_hashes(checked.hashes[done:])

    def add_hashes(self, hashes: Sequence[bytes]) -> None:
        """The leaf hashes of the next rows, each already checked against its row
        (``check_batch``, here or in a worker): into the tree a run at a time (whole tiles
        hashed at once), stopping at each size where a checkpoint or a root waits."""
        done = 0
        while done < len(hashes):
            size = self.tree.size
            stop = min(self._next_size, *(r for r in self._roots_at if r > size), 1 << 62)
            take = min(len(hashes) - done, max(stop - size, 1))
            self.tree.add_many(hashes[done : done + take])
            self.expected += take
            done += take
            if self.tree.size in self._roots_at:
                self._note_size()
            self._catch_up()

    def _hash_in(self, leaf: bytes) -> bytes:
        """The next leaf, re-hashed from its bytes, into the tree; its leaf hash."""
        self.expected += 1
        lh = hashlib.sha256(b"\x00" + leaf).digest()
        self.tree.add(lh)
        if self.tree.size in self._roots_at:
            self._note_size()
        return lh

    def add_entry(self, idx: int, leaf: bytes) -> bytes:
        """One entry of a published copy (no catalog row): re-hashed into the tree, its
        index checked, a key announcement read. Returns its leaf hash."""
        if idx != self.expected:
            self.report.problems.append(f"entry #{idx} comes where #{self.expected} should")
            self.expected = idx
        lh = self._hash_in(leaf)
        plain = leaf.endswith(f',"v":{LEAF_VERSION}}}'.encode()) and (
            f',"index":{idx},"item":'.encode() in leaf[-160:]
        )
        problems = [] if plain else event_problems(LoggedEvent(idx, leaf))
        self.report.problems.extend(problems)
        if not problems and b'"kind":"key-rotated"' in leaf:
            self._announcement(idx, leaf)
        self._catch_up()
        return lh

    def _note_size(self) -> None:
        size = self.tree.size
        if size in self._roots_at:
            self.report.roots[size] = self.tree.root()
            self.report.partials[size] = list(self.tree.partial_tiles())

    def _announcement(self, idx: int, leaf: bytes) -> None:
        try:
            dec = decode_leaf(leaf)
            d = dec.details
            key_id, pub = str(d["key_id"]), note_b64decode(str(d["public_key"]))
        except (ValueError, KeyError):
            self.report.problems.append(
                f"custody event #{idx}: key-rotated event without a valid key"
            )
            return
        self.report.announced[key_id] = pub
        if self._trust_announced and key_id not in self.keys:
            self.keys[key_id] = KeyInfo(dec.station_id, pub, pub)

    # -- checkpoints
    def _advance(self) -> None:
        self._next = next(self._pending, None)
        self._next_size = self._next.size_hint() if self._next is not None else 1 << 62

    def _catch_up(self) -> None:
        while self._next is not None and self._next_size <= self.tree.size:
            row = self._next
            self._advance()
            self._checkpoint(row)

    def _checkpoint(self, row: CheckpointRow) -> None:
        problems = self.report.problems
        known = {
            k: v
            for k, v in self.keys.items()
            if k in self.report.announced and _eq(self.report.announced[k], v.public_key)
        }
        cp, found = open_checkpoint(row.label, row.note, verifiers_of(known, []), self.origin)
        if cp is None:
            # signed by a key not (yet) announced, or malformed: say which
            _, plain = open_checkpoint(
                row.label, row.note, verifiers_of(self.keys, problems), self.origin
            )
            problems.extend(plain or found)
            return
        problems.extend(found)
        if row.size is not None and (cp.size != row.size or not _eq(cp.root, row.root or b"")):
            problems.append(f"{row.label}: catalog size/root columns differ from the signed note")
        if cp.size != self.tree.size:
            return  # fed by the catalog's size column, which is reported as differing
        if cp.size and not _eq(self.tree.root(), cp.root):
            problems.append(
                f"{row.label}: signed root differs from the log's root at size {cp.size} "
                "(the log was rewritten, or the checkpoint comes from a forked log)"
            )
        if self._last is not None and self._last[1].size == cp.size:
            # equal sizes: both against the same rebuilt tree, and against each other
            why = consistency_problem(row.label, self._last[1], cp, [])
            if why and not _eq(self._last[1].root, cp.root):
                problems.append(why)
        self._last = (row.label, cp)
        if row.size is not None:  # a catalog's; a copy in a store is not counted
            self.report.latest = cp
            self.report.checkpoints += 1

    def finish(self, head_size: int) -> LogReport:
        """After the last event: what no event could show (missing tail, checkpoints beyond
        the log), and the key table against the announcements."""
        rep = self.report
        count = self.tree.size
        if count != head_size:
            rep.problems.append(
                f"log head says {head_size} events but {count} are stored "
                "(events deleted or added outside bwc)"
            )
        while self._next is not None:
            row = self._next
            self._advance()
            size = row.size_hint()
            rep.problems.append(
                f"{row.label}: signed for {size} events but the log holds only {count} "
                "(events deleted)"
            )
        rep.problems.extend(key_problems(self.keys, rep.announced))
        rep.size = count
        rep.root = self.tree.root()
        return rep


# a catalog time that is no time: shown as differing from the leaf's
_UNREADABLE = datetime.min.replace(tzinfo=UTC)


def _parse_time(text: str) -> datetime:
    try:
        return parse_utc(text)
    except ValueError:
        return _UNREADABLE


def note_b64decode(text: str) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(str(e)) from e


__all__ = [
    "Check",
    "CheckpointRow",
    "EventColumns",
    "ItemReport",
    "KeyInfo",
    "LogAuditor",
    "LogReport",
    "LogTrust",
    "LoggedEvent",
    "case_link_problems",
    "check_item",
    "check_record",
    "consistency_problem",
    "event_problems",
    "inclusion_problem",
    "item_facts",
    "key_problems",
    "logged_cases",
    "open_checkpoint",
]
