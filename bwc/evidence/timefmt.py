"""UTC time values: one textual form everywhere (RFC 3339, 'Z', microseconds when present).

Also the Clock protocol: core logic never calls ``datetime.now()``; a clock is passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock for tests: returns ``start`` and advances by ``step`` seconds per call."""

    def __init__(self, start: datetime, step: float = 0.0) -> None:
        self._t = start.astimezone(UTC)
        self._step = step

    def now(self) -> datetime:
        from datetime import timedelta

        t = self._t
        self._t = t + timedelta(seconds=self._step)
        return t


def ensure_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: all bwc times must carry a time zone")
    return dt.astimezone(UTC)


def format_utc(dt: datetime) -> str:
    """RFC 3339 in UTC with a 'Z'; microseconds only when non-zero."""
    dt = ensure_utc(dt)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """Parse an RFC 3339 time with an explicit offset or 'Z'; returns UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    return ensure_utc(dt)
