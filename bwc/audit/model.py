"""Plain values the audit works on: rules, the audited month, officers, cases, clips, the
device ledger and clock measurements. No I/O here.

Times inside the engine are integers: milliseconds since the Unix epoch, UTC ("ms"). Integer
arithmetic keeps coverage exact and lets the catalog hand over times without building
millions of ``datetime`` objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bwc.config import limits
from bwc.errors import InputError, UsageError

SECOND_MS = 1000
HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AuditInputError(InputError):
    """Audit input (an import file, or rows in the catalog) is malformed. Exit code 6."""


def to_ms(dt: datetime) -> int:
    """A timezone-aware datetime as integer epoch milliseconds (microseconds rounded half
    up, the same rounding SQLite applies when the catalog converts stored times)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: all bwc times must carry a time zone")
    delta = dt - _EPOCH
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (us + 500) // 1000


def from_ms(ms: int) -> datetime:
    from datetime import timedelta

    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True)
class Rules:
    """The coverage rules (DESIGN/issue 5). Every report prints the values it used."""

    max_gap_ms: int = 5 * SECOND_MS
    start_grace_ms: int = 60 * SECOND_MS
    end_grace_ms: int = 60 * SECOND_MS
    upload_limit_ms: int = 24 * HOUR_MS

    def __post_init__(self) -> None:
        for name in ("max_gap_ms", "start_grace_ms", "end_grace_ms", "upload_limit_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def graces(self, length_ms: int) -> tuple[int, int]:
        """The start and end grace for a case ``length_ms`` long: the configured ones, but at
        most a quarter of the case each (rounded down to the ms), so that "full" always needs
        at least the middle half of the case recorded (issue 15: a 10 s case was "full" with
        3 s of footage under a 60 s grace)."""
        quarter = length_ms // 4
        return min(self.start_grace_ms, quarter), min(self.end_grace_ms, quarter)

    def as_dict(self) -> dict[str, float]:
        """The rules in the units people configure them in (seconds, hours)."""
        return {
            "max_gap_s": self.max_gap_ms / SECOND_MS,
            "start_grace_s": self.start_grace_ms / SECOND_MS,
            "end_grace_s": self.end_grace_ms / SECOND_MS,
            "upload_limit_h": self.upload_limit_ms / HOUR_MS,
        }


@dataclass(frozen=True)
class Targets:
    """What the bureau aims for (fractions, 1.0 = 100 %): the full-process recording rate
    and the on-time import rate. Reports draw a line at them and colour by distance."""

    full_rate: float = 1.0
    on_time_rate: float = 1.0


def band(value: float | None, target: float) -> str:
    """How far a rate is from its target, for colours: "met" (at or above), "near" (within
    5 points), "below" (within 15), "far" (further); "none" when there is no rate. The
    bands are percentage points below the target, so a 95 % target is judged like 100 %."""
    if value is None:
        return "none"
    short = round((target - value) * 100, 6)  # points; rounding keeps 0.95 vs 95 % exact
    if short <= 0:
        return "met"
    if short <= 5:
        return "near"
    if short <= 15:
        return "below"
    return "far"


_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise UsageError(f"unknown time zone {name!r}", hint="use an IANA name") from e


@dataclass(frozen=True)
class Period:
    """A calendar month in a time zone: [first midnight, next month's first midnight)."""

    year: int
    month: int
    tz: str

    @classmethod
    def parse(cls, text: str, tz: str) -> Period:
        m = _MONTH_RE.match(text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise UsageError(f"--month {text!r} is not a month like 2026-10")
        # its bounds in UTC, and the next month's, must exist (9999-12 has no next month)
        if not limits.YEAR_MIN <= int(m.group(1)) <= limits.YEAR_MAX:
            raise UsageError(
                f"--month {text!r}: the year must be from {limits.YEAR_MIN} to {limits.YEAR_MAX}"
            )
        zone(tz)
        return cls(int(m.group(1)), int(m.group(2)), tz)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def bounds(self) -> tuple[datetime, datetime]:
        z = zone(self.tz)
        start = datetime(self.year, self.month, 1, tzinfo=z)
        ny, nm = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        end = datetime(ny, nm, 1, tzinfo=z)
        return start.astimezone(UTC), end.astimezone(UTC)

    def bounds_ms(self) -> tuple[int, int]:
        a, b = self.bounds()
        return to_ms(a), to_ms(b)

    def previous(self) -> Period | None:
        """The month before, in the same zone; None before the first year bwc takes."""
        y, m = (self.year - 1, 12) if self.month == 1 else (self.year, self.month - 1)
        return Period(y, m, self.tz) if y >= limits.YEAR_MIN else None


class Officer(NamedTuple):
    officer_id: str
    name: str
    unit: str
    county: str
    frontline: bool
    active: bool = True
    inactive_from: int | None = None  # ms; None with active False: left, date unknown

    def on_staff(self, month_start_ms: int) -> bool:
        """Current staff at some time in a month starting at ``month_start_ms``: active, or
        left after the month began (an officer inactive the whole month is not counted)."""
        return self.active or (
            self.inactive_from is not None and self.inactive_from > month_start_ms
        )


class Case(NamedTuple):
    case_id: str
    category: str
    unit: str
    start: int  # ms
    end: int  # ms
    location: str
    officers: tuple[str, ...]


class Clip(NamedTuple):
    """One evidence item as the audit sees it. ``start``/``end`` are *device* times (as
    recorded; the engine applies the device's clock offset); ``end`` None for items with no
    duration. The engine also accepts plain tuples in this field order (the catalog reader
    yields them, to stay fast on millions of rows)."""

    officer_id: str | None
    device_id: str | None
    start: int
    end: int | None
    ingested: int


ClipRow = tuple[str | None, str | None, int, int | None, int]


class Assignment(NamedTuple):
    officer_id: str
    device_id: str
    start: int
    end: int | None  # None: still held


class ClockMeasurement(NamedTuple):
    device_id: str
    offset_ms: int  # device time minus true time
    measured_at: int  # ms, true time


Pair = tuple[str, str]  # (case_id, officer_id)
