"""Catalog tables (SQLModel). Schema changes go through Alembic (bwc/evidence/migrations).

Rows are *indexes* over signed data, never the authority: every item row is checked against
its signed manifest and every event row against its logged leaf bytes by `bwc verify`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

# the lengths of what people and cameras name: checked by bwc before anything is stored
from bwc.config.limits import ID_MAX, NAME_MAX, STATION_ID_MAX


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns timezone-aware UTC datetimes on every backend (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored in the catalog")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _utc(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Item(SQLModel, table=True):
    """One evidence item: the bytes of one file, identified by their SHA-256."""

    __tablename__ = "item"

    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    # BIGINT as in the migrations: an INTEGER cast fails on PostgreSQL past 2 GiB
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    manifest: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    key_id: str = Field(sa_column=Column(String(64), nullable=False))
    station_id: str = Field(sa_column=Column(String(STATION_ID_MAX), nullable=False))
    original_path: str = Field(sa_column=Column(Text, nullable=False))
    device_id: str | None = Field(default=None, sa_column=Column(String(ID_MAX), index=True))
    officer_id: str | None = Field(default=None, sa_column=Column(String(ID_MAX), index=True))
    recorded_start: datetime | None = _utc(nullable=True, index=True)
    recorded_end: datetime | None = _utc(nullable=True)
    ingested_at: datetime = _utc(index=True)
    flags: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    store_version: str | None = Field(default=None, sa_column=Column(String(256)))


class Event(SQLModel, table=True):
    """One custody event = one leaf of the custody log. ``leaf`` holds the exact logged bytes;
    the other columns are a decoded copy for queries and are checked against ``leaf``."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_item", "item_sha256"),)

    idx: int = Field(primary_key=True)
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    at: datetime = _utc()
    actor: str = Field(sa_column=Column(Text, nullable=False))
    station_id: str = Field(sa_column=Column(String(STATION_ID_MAX), nullable=False))
    item_sha256: str | None = Field(default=None, sa_column=Column(String(64)))


class LogHead(SQLModel, table=True):
    """The sequencer row: appends lock it (FOR UPDATE on PostgreSQL; SQLite's write lock)."""

    __tablename__ = "log_head"

    id: int = Field(default=1, primary_key=True)
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # The log's origin line (C2SP tlog-checkpoint): one per catalog, shared by every station
    # writing to it; set once, when the first station initialises the catalog.
    origin: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # How many events the stored tiles (log_tile) cover: equal to size, except in a catalog
    # made before tiles, until `bwc init` has built them (appends wait for that).
    tiled_size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    # The `log-verified` event of the latest recorded full check of the log (`bwc log verify
    # --record`), where `--since last` starts from; a pointer, the event is the authority.
    verified_idx: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


# The custody log's Merkle tree as C2SP tlog-tiles, levels 1 and up: tile ``idx`` of ``level``
# holds the hashes of full tiles of the level below (each the root of ``256**level`` events),
# 1 to 256 of them; the rightmost tile of a level grows until it is full, then never changes.
# Level 0 (the leaf hashes) is the ``event.leaf_hash`` column. Updated in the same transaction
# as the events appended (bwc.evidence.custody). A plain table, not a model class: it is read
# and written a row at a time, and a model class costs ~20 ms of every command's start.
log_tile = Table(
    "log_tile",
    SQLModel.metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
)


class Checkpoint(SQLModel, table=True):
    __tablename__ = "checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    key_id: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = _utc()


class CheckpointTimestamp(SQLModel, table=True):
    """An RFC 3161 timestamp of one checkpoint's exact note bytes (bwc.evidence.stamps):
    pending while ``tsr`` is None (the TSA did not answer yet)."""

    __tablename__ = "checkpoint_timestamp"

    checkpoint_id: int = Field(
        sa_column=Column(Integer, ForeignKey("checkpoint.id"), primary_key=True)
    )
    tsa_url: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _utc()
    tsr: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    gen_time: datetime | None = _utc(nullable=True)
    # its copy is in the store (log/timestamps/<size>.tsr); false: put it there next time
    published: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SigningKey(SQLModel, table=True):
    """Public half of every station key ever used. Private halves stay in the home's keys/."""

    __tablename__ = "signing_key"

    key_id: str = Field(sa_column=Column(String(64), primary_key=True))
    station_id: str = Field(sa_column=Column(String(STATION_ID_MAX), nullable=False))
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _utc()
    retired_at: datetime | None = _utc(nullable=True)
    # the index of the `key-rotated` custody event that announced this key: a verifier reads
    # that event (and its inclusion proof) instead of scanning the log for announcements
    announced_idx: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class Assignment(SQLModel, table=True):
    """Device checkout ledger: officer held device from start to end (end None: still held).
    Coverage is counted per person, and devices are shared, so this attributes footage."""

    __tablename__ = "assignment"

    id: int | None = Field(default=None, primary_key=True)
    officer_id: str = Field(sa_column=Column(String(ID_MAX), nullable=False))
    device_id: str = Field(sa_column=Column(String(ID_MAX), nullable=False))
    start: datetime = _utc()
    end: datetime | None = _utc(nullable=True)
    source: str = Field(default="cli", sa_column=Column(String(32), nullable=False))


