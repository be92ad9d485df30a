"""Power-loss trials: the daemon (and, separately, `bwc ingest`) runs with its home (catalog,
keys, spool and local store) on a file system that drops every write not yet made durable
(``lazyfs``), the dock on an ordinary folder. At a random moment the process is killed
(kill -9) and the power cut: all that was not fsynced is gone. The file system is mounted
again and checked: every item the catalog committed is in the store and verifies, the log
verifies, nothing half-committed shows; then the restarted daemon (or `bwc ingest` run
again) finishes the rest, exactly once (DESIGN.md invariants 1-3).

BWC_POWER_TRIALS sets the number of randomized daemon trials (default 2; `make torture`:
40), a quarter as many (at least one) for `bwc ingest`. Each trial's seed is in every
assertion message. The targeted tests below are the durability bugs these trials found.

Needs FUSE 3 (``/dev/fuse``, fuse3, libfuse3, mfusepy): the tests fail, never skip, when it
is missing."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Result, make_clip
from tests.integration import tally
from tests.integration.daemon_util import (
    BWC_EXE,
    Catalog,
    age_tree,
    set_daemon_config,
    sha256_file,
    write_random,
)
from tests.integration.lazyfs import INSTALL_HINT, LazyFS, fuse_missing
from tests.integration.test_daemon_faults import Camera, Trial, _files_of

pytestmark = [pytest.mark.integration, pytest.mark.fault]

TRIALS = int(os.environ.get("BWC_POWER_TRIALS", "2"))
INGEST_TRIALS = max(1, TRIALS // 4)

Runner = Callable[..., Result]


@pytest.fixture
def lazy(tmp_path: Path) -> Iterator[LazyFS]:
    """A lazy file system mounted at ``tmp_path/mnt``, unmounted at the end."""
    why = fuse_missing()
    if why is not None:
        pytest.fail(f"{why}: {INSTALL_HINT}")
    fs = LazyFS(tmp_path / "mnt", tmp_path / "lazyfs.image", tmp_path / "lazyfs.log").mount()
    try:
        yield fs
    finally:
        fs.unmount()


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env["BWC_HOME"] = str(home)
    return env


def _init(home: Path) -> None:
    r = subprocess.run(
        [str(BWC_EXE), "init", "--station-id", "st-power"],
        env=_env(home),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def power_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised home (on an ordinary disk), copied onto the lazy FS for each trial."""
    home = tmp_path_factory.mktemp("power-home") / "home"
    _init(home)
    set_daemon_config(
        home,
        stable_seconds=0.5,
        rescan_seconds=0.2,
        retry_max_seconds=1.0,
        checkpoint_seconds=1.0,
        workers=2,
    )
    return home


@pytest.fixture(scope="module")
def small_camera(tmp_path_factory: pytest.TempPathFactory) -> Camera:
    """10 files: two clips (one also under a second name), small random files (one empty)
    and the id file; old mtimes, so stable at once. Small: the lazy FS runs in Python."""
    base = tmp_path_factory.mktemp("power-camera")
    cam = base / "cam"
    for i in range(2):
        clip = make_clip(base / f"src{i}.mp4", seconds=1.0, tone=500 + 70 * i)
        dst = cam / "DCIM" / "100MEDIA" / f"DSJ0042_110023_202610150{i}3000_{i:04d}.MP4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, dst)
        if i == 0:
            (cam / "DCIM" / "101MEDIA").mkdir(parents=True)
            shutil.copyfile(clip, cam / "DCIM" / "101MEDIA" / "COPY0000.MP4")
    (cam / "GPS").mkdir()
    (cam / "GPS" / "EMPTY.LOG").write_bytes(b"")
    for i, size in enumerate((1, 700, 4096, 65_537, 200_000)):
        write_random(cam / "GPS" / f"GPS{i:04d}.LOG", size, seed=70 + i)
    (cam / "ID.TXT").write_bytes(b"device=DSJ0042\nofficer=110023\n")
    age_tree(cam, 86_400)
    return Camera(cam, _files_of(cam))


