"""The per-file ingest steps, one sequence for `bwc ingest` (``pipeline``) and the docking
daemon's crash-safe jobs (``jobs``): describe and sign, store the object, read it back from
the medium, store manifest and signature, commit the item row with its custody event.

A read-back that does not match raises ``ReadBackMismatch``: nothing is committed and the
file is taken again from its source (the daemon re-stages it on its own; `bwc ingest` lists
the file as not ingested, and running it again takes it again). The source is untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bwc.config import limits
from bwc.errors import InputError, StoreError
from bwc.evidence import custody
from bwc.evidence.events import MANIFEST_KINDS, decode_leaf
from bwc.evidence.manifest import (
    FLAG_ID_FILE,
    FLAG_NO_RECORDED_TIME,
    FLAG_NON_UTF8_NAME,
    FLAG_NOT_MEDIA,
    FLAG_UNATTRIBUTED,
    FLAG_ZERO_BYTE,
    Manifest,
    encode_path,
)
from bwc.evidence.models import Assignment, Event, Item, SigningKey
from bwc.evidence.signing import verify_signature
from bwc.evidence.station import Station
from bwc.evidence.stores import ObjectStore
from bwc.evidence.stores.base import MetaConflict
from bwc.ingest import source
from bwc.ingest.describe import Description, LedgerLookup, describe
from bwc.ingest.profiles import ID_FILE_NAMES, IdFile, Profile, parse_id_file

logger = logging.getLogger(__name__)


class ReadBackMismatch(StoreError):
    """The stored object did not re-hash to the bytes that were staged."""


@dataclass(frozen=True)
class Signed:
    """A file's signed manifest: the parsed values, the exact signed bytes, the signature."""

    parsed: Manifest
    manifest: bytes
    signature: bytes


def sign(
    station: Station,
    *,
    sha256: str,
    size: int,
    rel: bytes,
    media: dict[str, Any] | None,
    profiles: Sequence[Profile],
    id_file: IdFile | None,
    ledger: LedgerLookup | None,
    officer: str | None = None,
    device: str | None = None,
    flags_for: Callable[[Description], Sequence[str]] | None = None,
    session_device: str | None = None,
) -> Signed:
    """Describe a staged file (its name by the recorder profiles, the id file, its media
    summary, the operator's --officer/--device, its dock session's device, the checkout
    ledger) and sign its manifest.
    ``flags_for``: flags the caller adds once it sees the description (a device mismatch)."""
    desc = describe(
        os.fsdecode(rel),
        profiles=profiles,
        id_file=id_file,
        media=media if size else None,
        operator_officer=officer,
        operator_device=device,
        ledger=ledger,
        session_device=session_device,
    )
    check_description(rel, desc)
    signer = station.signer()
    m = build_manifest(
        sha256,
        size,
        rel,
        media if size else None,
        desc,
        station.station_id,
        signer.key_id,
        station.clock.now(),
        flags_for(desc) if flags_for is not None else (),
    )
    data = m.canonical()
    return Signed(m, data, signer.sign(data))


_SOURCES = {
    "profile": "its name",
    "id-file": "the id file",
    "operator": "the command line",
    "dock-session": "its dock session",
}


def check_description(rel: bytes, desc: Description) -> None:
    """InputError naming the file when an id read from its name or the id file breaks the
    catalog's rules (too long, control characters): refused before anything is stored, the
    same on SQLite (which would keep it) and PostgreSQL (which refuses it at the commit)."""
    for what, value, where in (
        ("device id", desc.device_id, desc.device_source),
        ("officer id", desc.officer_id, desc.officer_source),
    ):
        problem = None if value is None else limits.text_problem(value)
        if problem is not None:
            raise InputError(
                f"{encode_path(rel)[0]}: the {what} from {_SOURCES.get(where or '', where)} "
                f"{problem}",
                hint="fix the camera's file name or id file; nothing was stored",
            )


def put_object(store: ObjectStore, sha256: str, spool: Path) -> str | None:
    """Write the staged copy to the store under its digest (it may be moved there)."""
    return store.put_object(sha256, spool)