class DeviceClock(SQLModel, table=True):
    """A measured device clock offset: device time minus true time, in milliseconds."""

    __tablename__ = "device_clock"

    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(sa_column=Column(String(ID_MAX), nullable=False))
    offset_ms: int
    measured_at: datetime = _utc()
    recorded_by: str = Field(sa_column=Column(Text, nullable=False))


class DockSession(SQLModel, table=True):
    """One camera docked at one station, from mount to unmount."""

    __tablename__ = "dock_session"

    id: int | None = Field(default=None, primary_key=True)
    station_id: str = Field(sa_column=Column(String(STATION_ID_MAX), nullable=False))
    mount: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    device_id: str | None = Field(default=None, sa_column=Column(String(ID_MAX)))
    usb_serial: str | None = Field(default=None, sa_column=Column(String(ID_MAX)))
    first_seen: datetime = _utc()
    last_seen: datetime = _utc()
    closed_at: datetime | None = _utc(nullable=True)
    # the custody log index of its latest logged receipt (`receipt` or `undocked`), and the
    # highest ingest job id that receipt covered (bwc/ingest/receipt.py)
    receipt_idx: int | None = Field(default=None, sa_column=Column(BigInteger))
    receipt_upto: int | None = None


class DeviceSerial(SQLModel, table=True):
    """The device id a camera's USB serial was first seen with (trust on first use): the
    serial is the hardware's own identity, the device id what its files and id file claim.
    A later claim of another device id for the same serial is flagged (``device-mismatch``)."""

    __tablename__ = "device_serial"

    usb_serial: str = Field(sa_column=Column(String(ID_MAX), primary_key=True))
    device_id: str = Field(sa_column=Column(String(ID_MAX), nullable=False, index=True))
    station_id: str = Field(sa_column=Column(String(STATION_ID_MAX), nullable=False))
    dock_session: int | None = None
    first_seen: datetime = _utc()


class IngestJob(SQLModel, table=True):
    """One file found on a docked camera and how far it got. Every step is persisted before
    the next, so a restart resumes each file from its last step (DESIGN.md, the ingest
    pipeline). States: discovered, staged, signed, stored, verified, committed, released;
    and the ends: ignored, failed, abandoned."""

    __tablename__ = "ingest_job"

    id: int | None = Field(default=None, primary_key=True)
    session_id: int
    station_id: str = Field(sa_column=Column(String(STATION_ID_MAX), nullable=False))
    path: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    rel: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # BIGINT as in the migration: nanoseconds since 1970 overflow an INTEGER cast on
    # PostgreSQL (the daemon could take no file there)
    size: int | None = Field(default=None, sa_column=Column(BigInteger))
    mtime_ns: int | None = Field(default=None, sa_column=Column(BigInteger))
    state: str = Field(sa_column=Column(String(16), nullable=False))
    sha256: str | None = Field(default=None, sa_column=Column(String(64)))
    manifest: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    signature: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    store_version: str | None = Field(default=None, sa_column=Column(String(256)))
    outcome: str | None = Field(default=None, sa_column=Column(String(16)))  # ingested/seen-again
    reason: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 0
    next_try: datetime | None = _utc(nullable=True)
    updated_at: datetime = _utc()


class ItemRetention(SQLModel, table=True):
    """An item's retention class, case link and deletion by policy. Items without a row were
    never classified: they follow the configured default class, counted from their ingest.
    Every change is also a custody event (retention-changed, deleted-by-policy), and
    `bwc retention apply` deletes nothing whose row disagrees with the log."""

    __tablename__ = "item_retention"

    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    class_name: str = Field(sa_column=Column(String(NAME_MAX), nullable=False))
    case_id: str | None = Field(default=None, sa_column=Column(String(ID_MAX), index=True))
    # None: kept permanently
    retain_until: datetime | None = _utc(nullable=True, index=True)
    # the Object Lock date bwc last set in the store (None: none set, or no Object Lock)
    lock_until: datetime | None = _utc(nullable=True)
    state: str = Field(default="active", sa_column=Column(String(32), nullable=False))
    changed_at: datetime = _utc()
    changed_by: str = Field(sa_column=Column(Text, nullable=False))
    deleted_at: datetime | None = _utc(nullable=True)


