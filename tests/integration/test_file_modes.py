"""Who can read what bwc writes (issue 12, defect 15): whatever the umask, the home and what
is private to the station (catalog and its -wal/-shm, keys, spool, config, state files) are
its owner's only; a local store's evidence is read-only to its owner and group (0440, folders
0750), never readable by other users. `bwc init` on an existing home tightens it and says
what it changed."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.integration.daemon_util import Catalog, DaemonProcess, age_tree, wait_until

pytestmark = pytest.mark.integration

Runner = Callable[..., Result]


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def walk(root: Path) -> Iterator[tuple[Path, bool]]:
    for dirpath, dirs, files in os.walk(root):
        yield Path(dirpath), True
        for name in files:
            yield Path(dirpath) / name, False
        dirs.sort()


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_every_file_bwc_writes_has_its_mode(
    bwc: Runner, umask: int, tmp_path: Path, camera: Path
) -> None:
    home = tmp_path / "home"
    assert bwc("init", "--station-id", "st-modes").code == 0
    r = bwc("ingest", str(camera))
    assert r.code == 0, r.err
    r = bwc("verify", "--all")  # records its run: spool/runs, records/ in the store
    assert r.code == 0, r.out + r.err
    assert bwc("log", "checkpoint").code == 0
    report = tmp_path / "report.csv"
    r = bwc("audit", "report", "--month", "2026-10", "--format", "csv", "--out", str(report))
    assert r.code == 0, r.err

    # the daemon (its own process, with the same umask): heartbeat, spool jobs
    dock = tmp_path / "docks"
    (dock / "cam-9").mkdir(parents=True)
    (dock / "cam-9" / "notes.txt").write_bytes(b"a file the daemon takes\n")
    age_tree(dock)
    d = DaemonProcess(home, [dock], tmp_path / "daemon.log").start()
    try:
        cat = Catalog(home)
        wait_until(lambda: cat.count_events("ingested") >= 5, 30, "the daemon's file", daemon=d)
        assert d.terminate() == 0
    finally:
        d.kill()

    store = home / "store"
    problems = []
    assert mode(home) == 0o700
    for p, is_dir in walk(home):
        m = mode(p)
        in_store = p == store or store in p.parents
        if not in_store:
            want = 0o700 if is_dir else 0o600
            if m != want:
                problems.append(f"{p}: {m:04o}, want {want:04o}")
        elif is_dir:
            if m != 0o750:
                problems.append(f"{p}: {m:04o}, want 0750")
        else:
            rel = p.relative_to(store).as_posix()
            replaced = rel == "log/checkpoint" or ".p/" in rel
            want = 0o640 if replaced else 0o440
            if m != want:
                problems.append(f"{p}: {m:04o}, want {want:04o}")
    if mode(report) != 0o600:
        problems.append(f"{report}: {mode(report):04o}, want 0600")
    assert not problems, "\n".join(problems)
    names = {p.name for p, _ in walk(home)}
    assert {"catalog.sqlite", "bwc.toml", "daemon.json"} <= names
    objects = [p for p, d in walk(store / "objects") if not d and len(p.name) == 64]
    assert len(objects) == 5
    assert list((store / "records").rglob("*.json"))
    assert list((store / "log" / "tile").rglob("*"))


def test_init_tightens_an_existing_home(bwc: Runner, home: Path, camera: Path) -> None:
    assert bwc("ingest", str(camera)).code == 0
    obj = next(p for p in (home / "store" / "objects").rglob("*") if len(p.name) == 64)
    key = next((home / "keys").glob("*.pem"))
    loose = {
        home: 0o755,
        home / "bwc.toml": 0o644,
        home / "catalog.sqlite": 0o644,
        home / "keys": 0o755,
        key: 0o644,
        home / "spool": 0o777,
        home / "store": 0o777,
        obj: 0o444,
    }
    for p, m in loose.items():
        os.chmod(p, m)
    r = bwc("init")
    assert r.code == 0, r.err
    want = {
        home: 0o700,
        home / "bwc.toml": 0o600,
        home / "catalog.sqlite": 0o600,
        home / "keys": 0o700,
        key: 0o600,
        home / "spool": 0o700,
        home / "store": 0o750,
        obj: 0o440,
    }
    for p, m in want.items():
        assert mode(p) == m, f"{p}: {mode(p):04o}, want {m:04o}"
        assert f"{p}: {loose[p]:04o} -> {m:04o}" in r.out.replace("\n", ""), r.out
    r = bwc("init")  # nothing left to change: nothing said
    assert "permissions tightened" not in r.out
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