class PowerTrial(Trial):
    """A kill -9 trial (``test_daemon_faults.Trial``) whose home is on the lazy FS."""

    def __init__(
        self, base: Path, fs: LazyFS, template_home: Path, camera: Camera, seed: int | str
    ) -> None:
        self.seed = seed
        self.dir = base  # logs, the dock: an ordinary disk
        self.fs = fs
        self.home = fs.mountpoint / "home"
        self.dock = base / "dock"
        self.camera = camera
        shutil.copytree(template_home, self.home)
        fs.sync()  # the home as `bwc init` left it is on the disk
        self.dock.mkdir(parents=True)
        shutil.copytree(camera.root, self.dock / "cam")
        self.cat = Catalog(self.home)
        self.runs = 0

    def states(self) -> Counter[str]:
        try:
            return self.cat.states() if self.cat.path.exists() else Counter()
        except sqlite3.OperationalError:  # the catalog being created
            return Counter()

    def committed_verify(self, bwc: Runner, monkeypatch: pytest.MonkeyPatch, msg: str) -> None:
        """After a power cut, before anything runs again: what the catalog committed is in
        the store and verifies, and so does the log (nothing half-committed shows)."""
        monkeypatch.setenv("BWC_HOME", str(self.home))
        # events appended since the last checkpoint are covered by a new one first (what the
        # restarted daemon does; verify rightly refuses events no checkpoint covers)
        r = bwc("log", "checkpoint")
        assert r.code == 0, f"{msg}: checkpoint after the power cut failed\n{r.out}{r.err}"
        r = bwc("verify", "--all", "--no-record")
        assert r.code == 0, f"{msg}: verify after the power cut failed\n{r.out}{r.err}"
        r = bwc("log", "verify")
        assert r.code == 0, f"{msg}: log verify after the power cut failed\n{r.out}{r.err}"


@pytest.fixture(scope="module")
def power_window(
    tmp_path_factory: pytest.TempPathFactory, power_home: Path, small_camera: Camera
) -> tuple[float, float]:
    """Seconds from the daemon's start to its watching, and from then to every file taken,
    on the lazy FS: the windows the power cuts are spread over."""
    base = tmp_path_factory.mktemp("power-calibrate")
    fs = LazyFS(base / "mnt", base / "lazyfs.image", base / "lazyfs.log")
    why = fuse_missing()
    if why is not None:
        pytest.fail(f"{why}: {INSTALL_HINT}")
    fs.mount()
    try:
        t = PowerTrial(base, fs, power_home, small_camera, "calibrate")
        d = t.start()
        try:
            d.wait_ready()
            ready = time.monotonic()
            t.wait_done(d)
            took = time.monotonic() - ready
            assert d.terminate() == 0, d.log_tail()
        finally:
            d.kill()
    finally:
        fs.unmount()
    shutil.rmtree(base, ignore_errors=True)
    return ready - d.started_at, took


@pytest.mark.parametrize("trial", range(TRIALS))
def test_power_cut_at_a_random_moment(
    trial: int,
    bwc: Runner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lazy: LazyFS,
    power_home: Path,
    small_camera: Camera,
    power_window: tuple[float, float],
) -> None:
    seed = 5000 + trial
    rng = random.Random(seed)
    t = PowerTrial(tmp_path, lazy, power_home, small_camera, seed)
    at: list[str] = []
    notes: list[str] = []
    startup, work = power_window
    d = t.start()
    try:
        # one power cut, sometimes a second one soon after the restart (while resuming);
        # a few while the daemon starts, most while it takes files (the states to cover)
        for n in range(1 + (rng.random() < 0.3)):
            since = "start"
            if rng.random() < 0.15:
                delay = rng.uniform(0.0, startup)
            else:
                d.wait_ready()
                since = "ready"
                delay = rng.uniform(0.0, work * (1.0 if n == 0 else 0.6))
            time.sleep(delay)
            states = t.states()
            d.kill()
            lazy.crash()
            at.append(tally.kill_state(states))
            notes.append(f"power cut {delay:.2f}s after {since}, states {dict(states)}")
            t.committed_verify(bwc, monkeypatch, f"seed {seed} ({'; '.join(notes)})")
            d = t.start()
        t.wait_done(d)
        assert d.terminate() == 0, f"seed {seed}: {d.log_tail()}"
    finally:
        d.kill()
    t.tally("power loss", at)
    t.check(bwc, monkeypatch, "; ".join(notes))


def _ingest(home: Path, camera: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BWC_EXE), "ingest", str(camera)],
        env=_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("trial", range(INGEST_TRIALS))
