"""Verification: object bytes ↔ manifest ↔ signature ↔ catalog row ↔ custody log ↔ checkpoint.

Every check names the item and what failed. Nothing here writes; recording a `verified` event
is the caller's choice.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from bwc.errors import BwcError, NoteError, ProofError, VerificationError
from bwc.evidence import custody, note
from bwc.evidence.fingerprint import Digest
from bwc.evidence.manifest import Manifest, parse_manifest
from bwc.evidence.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from bwc.evidence.models import Checkpoint, Event, Item, LogHead, SigningKey
from bwc.evidence.signing import verify_signature
from bwc.evidence.stores import ObjectStore, ReadAhead
from bwc.evidence.timefmt import format_utc


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class ItemReport:
    sha256: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


@dataclass
class LogReport:
    size: int
    tree: MerkleTree
    problems: list[str] = field(default_factory=list)
    checkpoints: int = 0
    latest: note.Checkpoint | None = None
    # key id -> public key, as announced by key-rotated events in the log
    announced: dict[str, bytes] = field(default_factory=dict)
    # item sha256 -> sha256 of its manifest bytes, as last logged (ingested / attributed)
    manifest_hashes: dict[str, str] = field(default_factory=dict)
    # item sha256 -> details of its `ingested` event
    ingested: dict[str, dict[str, object]] = field(default_factory=dict)
    # item sha256 -> officer of its latest `attributed` event (overrides the manifest's)
    attributed: dict[str, object] = field(default_factory=dict)
    # item sha256 -> details of its `deleted-by-policy` event, with its time ("at")
    deleted: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _eq(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


# ---------------------------------------------------------------------------- the log


def verify_log(session: Session, store: ObjectStore, origin: str | None = None) -> LogReport:
    """Recompute the tree from every stored leaf and check rows, keys and checkpoints.

    Run it in a snapshot transaction (``Station.session(snapshot=True)``) so that appends by
    other stations do not show up half-way. ``origin`` defaults to the catalog's."""
    if origin is None:
        origin = custody.log_origin(session)
    head = session.get(LogHead, 1)
    head_size = head.size if head else 0
    hashes: list[bytes] = []
    problems: list[str] = []
    announced: dict[str, bytes] = {}
    manifest_hashes: dict[str, str] = {}
    ingested: dict[str, dict[str, object]] = {}
    attributed: dict[str, object] = {}
    deleted: dict[str, dict[str, object]] = {}
    logged_items: set[str] = set()
    expected = 0
    count = 0
    for ev in session.exec(select(Event).order_by(col(Event.idx))):
        count += 1
        if ev.idx != expected:
            if ev.idx > expected:
                problems.append(
                    f"custody events #{expected}..#{ev.idx - 1} are missing (deleted from the log)"
                )
            else:
                problems.append(f"custody event #{ev.idx} appears twice")
            expected = ev.idx
        expected += 1
        lh = leaf_hash(ev.leaf)
        hashes.append(lh)
        problems.extend(_event_row_problems(ev, lh))
        try:
            dec = custody.decode_leaf(ev.leaf)
        except ValueError:
            continue
        if dec.item_sha256 and dec.kind == "ingested":
            logged_items.add(dec.item_sha256)
            ingested[dec.item_sha256] = dec.details
        if dec.item_sha256 and dec.kind == "deleted-by-policy":
            logged_items.discard(dec.item_sha256)
            deleted[dec.item_sha256] = {**dec.details, "at": format_utc(dec.at)}
        if dec.item_sha256 and isinstance(dec.details.get("manifest_sha256"), str):
            manifest_hashes[dec.item_sha256] = dec.details["manifest_sha256"]
        if dec.item_sha256 and dec.kind == "attributed":
            attributed[dec.item_sha256] = dec.details.get("officer_id")
        if dec.kind == "key-rotated":
            try:
                announced[str(dec.details["key_id"])] = note_b64decode(
                    str(dec.details["public_key"])
                )
            except (KeyError, ValueError):
                problems.append(f"custody event #{ev.idx}: key-rotated event without a valid key")
    if count != head_size:
        problems.append(
            f"log head says {head_size} events but {count} are stored "
            "(events deleted or added outside bwc)"
        )
    tree = MerkleTree(hashes)
    report = LogReport(
        size=tree.size,
        tree=tree,
        problems=problems,
        announced=announced,
        manifest_hashes=manifest_hashes,
        ingested=ingested,
        attributed=attributed,
        deleted=deleted,
    )
    in_catalog = set(session.exec(select(Item.sha256)))
    for sha in sorted(logged_items - in_catalog):
        problems.append(
            f"item {sha} was logged as ingested but its catalog row is missing (deleted?)"
        )
    _check_keys(session, announced, problems)
    _check_checkpoints(session, store, origin, report)
    return report