def read_back(store: ObjectStore, sha256: str, size: int) -> None:
    """Re-read the stored object from the medium; ReadBackMismatch unless it is the bytes
    that were staged."""
    back = store.read_back(sha256)
    if back.sha256 != sha256 or back.size != size:
        raise ReadBackMismatch(
            f"read-back of {sha256[:12]} does not match: stored object has sha256 "
            f"{back.sha256[:12]}, size {back.size}",
            hint="check the storage medium; nothing was committed and the source was left "
            "untouched, to be copied again (the daemon does so itself; run `bwc ingest` again)",
        )


def put_meta(store: ObjectStore, sha256: str, manifest: bytes, signature: bytes) -> bool:
    """Store the manifest and its signature beside the object (after its read-back), never
    over other bytes. False: the store already holds another ingest's manifest for these
    bytes (two ingests of one file at once). Which of the two becomes the item is decided by
    the commit (the other is a sighting); ``heal_meta`` then puts the item's in place."""
    try:
        store.put_meta(sha256, "manifest.json", manifest)
        store.put_meta(sha256, "manifest.sig", signature)
    except MetaConflict as e:
        logger.info("%s", e)
        return False
    return True


def store_verified(
    store: ObjectStore, sha256: str, size: int, spool: Path, s: Signed
) -> tuple[str | None, bool]:
    """The storing steps in one go (`bwc ingest`): object, read-back, manifest. Returns the
    object's version and whether the manifest stored is this one (``put_meta``)."""
    version = put_object(store, sha256, spool)
    read_back(store, sha256, size)
    return version, put_meta(store, sha256, s.manifest, s.signature)


def committed(session: Session, sha256: str) -> bool:
    """Whether the item is in the catalog. Called by a commit after ``custody.lock_head``:
    every commit of an item takes that lock, so the answer holds until this one ends, and
    of two ingests of the same bytes at once the second sees the first's item and records a
    sighting instead of a second item."""
    return session.get(Item, sha256) is not None


def heal_meta(station: Station, sha256: str) -> None:
    """Make the store's manifest and signature of a committed item the catalog's: a copy
    that is missing, damaged, or another ingest's (one that lost the race to commit the same
    bytes, or crashed between storing its manifest and committing) is replaced. Only bytes
    the custody log vouches for are written: the manifest whose hash the item's custody
    events last logged, with a signature its key verifies; otherwise the
    store is left alone (`bwc verify` names the damage). Objects deleted by policy are not
    stored again. StoreError when the store cannot be read or written."""
    with Session(station.engine) as s:
        item = s.get(Item, sha256)
        if item is None:
            return
        logged = _logged_manifest_sha256(s, sha256)
        key = s.get(SigningKey, item.key_id)
    manifest, signature = bytes(item.manifest), bytes(item.signature)
    if (
        logged is None
        or not hmac.compare_digest(logged, hashlib.sha256(manifest).hexdigest())
        or key is None
        or not verify_signature(bytes(key.public_key), manifest, signature)
    ):
        logger.warning(
            "%s: the catalog's manifest is not the one the custody log vouches for; the "
            "store's copy is left as it is (run `bwc verify`)",
            sha256[:16],
        )
        return
    store = station.store
    if not store.has_object(sha256):
        return
    for name, data in (("manifest.json", manifest), ("manifest.sig", signature)):
        try:
            there: bytes | None = store.get_meta(sha256, name)
        except StoreError:
            there = None  # missing (or unreadable: writing it again is what is left)
        if there != data:
            logger.warning(
                "%s: the store's %s is not the item's; putting it back", sha256[:16], name
            )
            store.repair_meta(sha256, name, data)


def _logged_manifest_sha256(session: Session, sha256: str) -> str | None:
    rows = session.exec(
        select(Event.leaf).where(Event.item_sha256 == sha256).order_by(col(Event.idx).desc())
    )
    for leaf in rows:
        try:
            d = decode_leaf(bytes(leaf))
        except ValueError:
            return None
        value = d.details.get("manifest_sha256")
        if d.kind in MANIFEST_KINDS and isinstance(value, str):
            return value
    return None