def test_power_cut_during_bwc_ingest(
    trial: int,
    bwc: Runner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    lazy: LazyFS,
    power_home: Path,
    small_camera: Camera,
) -> None:
    """`bwc ingest` killed and the power cut at a random moment; run again, it takes the
    rest, and every file is one item, stored and verified."""
    seed = 7000 + trial
    rng = random.Random(seed)
    t = PowerTrial(tmp_path, lazy, power_home, small_camera, seed)
    cam = small_camera
    started = time.monotonic()
    first = _ingest(t.home, t.dock / "cam")
    out, _ = first.communicate(timeout=120)
    took = time.monotonic() - started
    assert first.returncode == 0, out.decode(errors="replace")
    # the same again, from a fresh home, cut at a random moment of a run that long
    lazy.unmount()
    lazy.image.unlink(missing_ok=True)
    shutil.rmtree(lazy.mountpoint)
    lazy.mount()
    t = PowerTrial(tmp_path / "again", lazy, power_home, cam, seed)
    delay = rng.uniform(0.0, took)
    proc = _ingest(t.home, t.dock / "cam")
    try:
        time.sleep(delay)
        proc.kill()
        proc.wait()
    finally:
        proc.kill()
    lazy.crash()
    msg = f"seed {seed} (power cut after {delay:.2f}s of a {took:.2f}s ingest)"
    t.committed_verify(bwc, monkeypatch, msg)
    r = subprocess.run(
        [str(BWC_EXE), "ingest", str(t.dock / "cam")],
        env=_env(t.home),
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, f"{msg}: ingest again failed\n{r.stdout}{r.stderr}"
    items = set(t.cat.items())
    stored = {
        p.name
        for p in (t.home / "store" / "objects").rglob("*")
        if p.is_file() and len(p.name) == 64
    }
    ingested = t.cat.count_events("ingested")
    tally.record(
        "power loss",
        files=len(cam.files),
        kills=["bwc ingest"],
        lost=len(cam.distinct - items) + len(cam.distinct - stored),
        duplicated=max(0, ingested - len(cam.distinct)),
    )
    assert items == cam.distinct, f"{msg}: items != distinct contents"
    assert stored == cam.distinct, f"{msg}: store objects != items"
    assert ingested == len(cam.distinct), f"{msg}: {ingested} ingested events"
    spool = t.home / "spool"
    left = sorted(p.name for p in spool.iterdir()) if spool.exists() else []
    assert left == [] or all(n == "jobs" for n in left), f"{msg}: spool left: {left}"
    monkeypatch.setenv("BWC_HOME", str(t.home))
    r2 = bwc("verify", "--all", "--no-record")
    assert r2.code == 0, f"{msg}: verify failed\n{r2.out}{r2.err}"
    assert f"{len(cam.distinct)} of {len(cam.distinct)} items verified" in r2.out, msg
    r2 = bwc("log", "verify")
    assert r2.code == 0, f"{msg}: log verify failed\n{r2.out}{r2.err}"


# ------------------------------------------------------------------------------ the bugs found


def test_a_committed_item_survives_a_power_cut(lazy: LazyFS, tmp_path: Path) -> None:
    """A: the store's fan-out folder (objects/ab/) was never fsynced into objects/: an
    object stored, read back and committed could lose its folder entry in a power cut."""
    from bwc.evidence.stores.local import LocalStore

    store = LocalStore(lazy.mountpoint / "store")
    store.create()
    lazy.sync()
    staged = lazy.mountpoint / "staged.part"
    data = os.urandom(5000)
    staged.write_bytes(data)
    lazy.sync()  # as staging leaves it: durable
    sha = sha256_file(staged)
    store.put_object(sha, staged)
    store.put_meta(sha, "manifest.json", b"{}")
    assert store.read_back(sha).sha256 == sha  # what the commit waits for
    lazy.crash()
    assert store.has_object(sha), "the stored object is gone after the power cut"
    assert store.read_back(sha).sha256 == sha
    assert store.get_meta(sha, "manifest.json") == b"{}"


def test_a_new_home_survives_a_power_cut(
    lazy: LazyFS, bwc: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B: `bwc init` did not sync the home's folders (home, keys, spool, store, the catalog's
    name): a power cut after it said "initialised" could leave no home, or one without its
    key or catalog."""
    home = lazy.mountpoint / "home"
    _init(home)
    lazy.crash()
    for part in ("bwc.toml", "keys/active", "catalog.sqlite", "spool", "store/objects"):
        assert (home / part).exists(), f"{part} is gone after the power cut"
    monkeypatch.setenv("BWC_HOME", str(home))
    r2 = bwc("log", "verify")
    assert r2.code == 0, r2.out + r2.err
    r2 = bwc("keys", "list")
    assert r2.code == 0, r2.out + r2.err


def test_a_power_cut_after_the_daemon_finished(
    lazy: LazyFS,
    tmp_path: Path,
    bwc: Runner,
    monkeypatch: pytest.MonkeyPatch,
    power_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """C: a released job's spool copy was unlinked but the spool folder never synced: after
    a power cut, copies of files long released came back (and stayed, for good)."""
    cam = tmp_path_factory.mktemp("one-file") / "cam"
    write_random(cam / "GPS" / "GPS0001.LOG", 3000, seed=5)
    age_tree(cam, 86_400)
    t = PowerTrial(tmp_path, lazy, power_home, Camera(cam, _files_of(cam)), "released")
    d = t.start()
    try:
        t.wait_done(d)
        assert d.terminate() == 0, d.log_tail()
    finally:
        d.kill()
    lazy.crash()
    t.check(bwc, monkeypatch, "power cut after the daemon stopped")


def test_a_staged_spool_copy_survives_a_power_cut(lazy: LazyFS, tmp_path: Path) -> None:
    """D: staging fsynced the spool copy but not the spool folder: a job saved as `staged`
    could find its spool copy gone after a power cut (and sign a manifest without its media
    summary, the probe finding no file)."""
    from bwc.ingest.discover import Candidate
    from bwc.ingest.stage import stage

    cam = tmp_path / "cam"
    write_random(cam / "A.MP4", 70_000, seed=9)
    spool = lazy.mountpoint / "spool" / "jobs"
    spool.mkdir(parents=True)
    lazy.sync()
    cand = Candidate(path=os.fsencode(cam / "A.MP4"), rel=b"A.MP4", root=os.fsencode(cam))
    staged = stage(cand, spool, dest=spool / "1.part", durable=True)
    lazy.crash()
    assert (spool / "1.part").exists(), "the staged spool copy is gone after the power cut"
    assert sha256_file(spool / "1.part") == staged.digest.sha256


def test_a_power_cut_is_simulated(lazy: LazyFS) -> None:
    """The lazy FS itself: what was fsynced survives a power cut, what was not is gone."""
    root = lazy.mountpoint
    (root / "kept").mkdir()
    fd = os.open(root / "kept" / "synced", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"durable")
    os.fsync(fd)
    os.close(fd)
    (root / "kept" / "unsynced").write_bytes(b"lost")
    for d in (root, root / "kept"):
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
    (root / "kept" / "synced").rename(root / "kept" / "renamed")  # rename: not durable
    (root / "gone").mkdir()
    lazy.crash()
    assert sorted(os.listdir(root)) == ["kept"]
    assert (root / "kept" / "synced").read_bytes() == b"durable"
    assert (root / "kept" / "unsynced").read_bytes() == b""  # its name durable, never its data
    assert not (root / "kept" / "renamed").exists()


def test_a_quarantined_object_survives_a_power_cut(lazy: LazyFS) -> None:
    """E: an object that did not hold its name's bytes was moved to quarantine/ (kept for
    whoever looks into it) without syncing quarantine/: after a power cut it was gone,
    while the good object that replaced it stayed."""
    from bwc.evidence.stores.local import LocalStore

    store = LocalStore(lazy.mountpoint / "store")
    store.create()
    good = os.urandom(3000)
    staged = lazy.mountpoint / "staged.part"
    staged.write_bytes(good)
    sha = sha256_file(staged)
    bad = store.object_path(sha)
    bad.parent.mkdir()
    bad.write_bytes(b"not these bytes")  # a damaged copy from an earlier run
    lazy.sync()
    store.put_object(sha, staged)
    lazy.crash()
    assert store.read_back(sha).sha256 == sha
    kept = list((lazy.mountpoint / "store" / "quarantine").iterdir())
    assert [p.read_bytes() for p in kept] == [b"not these bytes"], kept
