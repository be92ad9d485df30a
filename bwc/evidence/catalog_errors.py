"""What a catalog error from the database driver means, and what to tell a person about it.

Pure: a driver exception (``sqlite3.Error``, ``psycopg.Error``, or a SQLAlchemy error
wrapping one) in, a classification and a ``CatalogError`` out. Classified by SQLite's
(extended) result code and PostgreSQL's SQLSTATE, never by message text where a code exists.
Only genuine damage (a malformed database, a constraint that bwc's own writes can never
break) suggests restoring the catalog from a backup: a full disk or a duplicate does not.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.exc import OperationalError

from bwc.errors import CatalogError, first_line

__all__ = ["Failure", "Folder", "Kind", "catalog_error", "classify", "on_disk"]

# SQLite's primary result codes (the low byte of an extended code)
_SQLITE_KIND = {
    sqlite3.SQLITE_FULL: "disk-full",
    sqlite3.SQLITE_NOMEM: "out-of-memory",
    sqlite3.SQLITE_BUSY: "locked",
    sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_READONLY: "read-only",
    sqlite3.SQLITE_PERM: "permission",
    sqlite3.SQLITE_AUTH: "permission",
    sqlite3.SQLITE_CANTOPEN: "cannot-open",
    sqlite3.SQLITE_IOERR: "io",
    sqlite3.SQLITE_TOOBIG: "too-long",
    sqlite3.SQLITE_CORRUPT: "damaged",
    sqlite3.SQLITE_NOTADB: "damaged",
    sqlite3.SQLITE_CONSTRAINT: "integrity",
}
_SQLITE_DUPLICATE = {sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY}

# PostgreSQL SQLSTATEs (Appendix A of its manual), exact codes first, then classes
_PG_KIND = {
    "53100": "disk-full",
    "53200": "out-of-memory",
    "53300": "unavailable",  # too many connections
    "23505": "duplicate",
    "22001": "too-long",
    "25006": "read-only",  # read_only_sql_transaction: a standby, or default_transaction_read_only
    "42501": "permission",
    "28000": "permission",
    "28P01": "permission",
    "55P03": "locked",  # lock_not_available
    "40001": "conflict",  # serialization_failure
    "40P01": "conflict",  # deadlock_detected
    "57P01": "unavailable",  # admin_shutdown
    "57P02": "unavailable",
    "57P03": "unavailable",  # cannot_connect_now (starting up)
    "58030": "io",
    "XX001": "damaged",  # data_corrupted
    "XX002": "damaged",  # index_corrupted
}
_PG_CLASS = {"08": "unavailable", "23": "integrity", "53": "out-of-memory", "42": "schema"}


class Kind(StrEnum):
    DISK_FULL = "disk-full"
    OUT_OF_MEMORY = "out-of-memory"
    DUPLICATE = "duplicate"
    TOO_LONG = "too-long"
    LOCKED = "locked"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    CANNOT_OPEN = "cannot-open"
    READ_ONLY = "read-only"
    PERMISSION = "permission"
    IO = "io"
    DAMAGED = "damaged"
    INTEGRITY = "integrity"
    SCHEMA = "schema"
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    kind: Kind
    detail: str  # the driver's own first line
    table: str | None = None  # where the database names it: what clashed or was too long
    code: str | None = None  # SQLITE_FULL, 53100, ...


def _driver_error(e: BaseException) -> BaseException:
    """The driver's exception under SQLAlchemy's wrapper (and under our own wrapping)."""
    seen: BaseException | None = e
    while seen is not None:
        orig = getattr(seen, "orig", None)
        if isinstance(orig, BaseException):
            return orig
        if isinstance(seen, sqlite3.Error) or getattr(seen, "sqlstate", None):
            return seen
        seen = seen.__cause__
    return e


def classify(e: BaseException) -> Failure:
    """What kind of failure ``e`` is, by the driver's code."""
    drv = _driver_error(e)
    detail = first_line(drv)
    if isinstance(drv, sqlite3.Error):
        code = getattr(drv, "sqlite_errorcode", None)
        name = getattr(drv, "sqlite_errorname", None)
        if not isinstance(code, int):
            return Failure(Kind.OTHER, detail)
        if code == sqlite3.SQLITE_ERROR and detail.startswith(("no such table", "no such column")):
            # SQLite's generic code: a table gone from a catalog at the current schema
            # revision was dropped outside bwc
            return Failure(Kind.DAMAGED, detail, None, name)
        if code in _SQLITE_DUPLICATE:
            # "UNIQUE constraint failed: item.sha256": the table is only in the text
            where = detail.rpartition(": ")[2].split(".")[0] or None
            return Failure(Kind.DUPLICATE, detail, where, name)
        return Failure(Kind(_SQLITE_KIND.get(code & 0xFF, "other")), detail, None, name)
    state = getattr(drv, "sqlstate", None)
    if isinstance(state, str) and state:
        kind = _PG_KIND.get(state) or _PG_CLASS.get(state[:2], "other")
        diag = getattr(drv, "diag", None)
        table = getattr(diag, "table_name", None) if diag is not None else None
        return Failure(Kind(kind), detail, table if isinstance(table, str) else None, state)
    if getattr(e, "connection_invalidated", False) or isinstance(e, OperationalError):
        # no SQLSTATE: the server never answered (refused, unreachable, timed out)
        return Failure(Kind.UNAVAILABLE, detail)
    return Failure(Kind.OTHER, detail)


