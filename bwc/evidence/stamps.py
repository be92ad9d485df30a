"""Checkpoint timestamps as a station keeps them: in the catalog (``checkpoint_timestamp``,
one row per checkpoint signed while a TSA is configured, pending until the TSA answers) and
in the store beside the published log, write-once:

    log/timestamps/<size>.checkpoint   the checkpoint's exact note bytes
    log/timestamps/<size>.tsr          the RFC 3161 TimeStampResp over them (DER)

so that `openssl ts -verify -data log/timestamps/N.checkpoint -in log/timestamps/N.tsr
-CAfile <TSA roots>` checks one without bwc. Keyed by size, not one ``log/checkpoint.tsr``:
the published checkpoint is replaced by every newer one and a late token would then sit
beside bytes it is not over. A TSA that does not answer never holds up a checkpoint: the row
stays pending and is fetched later (the daemon every ``retry_seconds``, `bwc log timestamp`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from bwc.config.settings import Settings
from bwc.errors import StoreError, TimestampError
from bwc.evidence.models import Checkpoint, CheckpointTimestamp
from bwc.evidence.stores import ObjectStore
from bwc.evidence.timestamp import (
    Transport,
    imprint_problems,
    load_roots,
    post,
    read_token,
    request_timestamp,
    verify_token,
)

logger = logging.getLogger(__name__)

Sessions = Callable[..., AbstractContextManager[Session]]
_BATCH = 500


def store_paths(size: int) -> tuple[str, str]:
    """The store's names (under log/) of a timestamped checkpoint's note and token."""
    return f"timestamps/{size}.checkpoint", f"timestamps/{size}.tsr"


def mark_pending(session: Session, checkpoint: Checkpoint, tsa_url: str, now: datetime) -> None:
    """Record, with the checkpoint, that it is to be timestamped (in its transaction)."""
    session.flush()  # the checkpoint's id
    if checkpoint.id is None:
        raise TimestampError("the checkpoint has no id to timestamp it by")
    session.add(CheckpointTimestamp(checkpoint_id=checkpoint.id, tsa_url=tsa_url, created_at=now))


def pending_count(session: Session) -> int:
    """Checkpoints still waiting for their timestamp."""
    n = session.exec(
        select(func.count())
        .select_from(CheckpointTimestamp)
        .where(col(CheckpointTimestamp.tsr).is_(None))
    ).one()
    return int(n)


@dataclass
class Fetched:
    checkpoint_id: int
    size: int
    gen_time: datetime


@dataclass
class FetchResult:
    """What one round of fetching did: tokens fetched, store copies written, what is still
    pending, and the TSA's (or the store's) error that ended the round early."""

    fetched: list[Fetched] = field(default_factory=list)
    published: int = 0
    pending: int = 0
    error: str | None = None


def fetch_pending(
    sessions: Sessions,
    store: ObjectStore,
    settings: Settings,
    now: Callable[[], datetime],
    *,
    only: int | None = None,
    limit: int = 100,
    transport: Transport = post,
) -> FetchResult:
    """Ask the TSA for the pending checkpoints' timestamps (oldest first; ``only``: that
    checkpoint alone), keep each in the catalog, then put the tokens not yet in the store
    there. The first TSA failure ends the round (it is down: asking again at once is no use)
    and is recorded on the row. Raises HomeError for an unusable ``ca_file`` only."""
    cfg = settings.timestamp
    roots = load_roots(settings.tsa_ca_file)
    result = FetchResult()
    with sessions(snapshot=True) as s:
        q = (
            select(CheckpointTimestamp.checkpoint_id, Checkpoint.size, Checkpoint.note)
            .join(Checkpoint, col(Checkpoint.id) == col(CheckpointTimestamp.checkpoint_id))
            .where(col(CheckpointTimestamp.tsr).is_(None))
            .order_by(col(CheckpointTimestamp.checkpoint_id))
            .limit(limit)
        )
        if only is not None:
            q = q.where(CheckpointTimestamp.checkpoint_id == only)
        todo = list(s.exec(q).all())
    for cp_id, size, note_text in todo:
        try:
            token = request_timestamp(
                cfg.tsa_url, note_text.encode("utf-8"), roots, cfg.timeout, transport
            )
        except TimestampError as e:
            result.error = str(e)
            with sessions() as s:
                s.execute(
                    update(CheckpointTimestamp)
                    .where(col(CheckpointTimestamp.checkpoint_id) == cp_id)
                    .values(attempts=CheckpointTimestamp.attempts + 1, last_error=str(e)[:1000])
                )
            break
        with sessions() as s:
            # only where no other process (the daemon, `bwc log timestamp`) got there first
            done = s.execute(
                update(CheckpointTimestamp)
                .where(col(CheckpointTimestamp.checkpoint_id) == cp_id)
                .where(col(CheckpointTimestamp.tsr).is_(None))
                .values(
                    tsr=token.tsr,
                    gen_time=token.gen_time,
                    tsa_url=cfg.tsa_url,
                    attempts=CheckpointTimestamp.attempts + 1,
                    last_error=None,
                )
            )
        if getattr(done, "rowcount", 1):
            result.fetched.append(Fetched(cp_id, size, token.gen_time))
    if result.error is None:
        try:
            result.published = publish_tokens(sessions, store, limit=limit)
        except StoreError as e:
            result.error = f"the store: {e}"
    with sessions(snapshot=True) as s:
        result.pending = pending_count(s)
    return result


def publish_tokens(sessions: Sessions, store: ObjectStore, *, limit: int = 100) -> int:
    """Put the catalog's tokens not yet in the store there (note first, then token, each
    written once). Another station's checkpoint of the same size already there keeps its
    place: this token then stays in the catalog only."""
    with sessions(snapshot=True) as s:
        rows = list(
            s.exec(
                select(
                    CheckpointTimestamp.checkpoint_id,
                    Checkpoint.size,
                    Checkpoint.note,
                    CheckpointTimestamp.tsr,
                )
                .join(Checkpoint, col(Checkpoint.id) == col(CheckpointTimestamp.checkpoint_id))
                .where(col(CheckpointTimestamp.tsr).is_not(None))
                .where(col(CheckpointTimestamp.published).is_(False))
                .order_by(col(CheckpointTimestamp.checkpoint_id))
                .limit(limit)
            ).all()
        )
    written = 0
    for cp_id, size, note_text, tsr in rows:
        note_path, tsr_path = store_paths(size)
        data = note_text.encode("utf-8")
        there = store.get_log(note_path)
        if there is None:
            store.put_log(note_path, data, final=True)
            there = data
        if there == data and tsr is not None:
            if store.get_log(tsr_path) is None:
                store.put_log(tsr_path, tsr, final=True)
                written += 1
        else:
            logger.info(
                "log/%s holds another station's checkpoint: token kept in the catalog", note_path
            )
        with sessions() as s:
            s.execute(
                update(CheckpointTimestamp)
                .where(col(CheckpointTimestamp.checkpoint_id) == cp_id)
                .values(published=True)
            )
    return written


@dataclass
class StampReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)


def verify_stored(
    session: Session, store: ObjectStore, roots_pem: bytes | None, *, from_size: int = 0
) -> StampReport:
    """Every stored token of a checkpoint of size >= ``from_size``: the catalog's (its
    imprint against the checkpoint's exact note bytes, its signature against ``roots_pem``,
    its cached time) and the store's copy of it. ``roots_pem`` None: no ca_file configured,
    so signatures cannot be checked, which is itself reported."""
    rep = StampReport()
    last = -1
    while True:
        rows = list(
            session.exec(
                select(CheckpointTimestamp, Checkpoint.size, Checkpoint.note)
                .join(Checkpoint, col(Checkpoint.id) == col(CheckpointTimestamp.checkpoint_id))
                .where(col(CheckpointTimestamp.tsr).is_not(None))
                .where(col(Checkpoint.size) >= from_size)
                .where(col(CheckpointTimestamp.checkpoint_id) > last)
                .order_by(col(CheckpointTimestamp.checkpoint_id))
                .limit(_BATCH)
            ).all()
        )
        if not rows:
            break
        last = rows[-1][0].checkpoint_id
        for row, size, note_text in rows:
            rep.checked += 1
            _check_one(session, store, roots_pem, row, size, note_text, rep.problems)
    if rep.checked and roots_pem is None:
        rep.problems.append(
            f"{rep.checked} checkpoint timestamps cannot be checked: no [timestamp] ca_file "
            "(the TSA's roots) is configured"
        )
    return rep


def _token_problems(tsr: bytes, data: bytes, roots_pem: bytes | None) -> list[str]:
    if roots_pem is None:  # the imprint alone; the missing roots are said once, by the caller
        return imprint_problems(tsr, data)
    return verify_token(tsr, data, roots_pem)


def _check_one(
    session: Session,
    store: ObjectStore,
    roots_pem: bytes | None,
    row: CheckpointTimestamp,
    size: int,
    note_text: str,
    problems: list[str],
) -> None:
    label = f"timestamp of checkpoint #{row.checkpoint_id} (size {size})"
    data = note_text.encode("utf-8")
    tsr = row.tsr or b""
    problems.extend(f"{label}, in the catalog: {p}" for p in _token_problems(tsr, data, roots_pem))
    try:
        gen_time = read_token(tsr).gen_time
    except TimestampError:
        gen_time = None  # reported above
    if gen_time is not None and row.gen_time != gen_time:
        problems.append(f"{label}: the catalog's gen_time differs from the token's ({gen_time})")
    if not row.published:
        return
    note_path, tsr_path = store_paths(size)
    try:
        s_note, s_tsr = store.get_log(note_path), store.get_log(tsr_path)
    except StoreError as e:
        problems.append(f"{label}: cannot read its copy in the store: {e}")
        return
    if s_note is None:
        problems.append(f"log/{note_path} is missing from the store")
        return
    if s_note != data:
        # another station's checkpoint of the same size took the name first: it must be one
        # the catalog holds, and its token (if any) must be over it
        known = session.exec(
            select(func.count())
            .select_from(Checkpoint)
            .where(Checkpoint.size == size)
            .where(Checkpoint.note == s_note.decode("utf-8", errors="replace"))
        ).one()
        if not known:
            problems.append(f"log/{note_path} in the store is not a checkpoint the catalog holds")
            return
        if s_tsr is None:
            return
    elif s_tsr is None:
        problems.append(f"log/{tsr_path} is missing from the store")
        return
    if s_tsr is not None:
        problems.extend(
            f"log/{tsr_path} in the store: {p}" for p in _token_problems(s_tsr, s_note, roots_pem)
        )
