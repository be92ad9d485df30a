"""Catalog connections and migrations. The only place that creates engines."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlmodel import create_engine

from bwc.errors import CatalogError, first_line
from bwc.evidence.catalog_errors import Folder, Kind, catalog_error, classify

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"

# The heads of the migration history (parts of the schema are separate branches). Every
# command checks the catalog against these without loading Alembic (it costs ~0.1 s a start);
# a unit test keeps this in step with the migration scripts.
SCHEMA_HEADS = frozenset({"0013"})


READ_ONLY_SNAPSHOT = "bwc_read_only_snapshot"  # an execution option, see make_engine


def make_engine(url: str, wait_seconds: float = 60.0) -> Engine:
    """An engine with the settings evidence needs: SQLite in WAL mode, foreign keys on, every
    transaction taking the write lock up front (so log appends are serialized, no gaps).
    ``wait_seconds``: how long to wait for SQLite's write lock or a PostgreSQL connection
    before the catalog counts as unavailable (see `unavailable`)."""
    if url.startswith("sqlite:"):
        busy_ms = int(wait_seconds * 1000)
        engine = create_engine(
            url, connect_args={"timeout": wait_seconds, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's
            # deferred BEGIN, which would let two appenders read the same log head.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            # Appends insert into the per-item index at random places (item ids are
            # hashes): a 16 MB page cache keeps its upper levels, and checkpointing the WAL
            # every 40 MB rather than every 4 MB writes a page touched by several batches
            # once. SQLite checkpoints after a commit has released the write lock.
            cur.execute("PRAGMA cache_size=-16384")
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # A read-only snapshot (READ_ONLY_SNAPSHOT) begins deferred: in WAL mode it reads
            # one consistent state and never takes the write lock, so a long check or
            # report does not hold up docking.
            read_only = conn.get_execution_options().get(READ_ONLY_SNAPSHOT)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, round(wait_seconds))},
    )


def unavailable(e: BaseException) -> str | None:
    """Why the catalog could not be used just now, if that is what ``e`` (or its cause)
    says: SQLite locked past the busy timeout or its disk full, PostgreSQL down, restarting,
    refusing connections, having dropped ours or out of disk space. A passing outage, not a
    bug: the caller waits and tries again (the daemon keeps the files in its spool, never
    failing them for it). None for anything else."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return first_line(seen)
        if isinstance(seen, OperationalError):
            # SQLite's other operational errors (no such table, a damaged file) do not
            # pass: by its result code (busy, locked, cannot open, disk full)
            if not isinstance(seen.orig, sqlite3.Error) or classify(seen).kind in (
                Kind.LOCKED,
                Kind.CANNOT_OPEN,
                Kind.DISK_FULL,
            ):
                return first_line(seen)
            return None
        seen = seen.__cause__
    return None


def failure(engine: Engine, e: BaseException) -> CatalogError:
    """The error to report for ``e``, a failed catalog operation on ``engine``: what
    happened (by the driver's code, see ``catalog_errors``) and where to act: the SQLite
    file's folder, with the space left there, or the PostgreSQL server."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        folder = Path(url.database or ".").resolve().parent
        return catalog_error(e, where=str(folder), folder=_folder(folder))
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    return catalog_error(e, where=f"the PostgreSQL server {server} (its data directory)")


def _folder(path: Path) -> Folder:
    try:
        st = os.statvfs(path)
    except OSError:
        return Folder()
    return Folder(
        free_bytes=st.f_bavail * st.f_frsize,
        read_only=bool(st.f_flag & os.ST_RDONLY),
        writable=os.access(path, os.W_OK | os.X_OK),
    )


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the catalog schema to the newest revision (idempotent)."""
    from alembic import command

    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            # "heads": independent parts of the schema (audit, retention) are separate
            # branches of the migration history; all of them are applied.
            command.upgrade(cfg, "heads")
    except SQLAlchemyError as e:
        why = failure(engine, e)
        raise CatalogError(f"cannot migrate the catalog: {why.message}", hint=why.hint) from e


def check_schema(engine: Engine) -> None:
    """Refuse to work on a catalog that is not at the newest schema revision."""
    heads = set(SCHEMA_HEADS)
    try:
        # a read-only snapshot: opening a station never waits for the write lock
        with engine.connect().execution_options(**{READ_ONLY_SNAPSHOT: True}) as conn:
            current: set[str] = set()
            if inspect(conn).has_table("alembic_version"):
                current = {
                    str(r[0]) for r in conn.execute(text("SELECT version_num FROM alembic_version"))
                }
    except SQLAlchemyError as e:
        raise failure(engine, e) from e
    if current != heads:
        have = ", ".join(sorted(current)) or "none"
        raise CatalogError(
            f"catalog schema is at revision {have}, this bwc needs {', '.join(sorted(heads))}",
            hint="run `bwc init` to migrate it",
        )