def build_manifest(
    sha256: str,
    size: int,
    rel: bytes,
    media: dict[str, Any] | None,
    desc: Description,
    station_id: str,
    key_id: str,
    ingested_at: datetime,
    extra_flags: Sequence[str] = (),
) -> Manifest:
    path_text, encoding = encode_path(rel)
    flags: list[str] = list(extra_flags)
    if encoding != "utf-8":
        flags.append(FLAG_NON_UTF8_NAME)
    if size == 0:
        flags.append(FLAG_ZERO_BYTE)
    elif media is None:
        flags.append(FLAG_NOT_MEDIA)
    if desc.recorded_start is None:
        flags.append(FLAG_NO_RECORDED_TIME)
    if desc.is_id_file:
        flags.append(FLAG_ID_FILE)  # camera metadata: nobody's footage, nothing to attribute
    elif desc.officer_id is None:
        flags.append(FLAG_UNATTRIBUTED)
    return Manifest(
        sha256=sha256,
        size=size,
        path=path_text,
        path_encoding=encoding,
        device_id=desc.device_id,
        officer_id=desc.officer_id,
        recorded_start=desc.recorded_start,
        recorded_end=desc.recorded_end,
        start_source=desc.start_source,
        media=media,
        station_id=station_id,
        ingested_at=ingested_at,
        key_id=key_id,
        flags=tuple(flags),
        device_source=desc.device_source,
        officer_source=desc.officer_source,
        profile=desc.profile,
    )


_ID_FILE_PARSED = 64 * 1024  # an id file is a few lines; only its start is parsed


def read_id_file(root: bytes) -> IdFile | None:
    """The camera's id file (ID.TXT at the mount root), if any: a regular file only, never
    through a symlink, never blocking on a FIFO (``source.open_source``). Its SHA-256 and size
    cover the whole file, as the item it also becomes."""
    for name in ID_FILE_NAMES:
        digest = hashlib.sha256()
        head = b""
        size = 0
        try:
            with source.opened(root, os.fsencode(name)) as src:
                while chunk := os.read(src.fd, _ID_FILE_PARSED):
                    digest.update(chunk)
                    size += len(chunk)
                    if len(head) < _ID_FILE_PARSED:
                        head += chunk[: _ID_FILE_PARSED - len(head)]
        except (OSError, InputError):
            continue
        parsed = parse_id_file(head.decode("utf-8", "replace"))
        return replace(parsed, name=name, sha256=digest.hexdigest(), size=size)
    return None


def ledger_lookup(engine: Engine) -> LedgerLookup:
    """The officer holding a device at a time, per the checkout ledger (latest start wins)."""

    def lookup(device: str, at: datetime) -> str | None:
        with Session(engine) as s:
            row = s.exec(
                select(Assignment)
                .where(Assignment.device_id == device)
                .where(col(Assignment.start) <= at)
                .where(or_(col(Assignment.end).is_(None), col(Assignment.end) > at))
                .order_by(col(Assignment.start).desc())
                .limit(1)
            ).first()
            return row.officer_id if row else None

    return lookup


def item_row(m: Manifest, manifest: bytes, signature: bytes, version: str | None) -> Item:
    """The catalog row of a new item: an index over its signed manifest."""
    return Item(
        sha256=m.sha256,
        size=m.size,
        manifest=manifest,
        signature=signature,
        key_id=m.key_id,
        station_id=m.station_id,
        original_path=m.path,
        device_id=m.device_id,
        officer_id=m.officer_id,
        recorded_start=m.recorded_start,
        recorded_end=m.recorded_end,
        ingested_at=m.ingested_at,
        flags=",".join(m.flags),
        store_version=version,
    )


def ingested_event(st: Station, m: Manifest, manifest: bytes, **extra: object) -> custody.NewEvent:
    """The `ingested` custody event; it logs the manifest's hash, so a manifest re-signed
    later (even with the station's own key) no longer matches the log."""
    return st.event(
        "ingested",
        m.sha256,
        path=m.path,
        size=m.size,
        device_id=m.device_id,
        officer_id=m.officer_id,
        key_id=m.key_id,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        store=st.store.url,
        **extra,
    )
