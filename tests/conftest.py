"""Shared fixtures: a scrubbed environment, a fresh home per test, ffmpeg-made clips, and an
in-process runner for the `bwc` CLI."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bwc import cli
from tests.tsa import tsa, tsa_pki  # noqa: F401 (fixtures: a local RFC 3161 TSA)

VECTORS = Path(__file__).resolve().parent / "vectors"
_TALLY_KEY = pytest.StashKey[Path]()


@pytest.fixture(autouse=True)
def _scrubbed_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith("BWC_") and key != "BWC_TEST_PG":
            monkeypatch.delenv(key)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("BWC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BWC_ACTOR", "test-clerk")
    yield
    cli._state.clear()


@pytest.fixture(autouse=True)
def _signals_restored() -> Iterator[None]:
    """A test that leaves SIGINT ignored or blocked in the worker passes that on, through
    exec, to every later subprocess (a `bwc ingest` that then ignores Ctrl-C): name it."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    now = signal.getsignal(signal.SIGINT)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    if now is not handler or signal.SIGINT in blocked:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        pytest.fail(f"the test left SIGINT changed: handler {now!r}, blocked {sorted(blocked)}")


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def bwc(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run the CLI in-process: ``bwc("verify", "--all")`` -> Result(code, out, err)."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = 0
        try:
            cli.main([str(a) for a in args])
        except SystemExit as e:
            code = int(e.code or 0)
        captured = capsys.readouterr()
        cli._state.clear()
        return Result(code, captured.out, captured.err)

    return run


def make_clip(
    path: Path,
    *,
    seconds: float = 1.0,
    creation_time: str | None = None,
    tone: int = 440,
    size: str = "160x120",
) -> Path:
    """A small real MP4 from ffmpeg's lavfi sources (video + audio)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate=10:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={tone}:duration={seconds}",
        "-shortest",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
    ]
    if creation_time:
        cmd += ["-metadata", f"creation_time={creation_time}"]
    subprocess.run([*cmd, str(path)], check=True)
    return path


@pytest.fixture(scope="session")
def clip_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed: run `make test`, which installs it")
    d = tmp_path_factory.mktemp("clips")
    for i in range(3):
        make_clip(
            d / f"DSJ0042_110023_2026101509300{i}_000{i}.MP4",
            tone=300 + 100 * i,
            creation_time=f"2026-10-15T01:30:0{i}Z",
        )
    return d


@pytest.fixture
def camera(tmp_path: Path, clip_cache: Path) -> Path:
    """A docked camera folder: three clips, a GPS log and some OS junk."""
    cam = tmp_path / "dock" / "DSJ0042"
    (cam / "DCIM").mkdir(parents=True)
    for clip in sorted(clip_cache.iterdir()):
        shutil.copy(clip, cam / "DCIM" / clip.name)
    (cam / "GPS0001.csv").write_text("time,lat,lon\n2026-10-15T01:31:00Z,31.23,121.47\n")
    (cam / "System Volume Information").mkdir()
    (cam / "System Volume Information" / "IndexerVolumeGuid").write_text("x")
    return cam


# what `bwc init` depends on in a test's environment, as ``_scrubbed_env`` leaves it
_PLAIN_ENV = {"BWC_ACTOR": "test-clerk"}


def _bwc_env() -> dict[str, str]:
    """The BWC_* settings in force (but the home and the PostgreSQL switch of the tests)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith("BWC_") and k not in ("BWC_HOME", "BWC_TEST_PG")
    }


@pytest.fixture(scope="session")
def home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home made by `bwc init --station-id st-test` in the plain test environment, per
    test process, for ``home`` to copy: an init takes ~0.5 s (the catalog's migrations, a
    key, the first checkpoint, each fsynced), a copy ~5 ms, and some 400 tests need one."""
    home = tmp_path_factory.mktemp("home-template") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for key in _bwc_env():
            mp.delenv(key)
        mp.delenv("CREDENTIALS_DIRECTORY", raising=False)
        for key, value in _PLAIN_ENV.items():
            mp.setenv(key, value)
        mp.setenv("BWC_HOME", str(home))
        try:
            cli.main(["init", "--station-id", "st-test"])
        except SystemExit as e:
            assert not e.code, f"bwc init of the template home failed with exit {e.code}"
        finally:
            cli._state.clear()
    return home


@pytest.fixture
def home(request: pytest.FixtureRequest, tmp_path: Path, home_template: Path) -> Path:
    """The test's home (BWC_HOME), initialised as station st-test: a copy of
    ``home_template`` (its files new, not their times copied), or a real `bwc init` when a
    fixture before this one changed a setting init uses (an S3 store, a PostgreSQL
    catalog, a TSA, a passphrase)."""
    home = tmp_path / "home"
    plain = (
        _bwc_env() == _PLAIN_ENV
        and os.environ.get("BWC_HOME") == str(home)
        and "CREDENTIALS_DIRECTORY" not in os.environ
    )
    if plain:
        shutil.copytree(home_template, home, copy_function=shutil.copy)
    else:
        r = request.getfixturevalue("bwc")("init", "--station-id", "st-test")
        assert r.code == 0, r.err
    return home


# ------------------------------------------------------------------------------ the order


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long modules (those with a test marked slow or fault: daemon runs, kill -9 and
    power-loss trials, RGW faults) first, as one xdist group: under `make test` (-n 2
    --dist loadgroup) one worker runs them, one after the other, from the start, while the
    other takes the rest; none of them starts last, and two never compete for the 2 cores
    (their waits are timed). Those on RGW come last in the group, so that the tests before
    them hide the cluster's start (tests/integration/conftest.py)."""

    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    long = {
        module(i) for i in items if i.get_closest_marker("slow") or i.get_closest_marker("fault")
    }
    on_rgw = {module(i) for i in items if "rgw" in i.name}

    def rank(item: pytest.Item) -> int:
        m = module(item)
        return 2 if m not in long else 1 if m in on_rgw else 0

    items.sort(key=rank)  # stable: the order within a rank is pytest's
    for item in items:
        if module(item) in long:
            item.add_marker(pytest.mark.xdist_group("long"))


# ------------------------------------------------------------------------------ the fault tally


def pytest_configure(config: pytest.Config) -> None:
    """The controlling process (not an xdist worker) makes the file the fault trials append
    their tally to; the workers, started later, inherit its name."""
    from tests.integration import tally

    if hasattr(config, "workerinput"):
        return
    fd, path = tempfile.mkstemp(prefix="bwc-tally-", suffix=".jsonl")
    os.close(fd)
    os.environ[tally.ENV] = path
    config.stash[_TALLY_KEY] = Path(path)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from tests.integration import tally

    path = config.stash.get(_TALLY_KEY, None)
    if path is None:
        return
    lines = tally.summary(path)
    path.unlink(missing_ok=True)
    if lines:
        terminalreporter.section("fault trials")
        for line in lines:
            terminalreporter.write_line(line)
