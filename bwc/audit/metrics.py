"""Metrics per officer, unit, county and the whole city, from an engine result. Pure.

Definitions (docs/audit.md has the user-facing version):
- cases: case-officer pairs whose case starts in the month; full + partial + none = cases;
  explained counts the non-full pairs with an explanation (they stay partial/none).
- full_rate = full / cases; mean_coverage = mean of the pairs' coverage.
- uploads: items attributed to the officer whose true recorded end falls in the month;
  on_time: ingested at most ``upload_limit`` after that end; p95 upload delay by nearest rank.
- equipage: frontline roster officers who held a device (ledger) at any time in the month or
  have an upload in it from an identified device, over frontline roster officers; only
  current staff (an officer inactive for the whole month is in neither count; their cases
  still count: they did the work).
- no_footage: officers with cases but no recorded second in the month or on their cases.
- outside_cases: recorded time in the month outside all of the officer's own case windows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches

from bwc.audit.engine import AuditResult, OfficerAudit
from bwc.audit.model import Officer
from bwc.errors import UsageError


@dataclass(frozen=True)
class Metrics:
    key: str
    officers: int
    cases: int
    full: int
    partial: int
    none: int
    explained: int
    coverage_sum: float
    uploads: int
    on_time: int
    p95_delay_ms: int | None
    frontline: int
    equipped: int
    no_footage: int
    footage_ms: int
    outside_cases_ms: int
    counties: tuple[str, ...] = ()  # for unit rows: the counties its officers belong to

    @property
    def full_rate(self) -> float | None:
        return self.full / self.cases if self.cases else None

    @property
    def mean_coverage(self) -> float | None:
        return self.coverage_sum / self.cases if self.cases else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.uploads if self.uploads else None

    @property
    def equipage_rate(self) -> float | None:
        return self.equipped / self.frontline if self.frontline else None


def kth_smallest(sorted_lists: Sequence[Sequence[int]], k: int) -> int:
    """The k-th smallest (1-based) value over several sorted lists, by bisection on the
    value: O(lists × log n × log range), no merge of millions of values."""
    lists = [s for s in sorted_lists if s]
    total = sum(len(s) for s in lists)
    if not 1 <= k <= total:
        raise ValueError(f"k={k} out of range 1..{total}")
    lo = min(s[0] for s in lists)
    hi = max(s[-1] for s in lists)
    while lo < hi:
        mid = (lo + hi) // 2
        if sum(bisect_right(s, mid) for s in lists) >= k:
            hi = mid
        else:
            lo = mid + 1
    return lo


def p95(sorted_lists: Sequence[Sequence[int]]) -> int | None:
    """Nearest-rank 95th percentile: the smallest value with at least 95 % at or below it."""
    n = sum(len(s) for s in sorted_lists)
    if n == 0:
        return None
    return kth_smallest(sorted_lists, (95 * n + 99) // 100)


def aggregate(key: str, officers: Sequence[OfficerAudit]) -> Metrics:
    return Metrics(
        key=key,
        officers=len(officers),
        cases=sum(a.cases for a in officers),
        full=sum(a.full for a in officers),
        partial=sum(a.partial for a in officers),
        none=sum(a.none for a in officers),
        explained=sum(a.explained for a in officers),
        coverage_sum=sum(a.coverage_sum for a in officers),
        uploads=sum(a.uploads for a in officers),
        on_time=sum(a.on_time for a in officers),
        p95_delay_ms=p95([a.sorted_delays() for a in officers]),
        frontline=sum(1 for a in officers if a.in_roster and a.frontline and a.on_staff),
        equipped=sum(
            1 for a in officers if a.in_roster and a.frontline and a.on_staff and a.equipped
        ),
        no_footage=sum(1 for a in officers if a.cases and not a.has_footage),
        footage_ms=sum(a.footage_ms for a in officers),
        outside_cases_ms=sum(a.outside_cases_ms for a in officers),
        counties=tuple(sorted({a.county for a in officers})),
    )


def group_by(officers: Iterable[OfficerAudit], key: Callable[[OfficerAudit], str]) -> list[Metrics]:
    groups: dict[str, list[OfficerAudit]] = {}
    for a in officers:
        groups.setdefault(key(a), []).append(a)
    return [aggregate(k, groups[k]) for k in sorted(groups)]


def check_scope(roster: Iterable[Officer], unit: str | None, county: str | None) -> None:
    """A UsageError (exit 2) when ``--unit``/``--county`` select no roster officer: an unknown
    unit or county (named with the known ones, a close match first), or a unit with no
    officer in the county. A typo must not give an all-zero report (issue 15.16)."""
    if unit is None and county is None:
        return
    officers = list(roster)
    hint = "units and counties come from the roster (`bwc audit import officers`)"
    if not officers:
        raise UsageError("no roster is imported: --unit and --county select from it", hint=hint)
    units = sorted({o.unit for o in officers})
    counties = sorted({o.county for o in officers})
    for what, value, known in (("unit", unit, units), ("county", county, counties)):
        if value is not None and value not in known:
            close = get_close_matches(value, known, n=1)
            raise UsageError(
                f"unknown {what} {value!r}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; the roster's {'units' if what == 'unit' else 'counties'}: "
                + _some(known),
                hint=hint,
            )
    if unit is not None and county is not None:
        theirs = sorted({o.county for o in officers if o.unit == unit})
        if county not in theirs:
            raise UsageError(
                f"no officer of unit {unit!r} is in county {county!r}; unit {unit!r} is in "
                + _some(theirs),
                hint="give --unit or --county alone, or both as the roster has them",
            )


def _some(names: list[str], limit: int = 30) -> str:
    """Names for one line: all of them, or the first ``limit`` and how many more."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit} more)"


def select(result: AuditResult, unit: str | None, county: str | None) -> list[OfficerAudit]:
    """The officers a report covers, by roster unit/county, sorted by id."""
    return [
        a
        for _oid, a in sorted(result.officers.items())
        if (unit is None or a.unit == unit) and (county is None or a.county == county)
    ]


def _rate_key(rate: float | None) -> tuple[int, float]:
    return (1, 0.0) if rate is None else (0, rate)


def worst_first_officers(officers: Iterable[OfficerAudit]) -> list[OfficerAudit]:
    """Lowest full rate first; then most cases with nothing recorded, lowest mean coverage;
    officers without cases last."""
    return sorted(
        officers,
        key=lambda a: (
            _rate_key(a.full / a.cases if a.cases else None),
            -a.none,
            -a.partial,
            a.coverage_sum / a.cases if a.cases else 0.0,
            a.officer_id,
        ),
    )


def worst_first(rows: Iterable[Metrics]) -> list[Metrics]:
    return sorted(
        rows,
        key=lambda m: (
            _rate_key(m.full_rate),
            -m.none,
            -m.partial,
            m.mean_coverage or 0.0,
            m.key,
        ),
    )
