"""Fixtures shared by the integration tests that run the real daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import rgw
from tests.integration.daemon_util import DaemonProcess, StartDaemon


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the Ceph RGW cluster in the background when this process will run a test on
    it (each xdist worker its own): the tests before the first such one hide its start."""
    if any("rgw" in item.name for item in session.items):
        rgw.start_early()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[StartDaemon]:
    """Start ``bwc daemon`` on a home and docks, its log in the test's folder; every daemon
    started is killed at the end of the test."""
    started: list[DaemonProcess] = []

    def start(home: Path, *docks: Path) -> DaemonProcess:
        d = DaemonProcess(home, docks, tmp_path / f"daemon-{len(started)}.log").start()
        started.append(d)
        return d

    yield start
    for d in started:
        d.kill()
