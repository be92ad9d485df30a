"""PostgreSQL helpers for the integration tests: reach the test server, make throw-away
databases (``bwc_test_<random hex>``) and drop them again.

The server is the one `make test` starts: 127.0.0.1:5432, trust auth, user ``postgres``,
maintenance database ``test``. When it cannot be reached the tests are skipped, unless
``BWC_TEST_PG=required`` (set by `make test` where PostgreSQL is installed): then they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

HOST = "127.0.0.1"
PORT = 5432
USER = "postgres"
ADMIN_DB = "test"
# The databases are created with this session time zone, on purpose not UTC: times must come
# back as UTC whatever the server's or the session's zone is.
DB_TIMEZONE = "Asia/Shanghai"


def conninfo(dbname: str) -> str:
    return f"host={HOST} port={PORT} user={USER} dbname={dbname} connect_timeout=5"


def sqlalchemy_url(dbname: str) -> str:
    return f"postgresql+psycopg://{USER}@{HOST}:{PORT}/{dbname}"


def connect(dbname: str) -> psycopg.Connection:
    """A plain psycopg connection (autocommit) for looking at or tampering with a catalog."""
    return psycopg.connect(conninfo(dbname), autocommit=True)


def require_server() -> None:
    """Fail (BWC_TEST_PG=required) or skip when the server cannot be reached."""
    try:
        with connect(ADMIN_DB) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        reason = f"PostgreSQL at {HOST}:{PORT} (user {USER}, db {ADMIN_DB}) unreachable: {e}"
        if os.environ.get("BWC_TEST_PG") == "required":
            pytest.fail(reason + " (BWC_TEST_PG=required)", pytrace=False)
        pytest.skip(reason)


class Databases:
    """Creates fresh databases and drops every one of them at the end."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self) -> str:
        name = f"bwc_test_{secrets.token_hex(6)}"
        with connect(ADMIN_DB) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET timezone TO {}").format(
                    sql.Identifier(name), sql.Literal(DB_TIMEZONE)
                )
            )
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        with connect(ADMIN_DB) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(name)


@contextmanager
def databases() -> Iterator[Databases]:
    require_server()
    dbs = Databases()
    try:
        yield dbs
    finally:
        dbs.drop_all()
