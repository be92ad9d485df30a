"""The limits every value bwc stores or works with must respect, and the checks for them.

The catalog's column lengths (bwc/evidence/models.py) are these constants, so a limit cannot
drift from the schema. They are checked here, in bwc, before anything is stored: SQLite
enforces no length at all and PostgreSQL only at the insert (after the object is in the store),
so without this one catalog would keep what the other refuses half-way through an ingest.

Pure: values in, a problem (text) or a value out. Callers turn a problem into their own error
(UsageError naming the option, InputError naming the file and line).
"""

from __future__ import annotations

import math
import unicodedata

from bwc.errors import UsageError

# identifiers people and cameras give: officer, device, case, unit, county, USB serial
ID_MAX = 128
# a station id (and a signing key id)
STATION_ID_MAX = 64
# a retention class name, an assignment's source
NAME_MAX = 32
# an INTEGER column (PostgreSQL int4): a device clock offset in milliseconds
INT32_MAX = 2**31 - 1
# a BIGINT column (SQLite's INTEGER too): a file's mtime in nanoseconds since 1970
INT64_MAX = 2**63 - 1

# Durations given in seconds (settings, --max-gap and the like): finite, >= 0, and at most
# a year; more is a typo, and overflows waits and time arithmetic.
SECONDS_MAX = 366 * 86_400.0
# Worker threads: more than this only thrashes the machine (and a typo of 10**6 would start
# a million threads).
DAEMON_WORKERS_MAX = 64
VERIFY_WORKERS_MAX = 256
# Years a month or time given by a person may name: the audit's months and every time that
# is converted between zones must stay inside datetime's range (years 1-9999) after the
# conversion, and footage predates no camera.
YEAR_MIN = 1970
YEAR_MAX = 9998
# A retention period (a class in bwc.toml): longer is "permanent", and past year 9999 there
# is no date to keep it until.
RETENTION_MONTHS_MAX = 12 * 1000


def stored_ns(ns: int) -> int:
    """A file time in nanoseconds as the catalog can hold it: one set past 2262 (or before
    1677) by a device clock is kept as the nearest it can (it only tells whether a file
    changed; the bytes' hash says what it is). Stored as it was, it failed the whole scan."""
    return max(-INT64_MAX - 1, min(ns, INT64_MAX))


def text_problem(value: str, max_len: int = ID_MAX) -> str | None:
    """What is wrong with an identifier (empty, too long, a control character or bytes that
    are not UTF-8), or None. Lengths count characters, as PostgreSQL's varchar does."""
    if not value.strip():
        return "is empty"
    if len(value) > max_len:
        return f"is {len(value)} characters long (at most {max_len})"
    for ch in value:
        cat = unicodedata.category(ch)
        if cat == "Cc":
            return f"contains a control character ({ch!r})"
        if cat == "Cs":  # a name's bytes that are not UTF-8 (os.fsdecode's surrogates)
            return "contains bytes that are not UTF-8 text"
    return None


def seconds_problem(value: float) -> str | None:
    """What is wrong with a duration in seconds (NaN, infinite, negative, over a year)."""
    if math.isnan(value) or math.isinf(value):
        return "must be a finite number of seconds"
    if value < 0:
        return "must be a number of seconds >= 0"
    if value > SECONDS_MAX:
        return f"must be at most {SECONDS_MAX:.0f} seconds (366 days)"
    return None


def require_id(value: str, what: str, max_len: int = ID_MAX) -> str:
    """``value`` if it is a valid identifier, else UsageError naming ``what`` (the option or
    argument it came from): checked before anything is stored."""
    problem = text_problem(value, max_len)
    if problem is not None:
        raise UsageError(f"{what} {problem}", hint="nothing was changed")
    return value