def note_b64decode(text: str) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(str(e)) from e


def _event_row_problems(ev: Event, lh: bytes) -> list[str]:
    out: list[str] = []
    if not _eq(ev.leaf_hash, lh):
        out.append(f"custody event #{ev.idx}: stored leaf hash does not match its leaf bytes")
    try:
        dec = custody.decode_leaf(ev.leaf)
    except ValueError as e:
        return [*out, f"custody event #{ev.idx}: {e}"]
    if dec.index != ev.idx:
        out.append(
            f"custody event #{ev.idx} holds the leaf of event #{dec.index} "
            "(events reordered or swapped)"
        )
    fields = {
        "kind": (ev.kind, dec.kind),
        "time": (ev.at, dec.at),
        "actor": (ev.actor, dec.actor),
        "station": (ev.station_id, dec.station_id),
        "item": (ev.item_sha256, dec.item_sha256),
    }
    for name, (row, logged) in fields.items():
        if row != logged:
            out.append(
                f"custody event #{ev.idx}: catalog {name} {row!s} differs from the log ({logged!s})"
            )
    return out


def _check_keys(session: Session, announced: dict[str, bytes], problems: list[str]) -> None:
    catalog = {k.key_id: k for k in session.exec(select(SigningKey))}
    for key_id, pub in announced.items():
        row = catalog.get(key_id)
        if row is None:
            problems.append(
                f"signing key {key_id} announced in the log is missing from the catalog"
            )
        elif not _eq(row.public_key, pub):
            problems.append(f"signing key {key_id}: catalog public key differs from the logged one")
    for key_id in catalog:
        if key_id not in announced:
            problems.append(f"signing key {key_id} in the catalog was never announced in the log")


def _check_checkpoints(
    session: Session, store: ObjectStore, origin: str, report: LogReport
) -> None:
    problems = report.problems
    tree = report.tree
    vs = custody.verifiers(session, problems)
    prev: note.Checkpoint | None = None
    rows = list(session.exec(select(Checkpoint).order_by(col(Checkpoint.id))))
    report.checkpoints = len(rows)
    if not rows:
        problems.append("the log has no signed checkpoint")
    for row in rows:
        label = f"checkpoint {row.id} (size {row.size})"
        try:
            cp = note.open_checkpoint(row.note, vs)
        except NoteError as e:
            problems.append(f"{label}: {e}")
            continue
        if cp.origin != origin:
            problems.append(f"{label}: origin {cp.origin!r} is not this log's ({origin!r})")
        if cp.size != row.size or not _eq(cp.root, row.root):
            problems.append(f"{label}: catalog size/root columns differ from the signed note")
        problems.extend(_against_tree(label, cp, tree))
        if prev is not None:
            if cp.size < prev.size:
                problems.append(
                    f"{label}: log rolled back from size {prev.size} to {cp.size} "
                    "(a checkpoint was replaced by an older one)"
                )
            elif cp.size <= tree.size:
                problems.extend(_consistency(label, prev, cp, tree))
        prev = cp
    report.latest = prev
    stored = store.get_checkpoint()
    if stored is None and rows:
        problems.append(
            "the copy of the latest checkpoint is missing from the store (deleted?), so a "
            "rolled-back catalog cannot be ruled out; if a crash interrupted `bwc log "
            "checkpoint`, run it again"
        )
    if stored is not None:
        try:
            scp = note.open_checkpoint(stored, vs)
        except NoteError as e:
            problems.append(f"checkpoint copy in the store: {e}")
        else:
            if prev is None or scp.size > prev.size:
                problems.append(
                    f"the store holds a checkpoint of size {scp.size}, newer than the catalog's "
                    f"latest ({prev.size if prev else 'none'}): the catalog was rolled back"
                )
            problems.extend(_against_tree("checkpoint copy in the store", scp, tree))


