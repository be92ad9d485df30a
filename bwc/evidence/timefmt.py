"""UTC time values: one textual form everywhere (RFC 3339, 'Z', microseconds when present);
and one form for people: local time in the configured zone with its offset (``format_local``).

Also the Clock protocol: core logic never calls ``datetime.now()``; a clock is passed in.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from bwc.config.limits import YEAR_MAX, YEAR_MIN

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OutOfRange(ValueError):
    """A well-formed time outside what bwc accepts (or datetime can convert)."""


def ensure_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: all bwc times must carry a time zone")
    try:
        return dt.astimezone(UTC)
    except OverflowError as e:  # 0001-01-01 east of UTC, 9999-12-31 west of it
        raise OutOfRange(f"{dt.isoformat()} is out of range in UTC") from e


def format_utc(dt: datetime) -> str:
    """RFC 3339 in UTC with a 'Z'; microseconds only when non-zero."""
    dt = ensure_utc(dt)
    # isoformat, not strftime: strftime drops leading zeros of years before 1000 on glibc,
    # and a device clock can be set to anything.
    text = dt.replace(tzinfo=None).isoformat(
        timespec="microseconds" if dt.microsecond else "seconds"
    )
    return text + "Z"


def format_offset(offset: timedelta | None) -> str:
    """'+08:00', '-05:00', '+00:00'; seconds only for the odd historical zone that has them."""
    secs = int((offset or timedelta()).total_seconds())
    sign = "-" if secs < 0 else "+"
    h, rest = divmod(abs(secs), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


def to_local(dt: datetime, tz: tzinfo) -> datetime:
    """``dt`` in ``tz``; in UTC when the zone's offset would leave datetime's range (a device
    clock set to 0001-01-01 or 9999-12-31): still a true time, with its own offset."""
    dt = ensure_utc(dt)
    try:
        return dt.astimezone(tz)
    except OverflowError:
        return dt


def format_local(dt: datetime, tz: tzinfo, *, seconds: bool = True, offset: bool = True) -> str:
    """A time for people: '2026-10-15 09:30:00 +08:00' in the configured zone ``tz``.
    ``seconds=False`` drops the seconds, ``offset=False`` the offset (for a table whose
    header states it, see ``common_offset``). Machine output (JSON) stays ``format_utc``."""
    local = to_local(dt, tz)
    # isoformat, not strftime: see format_utc
    text = local.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    if not seconds:
        text = text[:-3]
    return f"{text} {format_offset(local.utcoffset())}" if offset else text


def common_offset(times: list[datetime], tz: tzinfo) -> str | None:
    """The one offset of ``tz`` at all of ``times`` ('+08:00'); None when they differ
    (daylight saving) or there are none: a table states the offset once in its header only
    when it is true for every row."""
    offsets = {format_offset(to_local(t, tz).utcoffset()) for t in times}
    return offsets.pop() if len(offsets) == 1 else None


def zone_label(tz: tzinfo, at: datetime) -> str:
    """'Asia/Shanghai (UTC+08:00)': the configured zone, named and with its offset at ``at``."""
    return f"{tz} (UTC{format_offset(to_local(at, tz).utcoffset())})"


def parse_utc(text: str) -> datetime:
    """Parse an RFC 3339 date-time with an explicit offset or 'Z'; returns UTC. Dates alone
    and times without a zone are refused (ValueError)."""
    if not _RFC3339.match(text):
        raise ValueError(f"not an RFC 3339 time with a zone: {text!r}")
    dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return ensure_utc(dt)


def parse_local(text: str, tz: tzinfo) -> datetime:
    """ISO 8601 date-time; without an offset it is in ``tz`` (the configured local zone).
    A date alone means its midnight. Returns UTC; ValueError when unreadable."""
    text = text.strip()
    if not text:
        raise ValueError("empty time")
    dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    if not YEAR_MIN <= dt.year <= YEAR_MAX:  # a typo, and far from datetime's edges
        raise OutOfRange(f"the year must be from {YEAR_MIN} to {YEAR_MAX}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return ensure_utc(dt)


_OFFSET_RE = re.compile(r"^([+-])?((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)$")
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_offset_ms(text: str) -> int:
    """A clock offset like '+12s', '-1m30s', '+800ms', '-2.5s' in milliseconds."""
    m = _OFFSET_RE.match(text.strip().replace(" ", ""))
    if not m:
        raise ValueError(f"not a clock offset: {text!r} (examples: +12s, -1m30s, +800ms)")
    total = sum(float(n) * _UNIT_MS[u] for n, u in _PART_RE.findall(m.group(2)))
    if not math.isfinite(total):  # hundreds of digits: no offset, and round() would fail
        raise ValueError(f"not a clock offset: {text!r} is too large")
    return round(-total if m.group(1) == "-" else total)
