"""Catalog connections and migrations. The only place that creates engines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import create_engine

from bwc.errors import CatalogError, first_line

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"

# The heads of the migration history (parts of the schema are separate branches). Every
# command checks the catalog against these without loading Alembic (it costs ~0.1 s a start);
# a unit test keeps this in step with the migration scripts.
SCHEMA_HEADS = frozenset({"0008"})


READ_ONLY_SNAPSHOT = "bwc_read_only_snapshot"  # an execution option, see make_engine


def make_engine(url: str) -> Engine:
    """An engine with the settings evidence needs: SQLite in WAL mode, foreign keys on, every
    transaction taking the write lock up front (so log appends are serialized, no gaps)."""
    if url.startswith("sqlite:"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's
            # deferred BEGIN, which would let two appenders read the same log head.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=60000")
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
    return create_engine(url, pool_pre_ping=True)


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
        raise CatalogError(f"cannot migrate the catalog: {first_line(e)}") from e


def check_schema(engine: Engine) -> None:
    """Refuse to work on a catalog that is not at the newest schema revision."""
    heads = set(SCHEMA_HEADS)
    try:
        with engine.connect() as conn:
            current: set[str] = set()
            if inspect(conn).has_table("alembic_version"):
                current = {
                    str(r[0]) for r in conn.execute(text("SELECT version_num FROM alembic_version"))
                }
    except SQLAlchemyError as e:
        raise CatalogError(
            f"cannot open the catalog: {first_line(e)}",
            hint="check the catalog URL and that the database is up",
        ) from e
    if current != heads:
        have = ", ".join(sorted(current)) or "none"
        raise CatalogError(
            f"catalog schema is at revision {have}, this bwc needs {', '.join(sorted(heads))}",
            hint="run `bwc init` to migrate it",
        )