def _against_tree(label: str, cp: note.Checkpoint, tree: MerkleTree) -> list[str]:
    if cp.size > tree.size:
        return [
            f"{label}: signed for {cp.size} events but the log holds only {tree.size} "
            "(events deleted)"
        ]
    if cp.size and not _eq(tree.root(cp.size), cp.root):
        return [
            f"{label}: signed root differs from the log's root at size {cp.size} "
            "(the log was rewritten, or the checkpoint comes from a forked log)"
        ]
    return []


def _consistency(
    label: str, older: note.Checkpoint, newer: note.Checkpoint, tree: MerkleTree
) -> list[str]:
    if older.size == 0:
        return []
    try:
        proof = tree.consistency_proof(older.size, newer.size)
        verify_consistency(older.size, newer.size, proof, older.root, newer.root)
    except (ProofError, ValueError) as e:
        return [f"{label}: not consistent with the previous checkpoint: {e}"]
    return []


# ---------------------------------------------------------------------------- items


def verify_item(
    session: Session,
    item: Item,
    digest: Digest | BwcError,
    log: LogReport,
    keys: dict[str, SigningKey],
) -> ItemReport:
    """Check one item given its freshly re-read stored digest (or the error reading it)."""
    sha = item.sha256
    rep = ItemReport(sha)
    key = keys.get(item.key_id)
    if key is None:
        rep.add(
            "signature", False, f"signing key {item.key_id} is not in the catalog (key removed?)"
        )
    elif not verify_signature(key.public_key, item.manifest, item.signature):
        rep.add("signature", False, f"manifest signature does not verify with key {item.key_id}")
    else:
        rep.add("signature", True, f"signed by key {item.key_id}")

    logged = log.manifest_hashes.get(sha)
    actual = hashlib.sha256(item.manifest).hexdigest()
    if logged is None:
        rep.add("manifest log", False, "no custody event records this item's manifest hash")
    elif not hmac.compare_digest(logged, actual):
        rep.add(
            "manifest log",
            False,
            "manifest differs from the one recorded in the custody log (re-signed after "
            "ingest?)" + _diff_with_ingest_event(item.manifest, log.ingested.get(sha)),
        )
    else:
        rep.add("manifest log", True, "manifest is the one recorded in the custody log")

    manifest: Manifest | None
    try:
        manifest = parse_manifest(item.manifest)
    except VerificationError as e:
        manifest = None
        rep.add("manifest", False, str(e))
    if manifest is not None:
        if manifest.sha256 != sha:
            rep.add("manifest", False, f"manifest is for {manifest.sha256[:12]}…, not this item")
        elif manifest.key_id != item.key_id:
            rep.add("manifest", False, f"manifest names key {manifest.key_id}, row {item.key_id}")
        else:
            rep.add("manifest", True, "manifest well-formed and about this item")
        diffs = _row_diffs(item, manifest, log.attributed.get(sha, manifest.officer_id))
        rep.add(
            "catalog",
            not diffs,
            "catalog row matches the signed manifest"
            if not diffs
            else "catalog row differs from the signed manifest: " + "; ".join(diffs),
        )

    gone = log.deleted.get(sha)
    if gone is not None:
        rep.add(
            "object",
            True,
            f"deleted by policy at {gone.get('at')} (class {gone.get('class')}, retained until "
            f"{gone.get('retain_until')}); its record and sha256 stay in the catalog",
        )
    elif isinstance(digest, BwcError):
        rep.add("object", False, str(digest))
    elif manifest is not None:
        if digest.size != manifest.size:
            rep.add(
                "object",
                False,
                f"stored object is {digest.size} bytes, manifest says {manifest.size}",
            )
        elif digest.sha256 != manifest.sha256:
            rep.add(
                "object",
                False,
                f"sha256 mismatch: stored object hashes to {digest.sha256[:12]}…, "
                "it differs from the manifest",
            )
        else:
            rep.add("object", True, f"re-hashed {digest.size} bytes, sha256 matches")
    _check_item_events(session, item, log, rep)
    return rep


def _diff_with_ingest_event(manifest: bytes, details: dict[str, object] | None) -> str:
    """Name the fields where a manifest departs from what its `ingested` event logged."""
    if not details:
        return ""
    try:
        m = parse_manifest(manifest)
    except VerificationError:
        return ""
    now = {
        "officer": m.officer_id,
        "device": m.device_id,
        "path": m.path,
        "size": m.size,
        "key": m.key_id,
    }
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