# What a clash on a table's key means, in the words of the people who run bwc.
_DUPLICATES = {
    "item": "this evidence item is already in the catalog (already ingested)",
    "event": "another custody event took the same place in the log (another station "
    "appended at the same moment)",
    "signing_key": "this signing key is already registered",
    "device_serial": "this USB serial is already recorded",
    "officer": "this officer is already in the roster",
    "enforcement_case": "this case is already imported",
}


def catalog_error(
    e: BaseException, *, where: str | None = None, folder: Folder | None = None
) -> CatalogError:
    """The one-line error for a failed catalog operation: what happened and what to do.
    ``where``: the catalog's folder (SQLite) or server (PostgreSQL), named in the advice;
    ``folder``: what the SQLite file's folder looked like just after (see ``on_disk``). The
    failed transaction has been rolled back: nothing of it was stored."""
    f = classify(e)
    if folder is not None:
        f = on_disk(f, folder)
    at = where or "the catalog's disk"
    kept = "the failed change to the catalog was rolled back"
    msg: str
    hint: str
    match f.kind:
        case Kind.DISK_FULL:
            msg = f"the catalog's disk is full ({f.detail})"
            hint = f"free space on {at} and run the command again; {kept}"
        case Kind.OUT_OF_MEMORY:
            msg = f"the catalog's database ran out of memory or resources ({f.detail})"
            hint = f"run the command again when the database server has recovered; {kept}"
        case Kind.DUPLICATE:
            what = _DUPLICATES.get(f.table or "", f"a {f.table or 'catalog'} row with this key")
            msg = f"{what} ({f.detail})"
            hint = f"{kept}; the existing record stands (see `bwc list` / `bwc show`)"
        case Kind.TOO_LONG:
            msg = f"a value is too long for the catalog ({f.detail})"
            hint = f"shorten it and run the command again; {kept}"
        case Kind.LOCKED | Kind.CONFLICT:
            msg = f"the catalog is busy: another process holds it ({f.detail})"
            hint = f"run the command again in a moment (`bwc status` shows the daemon); {kept}"
        case Kind.UNAVAILABLE:
            msg = f"the catalog is unavailable ({f.detail})"
            hint = (
                f"check that the database is up and reachable, then run the command again; {kept}"
            )
        case Kind.CANNOT_OPEN:
            msg = f"cannot open the catalog ({f.detail})"
            hint = f"check that {at} exists and this user may write there"
        case Kind.READ_ONLY:
            msg = f"the catalog is read-only ({f.detail})"
            hint = (
                f"{at} is on a read-only file system, or the catalog refuses writes: "
                f"make it writable (e.g. remount it read-write) and run the command again; {kept}"
            )
        case Kind.PERMISSION:
            msg = f"permission denied on the catalog ({f.detail})"
            hint = f"run bwc as the user that owns {at}, or fix its permissions; {kept}"
        case Kind.IO:
            msg = f"the catalog's disk failed a read or write ({f.detail})"
            hint = f"check {at}: free space, the device's health (dmesg); {kept}"
        case Kind.DAMAGED:
            msg = f"the catalog is damaged ({f.detail})"
            hint = "run `bwc log verify`; restore the catalog from a backup"
        case Kind.INTEGRITY:
            msg = f"the catalog refused a write that bwc never makes ({f.detail})"
            hint = (
                f"{kept}; run `bwc log verify`: if it fails, the catalog was changed outside "
                "bwc, restore it from a backup; otherwise report this with the output of -v"
            )
        case Kind.SCHEMA:
            msg = f"the catalog's schema does not match this bwc ({f.detail})"
            hint = f"run `bwc init` to migrate it; {kept}"
        case _:
            msg = f"catalog error ({f.detail})"
            hint = f"{kept}; run with -v for details"
    return CatalogError(msg, hint=hint)


@dataclass(frozen=True)
class Folder:
    """The SQLite catalog's folder as the file system reports it."""

    free_bytes: int | None = None
    read_only: bool = False  # mounted read-only
    writable: bool = True  # this user may create files in it (SQLite's -wal and -shm)


def on_disk(failure: Failure, folder: Folder) -> Failure:
    """What SQLite's vaguer codes mean, given the folder: it reports a full disk met while
    growing its shared-memory file as a plain I/O error, and a folder it may not write
    (read-only, or another user's) as "unable to open" in WAL mode, even for a read."""
    vague = (Kind.IO, Kind.CANNOT_OPEN, Kind.READ_ONLY, Kind.PERMISSION)
    kind = failure.kind
    if kind not in vague:
        return failure
    if folder.read_only:
        kind = Kind.READ_ONLY
    elif not folder.writable:
        kind = Kind.PERMISSION
    elif kind is Kind.IO and folder.free_bytes is not None and folder.free_bytes < _NEARLY_FULL:
        kind = Kind.DISK_FULL
    return Failure(kind, failure.detail, failure.table, failure.code)


_NEARLY_FULL = 1 << 20  # bytes: less than SQLite needs to grow a journal by a few pages
