"""Regression (review issue 12, defect 2): two `bwc ingest` of the same files at once.

Before, the one that committed second died with exit 8 (UNIQUE constraint failed) after it
had replaced the store's manifest and signature with its own, and those items failed
`bwc verify` for good. Now: both exit 0, one item per distinct file with one `ingested`
event and the rest sightings, the store's manifest and signature are the catalog's, and
everything verifies. A store copy of a manifest or signature that is missing, damaged or
another ingest's is put back from the catalog by the next ingest of those bytes."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bwc.evidence.models import Event, Item
from bwc.evidence.station import Station
from tests.integration import pg
from tests.integration.daemon_util import (
    BWC_EXE,
    Catalog,
    DaemonProcess,
    age_tree,
    set_daemon_config,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUNDS = 3


def _card(root: Path, clips: Path) -> dict[str, int]:
    """A camera folder: real clips, small other files, one file twice. -> sha256: copies."""
    rng = random.Random(12)
    (root / "DCIM").mkdir(parents=True)
    for clip in sorted(clips.iterdir()):
        shutil.copy(clip, root / "DCIM" / clip.name)
    for n in range(10):
        (root / "DCIM" / f"NOTE{n:04d}.BIN").write_bytes(rng.randbytes(2000 + 997 * n))
    (root / "COPY").mkdir()
    shutil.copy(root / "DCIM" / "NOTE0003.BIN", root / "COPY" / "NOTE0003.BIN")
    copies: collections.Counter[str] = collections.Counter()
    for p in root.rglob("*"):
        if p.is_file():
            copies[hashlib.sha256(p.read_bytes()).hexdigest()] += 1
    return dict(copies)


def _two_at_once(home: Path, card: Path) -> list[tuple[int, str, str]]:
    env = {**os.environ, "BWC_HOME": str(home)}
    procs = [
        subprocess.Popen(
            [str(BWC_EXE), "ingest", str(card), "--json"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    out = []
    try:
        for p in procs:
            o, e = p.communicate(timeout=180)
            out.append((p.returncode, o, e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


def _check(bwc, home: Path, copies: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    station = Station.open(home, actor="test", passphrase=None)
    with Session(station.engine) as s:
        items = {i.sha256: i for i in s.exec(select(Item))}
        events = [(e.kind, e.item_sha256) for e in s.exec(select(Event))]
    station.engine.dispose()
    assert set(items) == set(copies), "one item per distinct file"
    for sha, n in copies.items():
        kinds = collections.Counter(k for k, i in events if i == sha)
        assert kinds["ingested"] == 1, (sha, kinds)
        assert kinds["seen-again"] == 2 * n - 1, (sha, kinds)
        obj = home / "store" / "objects" / sha[:2]
        assert (obj / f"{sha}.manifest.json").read_bytes() == items[sha].manifest, sha
        assert (obj / f"{sha}.manifest.sig").read_bytes() == items[sha].signature, sha
    r = bwc("--home", home, "verify", "--all")
    assert r.code == 0, r.out + r.err
    r = bwc("--home", home, "log", "verify")
    assert r.code == 0, r.out + r.err


def _race_round(bwc, home: Path, card: Path, copies: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    results = _two_at_once(home, card)
    total = sum(copies.values())
    ingested = seen = 0
    for code, out, err in results:
        assert code == 0, f"exit {code}\n{out}\n{err}"
        data = json.loads(out)
        assert data["errors"] == 0, data
        ingested += data["ingested"]
        seen += data["seen_again"]
    assert ingested == len(copies), results
    assert seen == 2 * total - len(copies), results
    _check(bwc, home, copies)


def test_two_ingests_of_one_card_at_once_sqlite(bwc, tmp_path: Path, clip_cache: Path) -> None:
    copies = _card(tmp_path / "card", clip_cache)
    for n in range(ROUNDS):
        home = tmp_path / f"home{n}"
        r = bwc("--home", home, "init", "--station-id", f"st-{n}")
        assert r.code == 0, r.err
        _race_round(bwc, home, tmp_path / "card", copies)


@pytest.fixture
def pg_home(bwc, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    with pg.databases() as dbs:
        name = dbs.create()
        monkeypatch.setenv("BWC_CATALOG", pg.sqlalchemy_url(name))
        r = bwc("init", "--station-id", "st-pg")
        assert r.code == 0, r.err
        yield tmp_path / "home"


def test_two_ingests_of_one_card_at_once_postgres(
    bwc, pg_home: Path, tmp_path: Path, clip_cache: Path
) -> None:
    copies = _card(tmp_path / "card", clip_cache)
    _race_round(bwc, pg_home, tmp_path / "card", copies)


def test_ingest_puts_back_a_damaged_or_missing_manifest(bwc, home: Path, camera: Path) -> None:
    r = bwc("ingest", camera, "--json")
    assert r.code == 0, r.out + r.err
    shas = sorted({x["sha256"] for x in json.loads(r.out)["results"] if x["sha256"]})
    a, b = shas[0], shas[1]
    store = home / "store" / "objects"
    good = {sha: (store / sha[:2] / f"{sha}.manifest.json").read_bytes() for sha in (a, b)}
    # one manifest edited, another item's signature gone
    m = store / a[:2] / f"{a}.manifest.json"
    os.chmod(m, 0o644)
    m.write_bytes(good[a].replace(b'"size":', b'"size":1'))
    (store / b[:2] / f"{b}.manifest.sig").unlink()
    r = bwc("verify", "--all")
    assert r.code == 1, r.out + r.err
    r = bwc("ingest", camera, "--json")
    assert r.code == 0, r.out + r.err
    assert json.loads(r.out)["ingested"] == 0
    assert m.read_bytes() == good[a]
    assert (store / b[:2] / f"{b}.manifest.sig").exists()
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err


def _daemon_settled(cat: Catalog, files: int) -> bool:
    return len(cat.jobs()) >= files and cat.active() == 0


def _store_is_catalog(home: Path) -> None:
    station = Station.open(home, actor="test", passphrase=None)
    with Session(station.engine) as s:
        items = list(s.exec(select(Item)))
    station.engine.dispose()
    for item in items:
        obj = home / "store" / "objects" / item.sha256[:2]
        assert (obj / f"{item.sha256}.manifest.json").read_bytes() == item.manifest
        assert (obj / f"{item.sha256}.manifest.sig").read_bytes() == item.signature


def test_daemon_puts_back_a_damaged_or_missing_manifest(
    bwc, home: Path, tmp_path: Path, clip_cache: Path
) -> None:
    """The daemon's path: a sighting of bytes whose stored manifest was damaged or lost."""
    set_daemon_config(home, stable_seconds=0.5, rescan_seconds=0.2, retry_max_seconds=1.0)
    staging = tmp_path / "staging" / "cam"
    staging.mkdir(parents=True)
    for clip in sorted(clip_cache.iterdir())[:2]:
        shutil.copy(clip, staging / clip.name)
    age_tree(staging)
    r = bwc("ingest", staging, "--json")
    assert r.code == 0, r.out + r.err
    a, b = sorted(x["sha256"] for x in json.loads(r.out)["results"])
    store = home / "store" / "objects"
    m = store / a[:2] / f"{a}.manifest.json"
    os.chmod(m, 0o644)
    m.write_bytes(b"{}")
    (store / b[:2] / f"{b}.manifest.sig").unlink()
    assert bwc("verify", "--all").code == 1

    dock = tmp_path / "dock"
    dock.mkdir()
    d = DaemonProcess(home, [dock], tmp_path / "daemon.log").start()
    try:
        os.rename(staging, dock / "cam")
        cat = Catalog(home)
        wait_until(lambda: _daemon_settled(cat, 2), 60, "the docked files", daemon=d)
        assert {(j.state, j.outcome) for j in cat.jobs()} == {("released", "seen-again")}
        assert d.terminate() == 0
    finally:
        d.kill()
    _store_is_catalog(home)
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err


