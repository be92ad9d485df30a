"""A clock for tests (the Clock protocol of bwc.evidence.timefmt): core logic takes its time
from a clock passed in, so tests set it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FixedClock:
    """A clock for tests: returns ``start`` and advances by ``step`` seconds per call."""

    def __init__(self, start: datetime, step: float = 0.0) -> None:
        self._t = start.astimezone(UTC)
        self._step = step

    def now(self) -> datetime:
        t = self._t
        self._t = t + timedelta(seconds=self._step)
        return t
