"""Issue 12, defect 17: the classifier of catalog errors, by SQLite result code and
PostgreSQL SQLSTATE. A full disk, a duplicate, a value too long, a lock: each named with
what to do; only damage suggests restoring from a backup. PostgreSQL's disk cannot be filled
in a test, so its DiskFull (53100) is constructed and passed through."""

from __future__ import annotations

import sqlite3

import psycopg.errors
import pytest
from sqlalchemy import exc

from bwc.evidence.catalog_errors import Folder, Kind, catalog_error, classify, on_disk

pytestmark = pytest.mark.unit

PG_WHERE = "the PostgreSQL server db1:5432 (its data directory)"


def wrapped(orig: BaseException) -> exc.DBAPIError:
    """As SQLAlchemy hands a driver error on."""
    return exc.DBAPIError.instance("INSERT ...", {}, orig, Exception)  # type: ignore[arg-type]


def sqlite_error(code: int, name: str, text: str) -> sqlite3.Error:
    e = sqlite3.OperationalError(text)
    e.sqlite_errorcode = code
    e.sqlite_errorname = name
    return e


def real_unique_clash() -> sqlite3.Error:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE item (sha256 TEXT PRIMARY KEY)")
    db.execute("INSERT INTO item VALUES ('ab')")
    try:
        db.execute("INSERT INTO item VALUES ('ab')")
    except sqlite3.IntegrityError as e:
        return e
    raise AssertionError("no clash")


def test_postgres_disk_full_is_named_with_where_to_free_space() -> None:
    e = wrapped(psycopg.errors.DiskFull("could not extend file: No space left on device"))
    assert classify(e).kind is Kind.DISK_FULL
    text = str(catalog_error(e, where=PG_WHERE))
    assert text.startswith("the catalog's disk is full (could not extend file")
    assert f"free space on {PG_WHERE} and run the command again" in text
    assert "the failed change to the catalog was rolled back" in text and "backup" not in text
    assert catalog_error(e).exit_code == 8


@pytest.mark.parametrize(
    ("orig", "kind", "says"),
    [
        (psycopg.errors.OutOfMemory("out of memory"), Kind.OUT_OF_MEMORY, "ran out of memory"),
        (psycopg.errors.UniqueViolation("duplicate key"), Kind.DUPLICATE, "with this key"),
        (
            psycopg.errors.StringDataRightTruncation("value too long for type varchar(128)"),
            Kind.TOO_LONG,
            "a value is too long for the catalog",
        ),
        (psycopg.errors.ReadOnlySqlTransaction("read-only"), Kind.READ_ONLY, "read-only"),
        (psycopg.errors.InsufficientPrivilege("denied"), Kind.PERMISSION, "permission denied"),
        (psycopg.errors.AdminShutdown("terminating"), Kind.UNAVAILABLE, "unavailable"),
        (psycopg.errors.DataCorrupted("invalid page"), Kind.DAMAGED, "damaged"),
        (psycopg.errors.ForeignKeyViolation("fk"), Kind.INTEGRITY, "never makes"),
        (sqlite_error(13, "SQLITE_FULL", "database or disk is full"), Kind.DISK_FULL, "full"),
        (sqlite_error(5, "SQLITE_BUSY", "database is locked"), Kind.LOCKED, "busy"),
        (sqlite_error(1032, "SQLITE_READONLY_DBMOVED", "readonly"), Kind.READ_ONLY, "read-only"),
        (sqlite_error(11, "SQLITE_CORRUPT", "malformed"), Kind.DAMAGED, "damaged"),
        (sqlite_error(26, "SQLITE_NOTADB", "not a database"), Kind.DAMAGED, "damaged"),
        (sqlite_error(1, "SQLITE_ERROR", "no such table: checkpoint"), Kind.DAMAGED, "damaged"),
        (sqlite_error(778, "SQLITE_IOERR_WRITE", "disk I/O error"), Kind.IO, "failed a read"),
        (sqlite_error(787, "SQLITE_CONSTRAINT_FOREIGNKEY", "FK"), Kind.INTEGRITY, "never"),
    ],
)
def test_each_kind_by_its_code(orig: BaseException, kind: Kind, says: str) -> None:
    e = wrapped(orig)
    assert classify(e).kind is kind
    text = str(catalog_error(e, where="/srv/bwc"))
    assert says in text, text
    # only damage (or a write bwc never makes) points at the backup
    assert ("backup" in text) == (kind in (Kind.DAMAGED, Kind.INTEGRITY)), text


def test_a_real_sqlite_unique_clash_names_what_clashed() -> None:
    e = wrapped(real_unique_clash())
    f = classify(e)
    assert (f.kind, f.table, f.code) == (Kind.DUPLICATE, "item", "SQLITE_CONSTRAINT_PRIMARYKEY")
    assert "already in the catalog (already ingested)" in str(catalog_error(e))


def test_an_io_error_with_no_space_left_is_the_full_disk() -> None:
    e = wrapped(sqlite_error(4874, "SQLITE_IOERR_SHMSIZE", "disk I/O error"))
    assert on_disk(classify(e), Folder(free_bytes=0)).kind is Kind.DISK_FULL
    assert on_disk(classify(e), Folder(free_bytes=10 << 30)).kind is Kind.IO
    assert "disk is full" in str(catalog_error(e, where="/srv/bwc", folder=Folder(free_bytes=0)))


def test_cannot_open_in_a_read_only_or_foreign_folder_says_so() -> None:
    e = wrapped(sqlite_error(14, "SQLITE_CANTOPEN", "unable to open database file"))
    assert classify(e).kind is Kind.CANNOT_OPEN
    text = str(catalog_error(e, where="/srv/bwc", folder=Folder(read_only=True)))
    assert text.startswith("the catalog is read-only") and "read-only file system" in text
    text = str(catalog_error(e, where="/srv/bwc", folder=Folder(writable=False)))
    assert text.startswith("permission denied on the catalog"), text
    assert "run bwc as the user that owns /srv/bwc" in text


def test_a_server_that_never_answered_is_unavailable() -> None:
    e = exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))
    assert classify(e).kind is Kind.UNAVAILABLE
    assert "check that the database is up and reachable" in str(catalog_error(e))


def test_a_full_disk_is_a_passing_outage_for_the_daemon() -> None:
    """The daemon keeps a file whose commit met a full catalog disk in its spool and tries
    again (as for PostgreSQL's DiskFull); it never marks it failed. Damage is no outage."""
    from bwc.errors import CatalogError
    from bwc.evidence.db import unavailable

    full = exc.OperationalError("COMMIT", {}, sqlite_error(13, "SQLITE_FULL", "disk is full"))
    try:
        raise CatalogError("the catalog's disk is full") from full
    except CatalogError as e:
        assert unavailable(e) == "disk is full"
    pg_full = exc.OperationalError("COMMIT", {}, psycopg.errors.DiskFull("no space"))
    assert unavailable(pg_full) == "no space"
    bad = exc.DatabaseError("SELECT", {}, sqlite_error(11, "SQLITE_CORRUPT", "malformed"))
    assert unavailable(bad) is None


def test_the_cause_chain_is_followed() -> None:
    """A driver error re-raised by our own code keeps its meaning."""
    try:
        try:
            raise psycopg.errors.DiskFull("no space")
        except psycopg.Error as inner:
            raise RuntimeError("while committing") from inner
    except RuntimeError as outer:
        assert classify(outer).kind is Kind.DISK_FULL
