"""The audit on a PostgreSQL catalog (the city deployment) gives exactly the SQLite answers:
times converted by the database, officer lists aggregated by it, the same imports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import pg
from tests.integration.test_audit_cli import city

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_dbs() -> Iterator[pg.Databases]:
    with pg.databases() as dbs:
        yield dbs


def reports(bwc) -> list[str]:  # type: ignore[no-untyped-def]
    # an officer who left (0012's columns, a logged deactivation): verified, then listed
    r = bwc("audit", "officers", "deactivate", "110024", "--reason", "调离", "--from", "2026-10-01")
    assert r.code == 0, r.err
    assert bwc("audit", "verify").code == 0
    outs = [bwc("audit", "officers", "list", "--inactive", "--json").out]
    outs.append(bwc("audit", "cases", "list", "--month", "2026-10", "--json").out)
    for args in (
        ("--format", "csv"),
        ("--format", "csv", "--by", "unit"),
        ("--format", "json"),
    ):
        r = bwc("audit", "report", "--month", "2026-10", *args)
        assert r.code == 0, r.err
        outs.append(r.out)
    r = bwc("audit", "case", "C1", "--json")
    assert r.code == 0, r.err
    outs.append(r.out)
    return outs


@pytest.mark.slow  # ~10-20 s: early in `make test` (tests/conftest.py)
def test_postgres_matches_sqlite(
    bwc, home: Path, tmp_path: Path, pg_dbs: pg.Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sqlite").mkdir()
    city(bwc, home, tmp_path / "sqlite")
    expected = reports(bwc)
    assert json.loads(expected[4])["summary"]["cases"] == 4
    assert json.loads(expected[4])["summary"]["frontline"] == 1  # 110024 left

    name = pg_dbs.create()
    try:
        monkeypatch.setenv("BWC_CATALOG", pg.sqlalchemy_url(name))
        monkeypatch.setenv("BWC_HOME", str(tmp_path / "pg-home"))
        assert bwc("init", "--station-id", "st-test").code == 0
        (tmp_path / "pg").mkdir()
        city(bwc, tmp_path / "pg-home", tmp_path / "pg")
        with pg.connect(name) as conn:  # the rows really are in PostgreSQL
            row = conn.execute("SELECT count(*) FROM enforcement_case").fetchone()
            assert row is not None and row[0] == 4
        assert reports(bwc) == expected
        # re-import is idempotent there too
        r = bwc("audit", "import", "cases", tmp_path / "pg" / "cases.csv", "--json")
        assert json.loads(r.out)["unchanged"] == 4
    finally:
        pg_dbs.drop(name)
