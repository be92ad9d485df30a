"""Fault injection: `kill -9` the docking-station daemon at random moments while it takes a
camera's files, restart it, and check that every file is committed exactly once, nothing is
left half-done, and everything verifies (DESIGN.md invariants 1-3).

BWC_FAULT_TRIALS sets the number of randomized trials (default 8, as in `make test`; `make
torture`: 200). Each trial has its own seed, printed in every assertion message, so a
failure can be replayed:
``BWC_FAULT_TRIALS=20 pytest -m fault -k 'random_moment and 17'``."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result, make_clip
from tests.integration import tally
from tests.integration.daemon_util import (
    BWC_EXE,
    Catalog,
    DaemonProcess,
    age_tree,
    set_daemon_config,
    sha256_file,
    wait_until,
    write_random,
)

pytestmark = [pytest.mark.integration, pytest.mark.fault]

# 8 in `make test` (each ~5-10 s on 2 cores; they spread over start-up, staging, signing,
# storing and release), 200 in `make torture`
TRIALS = int(os.environ.get("BWC_FAULT_TRIALS", "8"))
BIG = 200 << 20

Runner = Callable[..., Result]


@dataclass(frozen=True)
class Camera:
    root: Path  # the camera folder to copy into a dock
    files: dict[bytes, str]  # rel path -> sha256

    @property
    def distinct(self) -> set[str]:
        return set(self.files.values())


def _files_of(root: Path) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    broot = os.fsencode(root)
    for dirpath, _dirs, names in os.walk(broot):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, broot)] = sha256_file(p)
    return out


@pytest.fixture(scope="module")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised home, copied for every trial (a `bwc init` costs a process start)."""
    home = tmp_path_factory.mktemp("fault-home") / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env["BWC_HOME"] = str(home)
    r = subprocess.run(
        [str(BWC_EXE), "init", "--station-id", "st-fault"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    set_daemon_config(
        home,
        stable_seconds=0.5,
        rescan_seconds=0.2,
        retry_max_seconds=1.0,
        checkpoint_seconds=1.0,
        workers=2,  # the default; more workers make the same-bytes race (see test_daemon) likely
    )
    return home


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Camera:
    """~30 files: clips, some of them under two names (same bytes), and small random files
    of varied sizes (one empty); all with old mtimes, so stable at once."""
    base = tmp_path_factory.mktemp("fault-camera")
    cam = base / "cam"
    rng = random.Random(20261015)
    for i in range(5):
        clip = make_clip(base / f"src{i}.mp4", seconds=1.0, tone=300 + 60 * i)
        name = f"DSJ0042_110023_202610150{i}3000_{i:04d}.MP4"
        dst = cam / "DCIM" / "100MEDIA" / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, dst)
        if i < 4:  # the same bytes again under another name
            copy = cam / "DCIM" / "101MEDIA" / f"COPY{i:04d}.MP4"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip, copy)
    (cam / "GPS").mkdir()
    (cam / "GPS" / "EMPTY.LOG").write_bytes(b"")
    for i in range(20):
        size = rng.choice([1, 100, 4096, 65_537, 300_000]) + rng.randrange(5000)
        write_random(cam / "GPS" / f"GPS{i:04d}.LOG", size, seed=i)
    (cam / "ID.TXT").write_bytes(b"device=DSJ0042\nofficer=110023\n")
    age_tree(cam, 86_400)
    files = _files_of(cam)
    assert 28 <= len(files) <= 32
    return Camera(cam, files)


