"""Regression (review issue 12, defect 3): `bwc ingest` probes a source path beside its copy.
A file renamed over the path after the probe and before the copy must not get a manifest
whose media summary (duration, resolution, recorded time) is the other file's: the summary
signed is always that of the bytes stored."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from bwc.evidence.station import Station
from bwc.ingest import stage as stage_mod
from bwc.ingest.discover import discover
from bwc.ingest.pipeline import Attribution, Ingester
from bwc.ingest.probe import FFprobe, MediaSummary
from bwc.ingest.stage import ForkedStager, Stager
from tests.conftest import make_clip

pytestmark = pytest.mark.integration


class RenameAfterProbe:
    """The real ffprobe; once it has read ``victim``, ``other`` is renamed over it. The
    source is probed through a descriptor (``/proc/<pid>/fd/<n>``), so the file is known by
    its inode, not its path."""

    def __init__(self, victim: Path, other: Path, done: threading.Event) -> None:
        self.real = FFprobe()
        self.victim, self.other, self.done = victim, other, done
        self.inode = victim.stat().st_ino

    def probe(self, path: Path) -> MediaSummary | None:
        media = self.real.probe(path)
        # ``other`` gone: renamed already (in a ForkedStager's child, whose ``done`` this
        # process does not see); the staged copy probed later may reuse the freed inode
        if path.stat().st_ino == self.inode and not self.done.is_set() and self.other.exists():
            os.rename(self.other, self.victim)
            self.done.set()
        return media


@pytest.mark.parametrize("kind", [Stager, ForkedStager])
def test_file_replaced_between_probe_and_copy(
    bwc, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: type[Stager]
) -> None:
    cam = tmp_path / "cam"
    victim = make_clip(cam / "DCIM" / "CLIP0001.MP4", seconds=1.0, size="160x120")
    other = make_clip(tmp_path / "other.mp4", seconds=2.0, size="320x240", tone=900)
    probed_first = FFprobe().probe(victim)
    assert probed_first is not None and probed_first != FFprobe().probe(other)
    done = threading.Event()
    real_stage = stage_mod.stage

    def stage_after_probe(cand, spool_dir, **kw):  # type: ignore[no-untyped-def]
        # The copy starts only once the probe has read the first file and the other was
        # renamed over it (in a ForkedStager: in its child, which has these patches too).
        assert done.wait(60), "the probe never ran"
        return real_stage(cand, spool_dir, **kw)

    monkeypatch.setattr(stage_mod, "stage", stage_after_probe)
    probe = RenameAfterProbe(victim, other, done)
    station = Station.open(home, actor="test-clerk", passphrase=None)
    found = discover([cam], station.settings.ignore)
    with kind(found.files, station.settings.spool_dir, probe) as stager:
        report = Ingester(station, probe, Attribution(None, None)).run_staged(found, stager)
    assert [r.status for r in report.results] == ["ingested"], report.results
    sha = report.results[0].sha256
    assert sha is not None
    stored = home / "store" / "objects" / sha[:2] / sha
    manifest = json.loads(
        (home / "store" / "objects" / sha[:2] / f"{sha}.manifest.json").read_bytes()
    )
    assert manifest["media"] == FFprobe().probe(stored), "the manifest describes other bytes"
    assert manifest["media"] != probed_first
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