class LegalHold(SQLModel, table=True):
    """A legal hold on an item: placed, and later released (kept as history). At most one
    open hold per item; an item with an open hold is never deleted."""

    __tablename__ = "legal_hold"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    placed_at: datetime = _utc()
    placed_by: str = Field(sa_column=Column(Text, nullable=False))
    released_at: datetime | None = _utc(nullable=True)
    released_by: str | None = Field(default=None, sa_column=Column(Text))
    release_reason: str | None = Field(default=None, sa_column=Column(Text))


class Officer(SQLModel, table=True):
    """Audit roster: one officer (imported by `bwc audit import officers`)."""

    __tablename__ = "officer"

    officer_id: str = Field(sa_column=Column(String(ID_MAX), primary_key=True))
    name: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    unit: str = Field(sa_column=Column(String(ID_MAX), nullable=False))
    county: str = Field(sa_column=Column(String(ID_MAX), nullable=False))
    frontline: bool
    # officers who left stay (their cases count) but are not current staff (migration 0012):
    # inactive from ``inactive_from`` (None with active False: no date known, every month)
    active: bool = Field(
        default=True, sa_column=Column(Boolean, nullable=False, server_default=true())
    )
    inactive_from: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    inactive_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class EnforcementCase(SQLModel, table=True):
    """An enforcement case from the city-management platform (`bwc audit import cases`)."""

    __tablename__ = "enforcement_case"

    case_id: str = Field(sa_column=Column(String(ID_MAX), primary_key=True))
    category: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    unit: str = Field(default="", sa_column=Column(String(ID_MAX), nullable=False, default=""))
    start: datetime = _utc()
    end: datetime = _utc()
    location: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class CaseOfficer(SQLModel, table=True):
    """An officer involved in a case: one audited case-officer pair."""

    __tablename__ = "case_officer"

    case_id: str = Field(sa_column=Column(String(ID_MAX), primary_key=True))
    officer_id: str = Field(sa_column=Column(String(ID_MAX), primary_key=True))


class Explanation(SQLModel, table=True):
    """An officer's written explanation for a case not fully recorded (`bwc audit explain`).
    A later explanation for the same pair adds a row. ``status``: "submitted" until a named
    supervisor approves or rejects it (`bwc audit approve`, the `explanation-reviewed`
    event); only an approved one counts in the audit."""

    __tablename__ = "explanation"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(sa_column=Column(String(ID_MAX), nullable=False))
    officer_id: str = Field(sa_column=Column(String(ID_MAX), nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(sa_column=Column(Text, nullable=False))
    station_id: str = Field(sa_column=Column(String(STATION_ID_MAX), nullable=False))
    at: datetime = _utc()
    status: str = Field(
        default="submitted",
        sa_column=Column(String(16), nullable=False, server_default="submitted"),
    )
    reviewed_by: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    review_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    reviewed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


# One `bwc verify` run, as its `verification-run` custody event records it (a cache of the
# event, for `bwc show`'s history; the event and the signed statement in the store are the
# authority). ``scope``: "all" (every item in the catalog when it started, i.e. ingested
# before ``log_size``) or "ids" (the items in verification_run_item).
verification_run = Table(
    "verification_run",
    SQLModel.metadata,
    Column("event_idx", BigInteger, primary_key=True, autoincrement=False),
    Column("run_id", String(64), nullable=False, unique=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", Text, nullable=False),
    Column("station_id", String(STATION_ID_MAX), nullable=False),
    Column("scope", String(8), nullable=False),
    Column("log_size", BigInteger, nullable=False),
    Column("items", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("statement_sha256", String(64), nullable=False),
)

# An item a run by id checked.
verification_run_item = Table(
    "verification_run_item",
    SQLModel.metadata,
    Column("event_idx", BigInteger, primary_key=True, autoincrement=False),
    Column("sha256", String(64), primary_key=True, index=True),
)


class CaseLink(SQLModel, table=True):
    """An item's link to an enforcement case (many to many: an administrative case and a
    police operation may share footage). A cache of the log: each row stands for a
    `case-linked` event not undone by a `case-unlinked` one (or, for links made before
    links had events, the case its `retention-changed` event recorded); `bwc verify`
    reports a row the log does not have, and a logged link the catalog lost. Unlinking
    deletes the row; the history stays in the log."""

    __tablename__ = "case_link"

    case_id: str = Field(sa_column=Column(String(ID_MAX), primary_key=True))
    sha256: str = Field(sa_column=Column(String(64), primary_key=True, index=True))
    linked_at: datetime = _utc()
    linked_by: str = Field(sa_column=Column(Text, nullable=False))