@pytest.fixture(scope="module")
def big_camera(tmp_path_factory: pytest.TempPathFactory, camera: Camera) -> Camera:
    cam = tmp_path_factory.mktemp("fault-big") / "cam"
    write_random(cam / "DCIM" / "100MEDIA" / "BIG00001.MP4", BIG, seed=99)
    for rel in list(camera.files)[:5]:
        src = os.path.join(os.fsencode(camera.root), rel)
        dst = os.path.join(os.fsencode(cam), rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    age_tree(cam, 86_400)
    return Camera(cam, _files_of(cam))


class Trial:
    def __init__(self, base: Path, template_home: Path, camera: Camera, seed: int | str) -> None:
        self.seed = seed
        self.dir = base / f"trial-{seed}"
        self.home = self.dir / "home"
        self.dock = self.dir / "dock"
        self.camera = camera
        shutil.copytree(template_home, self.home)
        self.dock.mkdir()
        shutil.copytree(camera.root, self.dock / "cam")  # copy2: mtimes kept
        self.cat = Catalog(self.home)
        self.runs = 0

    def start(self) -> DaemonProcess:
        self.runs += 1
        return DaemonProcess(self.home, [self.dock], self.dir / "daemon.log").start()

    def done(self) -> bool:
        return len(self.cat.jobs()) >= len(self.camera.files) and self.cat.active() == 0

    def wait_done(self, d: DaemonProcess, timeout: float = 90.0) -> None:
        d.wait_ready()
        wait_until(
            self.done,
            timeout,
            f"seed {self.seed}: every file taken",
            daemon=d,
            interval=0.05,
            detail=lambda: str(self.cat.states()),
        )

    def tally(self, kind: str, kills: list[str]) -> None:
        """Count the trial (``tally``): contents not committed as an item or not in the
        store are lost; a second item, ``ingested`` event or job for one file duplicated."""
        jobs = self.cat.jobs()
        stored = {
            p.name
            for p in (self.home / "store" / "objects").rglob("*")
            if p.is_file() and len(p.name) == 64
        }
        lost = len(self.camera.distinct - set(self.cat.items())) + len(
            self.camera.distinct - stored
        )
        per_rel = Counter(j.rel for j in jobs)
        duplicated = max(0, self.cat.count_events("ingested") - len(self.camera.distinct)) + sum(
            n - 1 for n in per_rel.values()
        )
        tally.record(
            kind, files=len(self.camera.files), kills=kills, lost=lost, duplicated=duplicated
        )

    def check(self, bwc: Runner, monkeypatch: pytest.MonkeyPatch, note: str) -> None:
        cat, cam = self.cat, self.camera
        msg = f"seed {self.seed} ({note})"
        jobs = cat.jobs()
        assert cat.active() == 0, f"{msg}: jobs left active: {cat.states()}"
        assert cat.states() == {"released": len(cam.files)}, f"{msg}: {cat.states()}"
        per_rel = Counter(j.rel for j in jobs)
        assert set(per_rel) == set(cam.files), f"{msg}: jobs for {set(per_rel) ^ set(cam.files)}"
        assert max(per_rel.values()) == 1, f"{msg}: several jobs for one file: {per_rel}"
        for j in jobs:
            assert j.sha256 == cam.files[j.rel], f"{msg}: {j.rel!r} hashed wrong"
        items = cat.items()
        assert set(items) == cam.distinct, f"{msg}: items != distinct contents"
        assert cat.item_count() == len(cam.distinct)
        # exactly once in the log too: one `ingested` per item, a sighting per duplicate
        assert cat.count_events("ingested") == len(cam.distinct), msg
        assert cat.count_events("seen-again") == len(cam.files) - len(cam.distinct), msg
        outcomes = Counter(j.outcome for j in jobs)
        expected = Counter(
            {"ingested": len(cam.distinct), "seen-again": len(cam.files) - len(cam.distinct)}
        )
        assert outcomes == expected, f"{msg}: {outcomes}"
        spool = self.home / "spool" / "jobs"
        left = sorted(p.name for p in spool.iterdir()) if spool.exists() else []
        assert left == [], f"{msg}: spool not empty: {left}"
        objects = {
            p.name
            for p in (self.home / "store" / "objects").rglob("*")
            if p.is_file() and len(p.name) == 64
        }
        assert objects == cam.distinct, f"{msg}: store objects != items"
        monkeypatch.setenv("BWC_HOME", str(self.home))
        r = bwc("verify", "--all", "--no-record")
        assert r.code == 0, f"{msg}: verify failed\n{r.out}{r.err}"
        assert f"{len(cam.distinct)} of {len(cam.distinct)} items verified" in r.out, msg
        r = bwc("log", "verify")
        assert r.code == 0, f"{msg}: log verify failed\n{r.out}{r.err}"

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def full_ingest_seconds(
    tmp_path_factory: pytest.TempPathFactory, template_home: Path, camera: Camera
) -> float:
    """How long an undisturbed run takes, from process start to every file taken: the
    window the kills are spread over."""
    t = Trial(tmp_path_factory.mktemp("fault-calibrate"), template_home, camera, "calibrate")
    d = t.start()
    try:
        t.wait_done(d)
        took = time.monotonic() - d.started_at
        assert d.terminate() == 0, d.log_tail()
    finally:
        d.kill()
    assert t.cat.states() == {"released": len(camera.files)}
    t.cleanup()
    return took


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_9_at_a_random_moment(
    trial: int,
    bwc: Runner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    template_home: Path,
    camera: Camera,
    full_ingest_seconds: float,
) -> None:
    seed = 1000 + trial
    rng = random.Random(seed)
    t = Trial(tmp_path, template_home, camera, seed)
    kills: list[str] = []
    at: list[str] = []  # the daemon's state at each kill, for the tally
    d = t.start()
    try:
        # one kill, sometimes a second one soon after the restart (a crash while resuming)
        for n in range(1 + (rng.random() < 0.3)):
            window = full_ingest_seconds * (1.0 if n == 0 else 0.6)
            delay = rng.uniform(0.0, window)
            time.sleep(delay)
            states = t.cat.states() if t.cat.path.exists() else Counter()
            d.kill()
            at.append(tally.kill_state(states))
            kills.append(f"kill -9 after {delay:.2f}s, states {dict(states)}")
            d = t.start()
        t.wait_done(d)
        assert d.terminate() == 0, f"seed {seed}: {d.log_tail()}"
    finally:
        d.kill()
    t.tally("kill -9", at)
    t.check(bwc, monkeypatch, "; ".join(kills))
    t.cleanup()


def test_kill_9_during_a_large_copy(
    bwc: Runner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    template_home: Path,
    big_camera: Camera,
) -> None:
    """Killed while the 200 MB file is half copied into the spool: the partial spool file is
    overwritten on restart, never stored or committed."""
    t = Trial(tmp_path, template_home, big_camera, "big")
    spool = t.home / "spool" / "jobs"

    def half_copied() -> tuple[Path, int] | None:
        for p in spool.glob("*.part") if spool.is_dir() else []:
            try:
                size = p.stat().st_size
            except FileNotFoundError:
                continue
            if (16 << 20) < size < BIG - (32 << 20):
                return p, size
        return None

    d = t.start()
    try:
        part, size = wait_until(half_copied, 60, "the big copy", daemon=d, interval=0.005)
        d.kill()
        assert part.exists() and part.stat().st_size < BIG, "no partial spool file to resume"
        big = [j for j in t.cat.jobs() if j.rel.endswith(b"BIG00001.MP4")]
        assert [j.state for j in big] == ["discovered"], big
        assert t.cat.item_count() < len(big_camera.distinct)
        d = t.start()
        t.wait_done(d, timeout=180)
        assert d.terminate() == 0, d.log_tail()
    finally:
        d.kill()
    t.tally("kill -9", ["discovered"])  # mid-copy: the job is still `discovered`
    t.check(bwc, monkeypatch, f"killed with {size} of {BIG} bytes in {part.name}")
    t.cleanup()
