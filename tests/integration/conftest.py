"""Fixtures shared by the integration tests that run the real daemon."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon_util import DaemonProcess, StartDaemon


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
