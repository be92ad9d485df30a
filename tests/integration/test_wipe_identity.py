"""Regression (review issue 12, found beside defect 3): `wipe_after_verify` deleted the camera's
file if its size and mtime were those of the file copied. Another file renamed over it with
the same size and mtime (a copy that keeps times) was then deleted, though never stored. The
source is wiped only if its bytes are the stored item's."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bwc.evidence.station import Station
from bwc.ingest.docks import DockScanner
from bwc.ingest.jobs import JobRunner, RunnerConfig
from bwc.ingest.probe import MediaSummary
from bwc.ingest.profiles import station_profiles
from bwc.ingest.steps import ledger_lookup

pytestmark = pytest.mark.integration


class NoMedia:
    def probe(self, path: Path) -> MediaSummary | None:
        return None


def test_wipe_spares_a_file_renamed_over_the_copied_one(home: Path, tmp_path: Path) -> None:
    cam = tmp_path / "dock" / "DSJ0042"
    (cam / "DCIM").mkdir(parents=True)
    clip = cam / "DCIM" / "DSJ0042_110023_20261015093001_0001.MP4"
    clip.write_bytes(b"a" * 5000)
    past = time.time() - 3600
    os.utime(clip, (past, past))
    other = cam / "other.bin"
    st = Station.open(home, actor="test", passphrase=None)
    try:
        profiles = station_profiles(st.settings)
        scanner = DockScanner(
            st, [str(tmp_path / "dock")], ignore=st.settings.ignore, stable_seconds=0.0,
            profiles=profiles,
        )  # fmt: skip
        (job,) = scanner.scan(time.time(), time.monotonic())

        def on_event(kind: str, _data: object) -> None:
            if kind == "ingested":  # committed; the release (and its wipe) comes next
                copied = clip.stat()
                other.write_bytes(b"b" * 5000)  # never stored: same size ...
                os.utime(other, ns=(copied.st_atime_ns, copied.st_mtime_ns))  # ... same mtime
                os.rename(other, clip)

        runner = JobRunner(
            st, NoMedia(), profiles, ledger_lookup(st.engine),
            RunnerConfig(wipe_after_verify=True), on_event=on_event,
        )  # fmt: skip
        assert runner.advance(job) == "released"
        assert clip.exists(), "a file that was never stored was wiped"
        assert clip.read_bytes() == b"b" * 5000
    finally:
        st.engine.dispose()
