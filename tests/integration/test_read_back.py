"""One behaviour on a read-back mismatch, in `bwc ingest` and in the daemon's jobs (the
shared ingest steps): nothing is committed, the source is left untouched, and the file is
copied from it again (by the daemon itself; by running `bwc ingest` again)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bwc.evidence.fingerprint import Digest
from bwc.evidence.models import Event, IngestJob, Item
from bwc.evidence.station import Station
from bwc.ingest.docks import DockScanner
from bwc.ingest.jobs import JobRunner, RunnerConfig
from bwc.ingest.pipeline import Attribution, Ingester
from bwc.ingest.probe import MediaSummary
from bwc.ingest.profiles import station_profiles
from bwc.ingest.steps import ReadBackMismatch, ledger_lookup

pytestmark = pytest.mark.integration


class NoMedia:
    def probe(self, path: Path) -> MediaSummary | None:
        return None


class BadReadBack:
    """The station's real store, whose first ``bad`` read-backs see other bytes (a medium
    that lies, or bit rot between write and read)."""

    def __init__(self, store: object, bad: int) -> None:
        self._store = store
        self.bad = bad

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def read_back(self, sha256: str) -> Digest:
        d: Digest = self._store.read_back(sha256)  # type: ignore[attr-defined]
        if self.bad:
            self.bad -= 1
            return Digest("0" * 64, d.size)
        return d


def _station(home: Path, bad: int) -> Station:
    st = Station.open(home, actor="test-clerk", passphrase=None)
    st.store = BadReadBack(st.store, bad)  # type: ignore[assignment]
    return st


def _counts(st: Station) -> tuple[int, int]:
    with Session(st.engine) as s:
        items = len(list(s.exec(select(Item))))
        ingested = len(list(s.exec(select(Event).where(Event.kind == "ingested"))))
    return items, ingested


def test_ingest_commits_nothing_and_says_so(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "cam" / "NOTE0001.TXT"
    src.parent.mkdir()
    src.write_bytes(b"officer's note\n")
    st = _station(home, bad=1)
    try:
        rep = Ingester(st, NoMedia(), Attribution(None, None)).run([src])
        (r,) = rep.results
        assert r.status == "error" and "read-back" in (r.reason or "")
        assert _counts(st) == (0, 0)
        assert src.read_bytes() == b"officer's note\n"
        # run again (the medium behaves now): taken, once
        rep = Ingester(st, NoMedia(), Attribution(None, None)).run([src])
        assert [x.status for x in rep.results] == ["ingested"]
        assert _counts(st) == (1, 1)
    finally:
        st.engine.dispose()


def test_daemon_job_copies_the_file_again(home: Path, tmp_path: Path) -> None:
    dock = tmp_path / "dock"
    cam = dock / "DSJ0042"
    (cam / "DCIM").mkdir(parents=True)
    clip = cam / "DCIM" / "DSJ0042_110023_20261015093001_0001.MP4"
    clip.write_bytes(os.urandom(5000))
    past = time.time() - 3600
    os.utime(clip, (past, past))
    st = _station(home, bad=1)
    try:
        profiles = station_profiles(st.settings)
        scanner = DockScanner(
            st, [str(dock)], ignore=st.settings.ignore, stable_seconds=0.0, profiles=profiles
        )
        seen: list[str] = []
        runner = JobRunner(
            st,
            NoMedia(),
            profiles,
            ledger_lookup(st.engine),
            RunnerConfig(),
            on_event=lambda kind, _d: seen.append(kind),
        )
        (job,) = scanner.scan(time.time(), time.monotonic())
        assert runner.advance(job) == "released"
        assert "read-back-mismatch" in seen
        with Session(st.engine) as s:
            row = s.get(IngestJob, job)
            assert row is not None and row.outcome == "ingested"
        assert _counts(st) == (1, 1)
        assert clip.exists()
    finally:
        st.engine.dispose()


def test_the_mismatch_is_a_store_error() -> None:
    from bwc.errors import StoreError

    assert issubclass(ReadBackMismatch, StoreError)