def check_stored_meta(
    store: ObjectStore, item: Item, rep: ItemReport, log: LogReport | None = None
) -> None:
    if log is not None and item.sha256 in log.deleted:
        rep.add("stored manifest", True, "deleted by policy with the object")
        return
    try:
        m = store.get_meta(item.sha256, "manifest.json")
        s = store.get_meta(item.sha256, "manifest.sig")
    except BwcError as e:
        rep.add("stored manifest", False, str(e))
        return
    if not _eq(m, item.manifest):
        rep.add("stored manifest", False, "manifest in the store differs from the catalog's")
    elif not _eq(s, item.signature):
        rep.add("stored manifest", False, "signature in the store differs from the catalog's")
    else:
        rep.add("stored manifest", True, "store copy of manifest and signature match")


def _row_diffs(item: Item, m: Manifest, officer: object) -> list[str]:
    """Differences between the catalog row and the signed manifest (the officer as last
    attributed in the custody log, if it was)."""
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


def _check_item_events(session: Session, item: Item, log: LogReport, rep: ItemReport) -> None:
    events = list(custody.iter_events(session, item.sha256))
    problems: list[str] = []
    if not any(e.kind == "ingested" for e in events):
        problems.append("no `ingested` custody event for this item")
    cp = log.latest
    for ev in events:
        lh = leaf_hash(ev.leaf)
        problems.extend(_event_row_problems(ev, lh))
        if cp is None:
            continue
        if ev.idx >= cp.size:
            problems.append(
                f"event #{ev.idx} ({ev.kind}) is not yet covered by a signed checkpoint "
                "(run `bwc log checkpoint`)"
            )
            continue
        if ev.idx >= log.tree.size:
            continue  # reported by the log checks
        try:
            proof = log.tree.inclusion_proof(ev.idx, cp.size)
            verify_inclusion(lh, ev.idx, cp.size, proof, cp.root)
        except (ProofError, ValueError) as e:
            problems.append(f"event #{ev.idx} ({ev.kind}) is not in the signed log: {e}")
    if cp is None:
        problems.append("no signed checkpoint to prove the events against")
    rep.add(
        "custody",
        not problems,
        f"{len(events)} events, each proven included in checkpoint of size {cp.size}"
        if not problems and cp
        else "; ".join(problems),
    )
    rep.add(
        "log",
        log.ok,
        "log consistent with the latest signed checkpoint"
        if log.ok
        else "custody log fails verification: " + "; ".join(log.problems[:3]),
    )


def verify_items(
    session: Session,
    store: ObjectStore,
    items: Iterable[Item],
    log: LogReport,
    *,
    workers: int,
    on_done: Callable[[ItemReport], None] | None = None,
    ahead: ReadAhead | None = None,
) -> list[ItemReport]:
    """Re-hash stored objects in parallel (I/O and hashing release the GIL) while the
    catalog-side checks run on this thread. ``ahead``: read-backs already started."""
    keys = {k.key_id: k for k in session.exec(select(SigningKey))}

    def read(sha: str) -> Digest | BwcError:
        if sha in log.deleted:
            return VerificationError("deleted by policy")  # not read; reported as such
        started = ahead.take(sha) if ahead is not None else None
        try:
            return started.result() if started is not None else store.read_back(sha)
        except BwcError as e:
            return e
        except OSError as e:
            return VerificationError(f"cannot read stored object: {e.strerror or e}")

    items = list(items)
    out: list[ItemReport] = []
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="bwc-verify") as pool:
        digests = pool.map(read, [i.sha256 for i in items])
        for item, digest in zip(items, digests, strict=True):
            rep = verify_item(session, item, digest, log, keys)
            check_stored_meta(store, item, rep, log)
            out.append(rep)
            if on_done:
                on_done(rep)
    return out


def resolve_id(session: Session, prefix: str) -> Item:
    """An item by its sha256 or a unique prefix of at least 8 hex digits."""
    from bwc.errors import NotFoundError, UsageError

    p = prefix.strip().lower()
    if len(p) < 8 or any(c not in "0123456789abcdef" for c in p) or len(p) > 64:
        raise UsageError(
            f"{prefix!r} is not an evidence id",
            hint="give the sha256 or 8+ of its first hex digits",
        )
    rows = list(session.exec(select(Item).where(col(Item.sha256).startswith(p)).limit(2)))
    if not rows:
        raise NotFoundError(f"no evidence item with id {p}", hint="see `bwc list`")
    if len(rows) > 1:
        raise NotFoundError(f"id prefix {p} is ambiguous", hint="give more hex digits")
    return rows[0]
