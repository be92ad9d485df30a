"""Issue 12, defect 17: a catalog write that fails says what happened (a full disk, a
duplicate, a value too long), with what to do, in one line and with the catalog's exit code
(8); the failed change is rolled back; only genuine damage suggests a backup.

The full disk is real: a small tmpfs mounted in a private mount namespace (`unshare -m`; the
tests run as root), holding the station's home; the `bwc` commands run inside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from bwc.errors import CatalogError
from bwc.evidence.models import Assignment, Event, Item
from bwc.evidence.station import Station
from tests.conftest import Result
from tests.integration import pg
from tests.integration.daemon_util import BWC_EXE

pytestmark = pytest.mark.integration

# Runs inside the private mount namespace: a 4 MB tmpfs at argv[1], a home on it, one
# assignment recorded and the log verified (so the checkpoint is already kept); then the
# disk is filled and the next assignment is refused, once while another process holds the
# catalog open (SQLite says SQLITE_FULL) and once with nothing open (SQLite cannot even grow
# its shared-memory file: a plain I/O error). Then the space is freed and the catalog read;
# last, the file system is made read-only.
_IN_NAMESPACE = r"""
import json, os, sqlite3, subprocess, sys
mnt, bwc = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], check=True)
env = dict(os.environ, BWC_HOME=os.path.join(mnt, "home"))
def run(*args):
    r = subprocess.run([bwc, *args], env=env, capture_output=True, text=True, timeout=60)
    return {"code": r.returncode, "out": r.stdout, "err": r.stderr}
out = {"init": run("init", "--station-id", "st-full")}
out["first"] = run("devices", "assign", "o0", "d0", "--from", "2026-01-01T00:00:00Z")
out["verify_before"] = run("log", "verify")
held = sqlite3.connect(os.path.join(mnt, "home", "catalog.sqlite"))
held.execute("SELECT count(*) FROM event").fetchall()
# unbuffered: a buffered file keeps the bytes that did not fit and raises again on close
with open(os.path.join(mnt, "fill"), "wb", buffering=0) as f:
    try:
        while True:
            f.write(b"\0" * 65536)
    except OSError:
        pass
out["free"] = os.statvfs(mnt).f_bavail
out["warm"] = run("devices", "assign", "o1", "d1", "--from", "2026-01-02T00:00:00Z")
held.close()
out["cold"] = run("devices", "assign", "o2", "d2", "--from", "2026-01-03T00:00:00Z")
os.unlink(os.path.join(mnt, "fill"))
out["list"] = run("devices", "list", "--json")
out["verify_after"] = run("log", "verify")
db = sqlite3.connect(os.path.join(mnt, "home", "catalog.sqlite"))
out["integrity"] = db.execute("PRAGMA integrity_check").fetchall()
db.close()
subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
out["read_only"] = run("devices", "assign", "o3", "d3", "--from", "2026-01-04T00:00:00Z")
print(json.dumps(out))
"""


def one_line_error(r: dict[str, Any] | Result) -> str:
    code, err = (r["code"], r["err"]) if isinstance(r, dict) else (r.code, r.err)
    assert code == 8, r
    lines = [line for line in err.splitlines() if line.startswith("bwc: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_full_disk_or_read_only_file_system_is_named_and_stores_nothing(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "this test mounts a tmpfs: it runs as root (as `make test` does)"
    assert shutil.which("unshare"), "unshare (util-linux) is needed for a private mount"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = ["unshare", "-m", "--propagation", "private", sys.executable, "-c", _IN_NAMESPACE]
    p = subprocess.run(
        [*cmd, str(mnt), str(BWC_EXE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for step in ("init", "first", "verify_before"):
        assert out[step]["code"] == 0, (step, out[step])
    assert out["free"] == 0
    home = str(mnt / "home")
    for step in ("warm", "cold"):
        line = one_line_error(out[step])
        assert "the catalog's disk is full" in line, (step, line)
        assert f"free space on {home} and run the command again" in line, (step, line)
        assert "backup" not in line, (step, line)
    # nothing of the refused assignments was stored, and the catalog is whole
    assert out["list"]["code"] == 0, out["list"]
    held = [a["officer_id"] for a in json.loads(out["list"]["out"])["assignments"]]
    assert held == ["o0"]
    assert out["verify_after"]["code"] == 0, out["verify_after"]
    assert out["integrity"] == [["ok"]]
    line = one_line_error(out["read_only"])
    assert "the catalog is read-only" in line and "read-only file system" in line, line
    assert "backup" not in line, line


# ------------------------------------------------------------------------------ SQLite and PG


@pytest.fixture(scope="module")
def pg_databases() -> Iterator[pg.Databases]:
    with pg.databases() as dbs:
        yield dbs


@pytest.fixture(params=["sqlite", "postgresql"])
def station(
    request: pytest.FixtureRequest, bwc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Station]:
    """A station on a fresh catalog of each kind, with one item ingested."""
    name = None
    if request.param == "postgresql":
        pg.require_server()
        dbs: pg.Databases = request.getfixturevalue("pg_databases")
        name = dbs.create()
        monkeypatch.setenv("BWC_CATALOG", pg.sqlalchemy_url(name))
    assert bwc("init", "--station-id", "st-err").code == 0
    src = tmp_path / "src"
    src.mkdir()
    (src / "clip.bin").write_bytes(b"evidence\n")
    r = bwc("ingest", str(src))
    assert r.code == 0, r.err
    st = Station.open(tmp_path / "home", actor="test-clerk", passphrase=None)
    yield st
    st.engine.dispose()
    if name is not None:
        request.getfixturevalue("pg_databases").drop(name)


def counts(st: Station) -> tuple[int, int, int]:
    with st.session(snapshot=True) as s:
        return (
            s.exec(select(func.count()).select_from(Item)).one(),
            s.exec(select(func.count()).select_from(Event)).one(),
            s.exec(select(func.count()).select_from(Assignment)).one(),
        )


def a_row(**kw: Any) -> Assignment:
    from datetime import UTC, datetime

    return Assignment(
        **{"officer_id": "o1", "device_id": "d1", "start": datetime(2026, 1, 1, tzinfo=UTC), **kw}
    )


def test_a_duplicate_is_named_and_rolled_back(station: Station) -> None:
    before = counts(station)
    with pytest.raises(CatalogError) as caught, station.session() as s:
        s.add(a_row())  # written first, in the same transaction: must not stay
        s.flush()
        item = s.exec(select(Item)).one()
        s.expunge(item)
        s.add(Item(**item.model_dump()))  # the same evidence item again
        s.flush()
    text = str(caught.value)
    assert caught.value.exit_code == 8
    assert "already in the catalog (already ingested)" in text, text
    assert "backup" not in text and "\n" not in text, text
    assert counts(station) == before


# SQLite does not enforce column lengths: PostgreSQL only
@pytest.mark.parametrize("station", ["postgresql"], indirect=True)
def test_a_value_too_long_is_named_and_rolled_back(station: Station) -> None:
    before = counts(station)
    with pytest.raises(CatalogError) as caught, station.session() as s:
        s.add(a_row())
        s.flush()
        s.add(a_row(officer_id="x" * 200))  # the column holds 128; bwc's own check bypassed
        s.flush()
    text = str(caught.value)
    assert "a value is too long for the catalog" in text, text
    assert "shorten it" in text and "backup" not in text, text
    assert counts(station) == before