def test_ingest_beside_the_daemon(bwc, home: Path, tmp_path: Path) -> None:
    """`bwc ingest` of a camera's files while the daemon takes the same camera."""
    set_daemon_config(home, stable_seconds=0.2, rescan_seconds=0.2, retry_max_seconds=1.0)
    dock = tmp_path / "dock"
    cam = dock / "cam"
    cam.mkdir(parents=True)
    rng = random.Random(7)
    for n in range(6):
        (cam / f"F{n:03d}.BIN").write_bytes(rng.randbytes(3000 + 500 * n))
    age_tree(cam)
    d = DaemonProcess(home, [dock], tmp_path / "daemon.log").start()
    try:
        d.wait_ready()
        env = {**os.environ, "BWC_HOME": str(home)}
        p = subprocess.run(
            [str(BWC_EXE), "ingest", str(cam), "--json"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert p.returncode == 0, p.stdout + p.stderr
        cat = Catalog(home)
        wait_until(lambda: _daemon_settled(cat, 6), 60, "the docked files", daemon=d)
        assert cat.item_count() == 6
        assert d.terminate() == 0
    finally:
        d.kill()
    station = Station.open(home, actor="test", passphrase=None)
    with Session(station.engine) as s:
        kinds = collections.Counter(
            (e.kind, e.item_sha256) for e in s.exec(select(Event)) if e.item_sha256
        )
    station.engine.dispose()
    for (kind, _sha), n in kinds.items():
        if kind == "ingested":
            assert n == 1
    assert sum(n for (k, _s), n in kinds.items() if k == "ingested") == 6
    assert sum(n for (k, _s), n in kinds.items() if k == "seen-again") == 6
    _store_is_catalog(home)
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err
