"""The dock scanner rescans a mount no more than a tenth of the time (docks.SCAN_DUTY): a camera
of thousands of files was walked every 2 s, and the walk (pure Python, holding the GIL)
starved the workers copying it. A new mount is still walked at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bwc.evidence.station import Station
from bwc.ingest.docks import DockScanner

pytestmark = pytest.mark.integration


def put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - 3600  # old enough to be stable at once
    os.utime(path, (past, past))


def test_a_rescan_waits_for_its_turn_and_a_new_mount_does_not(home: Path, tmp_path: Path) -> None:
    dock = tmp_path / "dock"
    for i in range(200):
        put(dock / "DSJ0001" / "DATA" / f"LOG{i:04d}.TXT", b"x" * (i + 1))
    st = Station.open(home, actor="test-clerk", passphrase=None)
    try:
        scanner = DockScanner(st, [str(dock)], ignore=[], stable_seconds=0.0, profiles=[])
        started = time.monotonic()
        assert len(scanner.scan(time.time(), started)) == 200
        (sess,) = scanner.sessions.values()
        took = sess.next_scan - started
        assert took > 0, "the scan's cost sets the next one"
        # a file added while the mount waits for its turn is found on the next due scan
        put(dock / "DSJ0001" / "DATA" / "LOG9999.TXT", b"late")
        put(dock / "DSJ0002" / "DATA" / "LOG0001.TXT", b"another camera")
        before_due = sess.next_scan - 1e-6
        jobs = scanner.scan(time.time(), before_due)
        assert len(jobs) == 1, "the new camera is walked at once, the busy one waits"
        assert len(scanner.sessions) == 2
        assert len(scanner.scan(time.time(), sess.next_scan)) == 1, "its turn came"
    finally:
        st.engine.dispose()
