"""The console script's start-up tuning (``bwc.launch``): the collector runs rarely while a
command's code loads, and as usual once the station is open; in any other process (these
tests, a library user) nothing is changed."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bwc import launch


@pytest.mark.unit
def test_loaded_changes_nothing_outside_the_console_script() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    launch.loaded()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


_SCRIPT = """
import gc, sys
from bwc import launch
real = launch.loaded
def loaded():
    print("LOADING", gc.get_threshold(), flush=True)
    real()
    print("LOADED", gc.get_threshold(), gc.get_freeze_count() > 10_000, flush=True)
launch.loaded = loaded
sys.argv = ["bwc", *sys.argv[1:]]
launch.entry()
"""


@pytest.mark.integration
def test_the_console_script_collects_as_usual_once_the_station_is_open(tmp_path: Path) -> None:
    env = os.environ | {"BWC_HOME": str(tmp_path / "home")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    run("init", "--station-id", "st-gc")
    r = run("list", "--json")
    assert f"LOADING {launch._LOADING}" in r.stdout
    # the usual thresholds, and the loaded code frozen (tens of thousands of objects)
    assert f"LOADED {gc.get_threshold()} True" in r.stdout
