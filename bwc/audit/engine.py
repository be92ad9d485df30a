"""The coverage engine: pure functions over plain values (bwc.audit.model), no I/O, no clock.

What it does, in one pass over the clips and one sweep per officer:

1. **Clock offsets.** A clip's true time is its device time minus the device's offset
   (``device_clock.offset_ms`` = device time minus true time). The measurement used is the
   one *nearest in time* to the clip's recorded (device-time) start; on a tie, the earlier
   one. A device never measured has offset 0.
2. **Attribution.** The item's own officer; else the officer holding the device (checkout
   ledger) at the clip's true start; else the clip is unattributed. When ledger entries for
   a device overlap, the most recent checkout wins (ties: the smallest officer id).
3. **Coverage.** For each officer, the union R of their clip intervals ``[start, end)``
   (prefix sums over it answer |R ∩ [a, b)| in O(log n)) and the intervals merged across
   gaps of at most ``max_gap``. For a case [s, e) and an officer on it: coverage =
   |R ∩ [s, e)| / (e − s); **none** when coverage is 0; **full** when one merged interval
   starts at or before s + start_grace and ends at or after e − end_grace, each grace at
   most a quarter of e − s (``Rules.graces``); **partial** otherwise. An explanation marks
   a non-full pair *explained* (it stays non-full).

Everything is O((clips + pairs) log n): sorting, then bisection; nothing walks seconds.
"""

from __future__ import annotations

import gc
import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, pairwise
from operator import itemgetter
from typing import Literal, NamedTuple

from bwc.audit.model import (
    Assignment,
    AuditInputError,
    Case,
    ClipRow,
    ClockMeasurement,
    Officer,
    Pair,
    Period,
    Rules,
)

Verdict = Literal["full", "partial", "none"]


# ------------------------------------------------------------------------------ clocks


class ClockTable:
    """Measured clock offsets per device; ``offset_at`` picks the nearest measurement.

    Stored as a step function per device: the offset changes halfway between consecutive
    measurements (``steps`` holds those midpoints doubled, to stay in integers), so a lookup
    is one bisection."""

    def __init__(self, measurements: Iterable[ClockMeasurement]) -> None:
        by_dev: dict[str, dict[int, int]] = {}
        for m in measurements:
            # Two measurements at the same instant: the later one in input order wins.
            by_dev.setdefault(m.device_id, {})[m.measured_at] = m.offset_ms
        self.constant: dict[str, int] = {}
        self.steps: dict[str, tuple[list[int], list[int]]] = {}
        for dev, ms in by_dev.items():
            times = sorted(ms)
            offs = [ms[t] for t in times]
            if len(set(offs)) == 1:
                self.constant[dev] = offs[0]
            else:
                mids2 = [a + b for a, b in pairwise(times)]
                self.steps[dev] = (mids2, offs)

    def offset_at(self, device: str, t: int) -> int:
        """The offset (ms) of ``device`` for a clip recorded at device time ``t``: the
        nearest measurement's; on a tie (t exactly halfway) the earlier one's."""
        off = self.constant.get(device)
        if off is not None:
            return off
        st = self.steps.get(device)
        if st is None:
            return 0
        return st[1][bisect_left(st[0], 2 * t)]


# ------------------------------------------------------------------------------ ledger


class Ledger:
    """The device checkout ledger as, per device, a step function time -> holder."""

    def __init__(self, assignments: Iterable[Assignment]) -> None:
        per_dev: dict[str, list[Assignment]] = {}
        self._by_officer: dict[str, list[tuple[int, int | None, str]]] = {}
        for a in assignments:
            if a.end is not None and a.end <= a.start:
                continue  # empty or inverted: holds nothing (imports refuse these)
            per_dev.setdefault(a.device_id, []).append(a)
            self._by_officer.setdefault(a.officer_id, []).append((a.start, a.end, a.device_id))
        # per device: (times, holder from that time on)
        self.segments: dict[str, tuple[list[int], list[str | None]]] = {}
        for dev, rows in per_dev.items():
            self.segments[dev] = _holder_segments(rows)

    def holder(self, device: str, t: int) -> str | None:
        seg = self.segments.get(device)
        if seg is None:
            return None
        times, holders = seg
        i = bisect_right(times, t) - 1
        return holders[i] if i >= 0 else None

    def held_in(self, officer_id: str, a: int, b: int) -> bool:
        """Did the officer hold any device at some time in [a, b)?"""
        return any(
            s < b and (e is None or e > a) for s, e, _d in self._by_officer.get(officer_id, ())
        )

    def devices_held(self, officer_id: str, a: int, b: int) -> list[str]:
        """The devices checked out to the officer at some time in [a, b), sorted."""
        return sorted(
            {
                d
                for s, e, d in self._by_officer.get(officer_id, ())
                if s < b and (e is None or e > a)
            }
        )


def _holder_segments(rows: list[Assignment]) -> tuple[list[int], list[str | None]]:
    starts: dict[int, list[tuple[int, Assignment]]] = {}
    bounds: set[int] = set()
    for i, a in enumerate(rows):
        starts.setdefault(a.start, []).append((i, a))
        bounds.add(a.start)
        if a.end is not None:
            bounds.add(a.end)
    # max-heap on (start, then smallest officer id): the most recent checkout holds
    heap: list[tuple[int, str, int, int | None]] = []
    times: list[int] = []
    holders: list[str | None] = []
    for t in sorted(bounds):
        for i, a in starts.get(t, ()):
            heapq.heappush(heap, (-a.start, a.officer_id, i, a.end))
        while heap and heap[0][3] is not None and heap[0][3] <= t:
            heapq.heappop(heap)
        h = heap[0][1] if heap else None
        if not holders or holders[-1] != h:
            times.append(t)
            holders.append(h)
    return times, holders


# ------------------------------------------------------------------------------ footage


@dataclass
class Footage:
    """One officer's clips as sorted disjoint intervals: the exact union (for coverage) and
    the union merged across short gaps (for the *full* rule)."""

    ustarts: list[int]
    uends: list[int]
    prefix: list[int]  # prefix[i] = total length of union intervals before i
    mstarts: list[int]
    mends: list[int]
    clips: list[tuple[int, int]] | None = None  # sorted raw intervals, when kept

    @classmethod
    def build(
        cls, intervals: Iterable[tuple[int, int]], max_gap: int, *, keep: bool = False
    ) -> Footage:
        ordered = sorted(intervals)
        return cls.from_lists([a for a, _ in ordered], [b for _, b in ordered], max_gap, keep=keep)

    @classmethod
    def from_lists(
        cls, starts: list[int], ends: list[int], max_gap: int, *, keep: bool = False
    ) -> Footage:
        """From clip starts and ends (parallel lists). Clips read in recording order are
        usually sorted already; otherwise they are sorted here."""
        f = cls._sweep(starts, ends, max_gap)
        if f is None:
            ordered = sorted(zip(starts, ends, strict=True))
            starts, ends = [a for a, _ in ordered], [b for _, b in ordered]
            f = cls._sweep(starts, ends, max_gap)
            assert f is not None
        if keep:
            f.clips = [(a, b) for a, b in zip(starts, ends, strict=True) if b > a]
        return f

    @classmethod
    def _sweep(cls, starts: list[int], ends: list[int], max_gap: int) -> Footage | None:
        """One pass over clips sorted by start; None as soon as one is out of order."""
        ustarts: list[int] = []
        uends: list[int] = []
        prefix: list[int] = []
        mstarts: list[int] = []
        mends: list[int] = []
        total = 0
        ue = me = prev = _NEVER
        for s, e in zip(starts, ends, strict=True):
            if s < prev:
                return None
            prev = s
            if e <= s:
                continue
            if s <= ue:
                if e > ue:
                    ue = uends[-1] = e
            else:
                if ustarts:
                    total += ue - ustarts[-1]
                prefix.append(total)
                ustarts.append(s)
                uends.append(e)
                ue = e
            if s - me <= max_gap:
                if e > me:
                    me = mends[-1] = e
            else:
                mstarts.append(s)
                mends.append(e)
                me = e
        return cls(ustarts, uends, prefix, mstarts, mends)

    def recorded_before(self, t: int) -> int:
        """|R ∩ (−∞, t)|"""
        i = bisect_right(self.ustarts, t) - 1
        if i < 0:
            return 0
        u = self.uends[i]
        return self.prefix[i] + (t if t < u else u) - self.ustarts[i]

    def covered_in(self, windows: Iterable[tuple[int, int]]) -> int:
        """Σ |R ∩ [a, b)| over windows (disjoint windows give |R ∩ ⋃ windows|)."""
        us, ue, pf = self.ustarts, self.uends, self.prefix
        total = 0
        for a, b in windows:
            i = bisect_right(us, b) - 1
            if i < 0:
                continue
            u = ue[i]
            total += pf[i] + (b if b < u else u) - us[i]
            i = bisect_right(us, a, 0, i + 1) - 1
            if i >= 0:
                u = ue[i]
                total -= pf[i] + (a if a < u else u) - us[i]
        return total

    def covered(self, a: int, b: int) -> int:
        """|R ∩ [a, b)|"""
        return self.recorded_before(b) - self.recorded_before(a) if b > a else 0

    def reaches(self, s: int, e: int, rules: Rules) -> bool:
        """One merged interval starts by s + start grace and lasts until e − end grace
        (``Rules.graces``). Merged intervals are disjoint and sorted, so only the last one
        starting in time can reach furthest."""
        sg, eg = rules.graces(e - s)
        j = bisect_right(self.mstarts, s + sg) - 1
        return j >= 0 and self.mends[j] >= e - eg

    def union_between(self, a: int, b: int) -> list[tuple[int, int]]:
        """The union's intervals clipped to [a, b)."""
        i = max(bisect_right(self.ustarts, a) - 1, 0)
        out: list[tuple[int, int]] = []
        while i < len(self.ustarts) and self.ustarts[i] < b:
            lo, hi = max(self.ustarts[i], a), min(self.uends[i], b)
            if hi > lo:
                out.append((lo, hi))
            i += 1
        return out

    def clips_between(self, a: int, b: int) -> list[tuple[int, int]]:
        """Raw clip intervals overlapping [a, b) (needs ``keep``; else the union's)."""
        if self.clips is None:
            return self.union_between(a, b)
        return [(s, e) for s, e in self.clips if s < b and e > a]

    def holes(
        self, s: int, e: int, max_gap: int
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The parts of [s, e) not recorded, as (gaps, joins). A *join* is a hole of at most
        ``max_gap`` between two recorded parts: a camera splitting one recording into files,
        merged by the *full* rule, so not shown as a gap (issue 15.10). A hole is judged by
        its whole length, also where the window cuts it."""
        gaps: list[tuple[int, int]] = []
        joins: list[tuple[int, int]] = []
        # the union around the window: a hole between two of these spans is a real hole; one
        # before the first or after the last is longer than max_gap
        spans: list[tuple[int | None, int | None]] = [
            *self.union_between(s - max_gap, e + max_gap),
            (None, None),
        ]
        prev: int | None = None
        for lo, hi in spans:
            a = s if prev is None else max(prev, s)
            b = e if lo is None else min(lo, e)
            if b > a:
                join = prev is not None and lo is not None and lo - prev <= max_gap
                (joins if join else gaps).append((a, b))
            prev = hi
        return gaps, joins

    def gaps(self, s: int, e: int) -> list[tuple[int, int]]:
        """The parts of [s, e) not recorded."""
        out: list[tuple[int, int]] = []
        cur = s
        for lo, hi in self.union_between(s, e):
            if lo > cur:
                out.append((cur, lo))
            cur = max(cur, hi)
        if cur < e:
            out.append((cur, e))
        return out


EMPTY_FOOTAGE = Footage([], [], [], [], [])
_NEVER = -(1 << 62)  # before any time (ms)
_START_THEN_ID = itemgetter(3, 0)  # Case.start, Case.case_id


def judge(footage: Footage, s: int, e: int, rules: Rules) -> tuple[int, Verdict]:
    """(recorded ms within [s, e), verdict) for one officer on one case."""
    if e <= s:
        raise ValueError("case window must have positive length")
    covered = footage.covered(s, e)
    if covered == 0:
        return 0, "none"
    return covered, "full" if footage.reaches(s, e, rules) else "partial"


# ------------------------------------------------------------------------------ results


class PairResult(NamedTuple):
    case_id: str
    officer_id: str
    start: int
    end: int
    covered: int  # ms recorded within the case window
    verdict: Verdict
    explained: bool

    @property
    def coverage(self) -> float:
        return self.covered / (self.end - self.start)


@dataclass
class OfficerAudit:
    officer_id: str
    name: str = ""
    unit: str = ""
    county: str = ""
    frontline: bool = False
    in_roster: bool = False
    on_staff: bool = True  # False: left before the month began (not in the equipage count)
    cases: int = 0
    full: int = 0
    partial: int = 0
    none: int = 0
    explained: int = 0
    coverage_sum: float = 0.0
    uploads: int = 0
    on_time: int = 0
    delays: list[int] = field(default_factory=list)  # ms (ingest − true end), any order
    equipped: bool = False
    has_footage: bool = False
    footage_ms: int = 0  # recorded time within the month (union)
    outside_cases_ms: int = 0  # of which outside all of this officer's case windows

    def sorted_delays(self) -> list[int]:
        """The upload delays, sorted (in place, once: later calls cost one pass)."""
        self.delays.sort()
        return self.delays


@dataclass
class AuditResult:
    period: Period
    rules: Rules
    officers: dict[str, OfficerAudit]
    pairs: list[PairResult]  # by officer id, then case start and case id
    cases: dict[str, Case]  # the month's cases (by start)
    footage: dict[str, Footage]
    unattributed_clips: int = 0
    unattributed_ms: int = 0  # sum of unattributed clip time within the month
    invalid_clips: int = 0  # end before start: skipped


def check_case(c: Case) -> None:
    if c.end <= c.start:
        what = "zero-length" if c.end == c.start else "inverted (end before start)"
        raise AuditInputError(f"case {c.case_id}: window is {what}", hint="fix and re-import it")
    if not c.officers:
        raise AuditInputError(f"case {c.case_id}: no officers", hint="fix and re-import it")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Millions of small tuples, none in a reference cycle: the cyclic collector would only
    rescan them over and over (a third of the run time). Results do not depend on it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@gc_paused()
def run_audit(
    period: Period,
    rules: Rules,
    *,
    officers: Iterable[Officer],
    cases: Iterable[Case],
    clips: Iterable[ClipRow] = (),
    clip_batches: Iterable[Sequence[ClipRow]] = (),
    assignments: Iterable[Assignment],
    clocks: Iterable[ClockMeasurement],
    explanations: AbstractSet[Pair] = frozenset(),
    keep_clips: bool = False,
) -> AuditResult:
    """Audit one month. ``cases`` may include cases outside the month (they only mark
    footage as "during a case"); pairs are made for cases starting in the month. ``clips``
    (or ``clip_batches``, lists of them: faster to loop over) is consumed once and may be a
    lazy iterator over millions of rows."""
    m0, m1 = period.bounds_ms()
    clock = ClockTable(clocks)
    ledger = Ledger(assignments)
    # The hot loop (millions of clips): lookups bound to locals, offsets inlined.
    constant_get = clock.constant.get
    steps_get = clock.steps.get
    segments_get = ledger.segments.get
    # per officer: clip starts, clip ends (true time), upload delays, the late ones among them,
    # and the ingest times of uploads from no identified device (rare; the rest count as
    # "recorded with a camera")
    accs: dict[str, tuple[list[int], list[int], list[int], list[int], list[int]]] = {}
    limit = rules.upload_limit_ms
    accs_get = accs.get
    unattributed = unattributed_ms = invalid = 0
    for batch in chain((clips,), clip_batches):
        for oid, dev, s, e, ing in batch:
            if e is None:
                e = s
            elif e < s:
                invalid += 1
                continue
            if dev is not None:
                off = constant_get(dev)
                if off is None:
                    st = steps_get(dev)
                    off = 0 if st is None else st[1][bisect_left(st[0], 2 * s)]
                if off:
                    s -= off
                    e -= off
                if oid is None:  # Ledger.holder, inlined
                    seg = segments_get(dev)
                    if seg is not None:
                        i = bisect_right(seg[0], s) - 1
                        if i >= 0:
                            oid = seg[1][i]
            if oid is None:
                if s < m1 and e > m0:
                    unattributed += 1
                    unattributed_ms += (e if e < m1 else m1) - (s if s > m0 else m0)
                continue
            acc = accs_get(oid)
            if acc is None:
                acc = accs[oid] = ([], [], [], [], [])
            if e > s:
                acc[0].append(s)
                acc[1].append(e)
            if m0 <= e < m1:
                acc[2].append(ing - e)
                if ing - e > limit:
                    acc[3].append(ing)
                if dev is None:
                    acc[4].append(ing)

    footage = {
        oid: Footage.from_lists(acc[0], acc[1], rules.max_gap_ms, keep=keep_clips)
        for oid, acc in accs.items()
    }
    audits: dict[str, OfficerAudit] = {}
    for o in officers:
        audits[o.officer_id] = OfficerAudit(
            o.officer_id,
            o.name,
            o.unit,
            o.county,
            o.frontline,
            in_roster=True,
            on_staff=o.on_staff(m0),
        )

    def audit_of(oid: str) -> OfficerAudit:
        a = audits.get(oid)
        if a is None:
            a = audits[oid] = OfficerAudit(oid)
        return a

    month_cases: dict[str, Case] = {}
    windows: dict[str, list[tuple[int, int]]] = {}
    mine: dict[str, list[Case]] = {}
    for c in sorted(cases, key=_START_THEN_ID):
        if c.end <= c.start or not c.officers:
            check_case(c)  # raises
        in_month = m0 <= c.start < m1
        if in_month:
            month_cases[c.case_id] = c
        window = (c.start, c.end)
        for oid in c.officers if len(c.officers) == 1 else dict.fromkeys(c.officers):
            w = windows.get(oid)
            if w is None:
                windows[oid] = [window]
            else:
                w.append(window)
            if in_month:
                m = mine.get(oid)
                if m is None:
                    mine[oid] = [c]
                else:
                    m.append(c)

    # Pairs officer by officer: each officer's interval lists stay in the CPU cache.
    pairs: list[PairResult] = []
    during_cases: dict[str, int] = {}  # Σ recorded ms over the officer's month pairs
    sg, eg = rules.start_grace_ms, rules.end_grace_ms
    for oid in sorted(mine):
        f = footage.get(oid, EMPTY_FOOTAGE)
        us, ue, pf, ms, me = f.ustarts, f.uends, f.prefix, f.mstarts, f.mends
        n_full = n_partial = n_none = n_explained = covered_sum = 0
        coverage_sum = 0.0
        for c in mine[oid]:
            s, e = c.start, c.end
            # judge(), inlined: |R ∩ [s, e)| by prefix sums, then the merged-interval rule
            covered = 0
            i = bisect_right(us, e) - 1
            if i >= 0:
                u = ue[i]
                covered = pf[i] + (e if e < u else u) - us[i]
                i = bisect_right(us, s, 0, i + 1) - 1
                if i >= 0:
                    u = ue[i]
                    covered -= pf[i] + (s if s < u else u) - us[i]
            verdict: Verdict
            if covered == 0:
                verdict = "none"
                n_none += 1
            else:
                # Rules.graces, inlined: at most a quarter of the case at each end
                q = (e - s) >> 2
                j = bisect_right(ms, s + (sg if sg < q else q)) - 1
                if j >= 0 and me[j] >= e - (eg if eg < q else q):
                    verdict = "full"
                    n_full += 1
                else:
                    verdict = "partial"
                    n_partial += 1
            explained = verdict != "full" and (c.case_id, oid) in explanations
            n_explained += explained
            coverage_sum += covered / (e - s)
            covered_sum += covered
            pairs.append(PairResult(c.case_id, oid, s, e, covered, verdict, explained))
        a = audit_of(oid)
        a.cases = len(mine[oid])
        a.full, a.partial, a.none, a.explained = n_full, n_partial, n_none, n_explained
        a.coverage_sum = coverage_sum
        during_cases[oid] = covered_sum

    with_device: set[str] = set()
    for oid, (_s, _e, ds, late, no_device) in accs.items():
        f = footage[oid]
        recorded = f.covered(m0, m1)
        if ds or recorded:
            audit_of(oid)
        a_ = audits.get(oid)
        if a_ is None:
            continue  # footage only outside the month, no cases: not in this month's report
        a_.delays = ds
        a_.uploads = len(ds)
        a_.on_time = len(ds) - len(late)
        if len(ds) > len(no_device):
            with_device.add(oid)
        a_.footage_ms = recorded
        ws = windows.get(oid, [])
        if _disjoint_within(ws, m0, m1):  # the usual case: the pairs measured it already
            during = during_cases.get(oid, 0)
        else:
            during = f.covered_in(_union(ws, m0, m1))
        a_.outside_cases_ms = recorded - during
    for oid, a in audits.items():
        a.equipped = oid in with_device or ledger.held_in(oid, m0, m1)
        a.has_footage = a.footage_ms > 0 or a.coverage_sum > 0

    return AuditResult(
        period=period,
        rules=rules,
        officers=audits,
        pairs=pairs,
        cases=month_cases,
        footage=footage,
        unattributed_clips=unattributed,
        unattributed_ms=unattributed_ms,
        invalid_clips=invalid,
    )


def _disjoint_within(windows: list[tuple[int, int]], lo: int, hi: int) -> bool:
    """Windows (sorted by start) that do not overlap and all lie in [lo, hi)."""
    last = lo
    for s, e in windows:
        if s < last or e > hi:
            return False
        last = e
    return True


def _union(windows: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """Disjoint union of windows, clipped to [lo, hi)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(windows):
        s, e = max(s, lo), min(e, hi)
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


# ------------------------------------------------------------------------------ one case


@dataclass(frozen=True)
class PlacedClip:
    key: str  # the item's sha256 (or any caller key)
    officer_id: str | None
    device_id: str | None
    start: int  # true time
    end: int
    offset_ms: int
    attributed_by: Literal["item", "ledger", "none"]


def place_clips(
    rows: Iterable[tuple[str, ClipRow]], clock: ClockTable, ledger: Ledger
) -> list[PlacedClip]:
    """Apply clock offsets and attribution to (key, clip) rows: the same rules as
    ``run_audit``, keeping the details for display."""
    out: list[PlacedClip] = []
    for key, (oid, dev, s, e, _ing) in rows:
        e = s if e is None else e
        if e < s:
            continue
        off = 0
        by: Literal["item", "ledger", "none"] = "item" if oid is not None else "none"
        if dev is not None:
            off = clock.offset_at(dev, s)
            s, e = s - off, e - off
            if oid is None:
                oid = ledger.holder(dev, s)
                by = "ledger" if oid is not None else "none"
        out.append(PlacedClip(key, oid, dev, s, e, off, by))
    out.sort(key=lambda p: (p.start, p.end, p.key))
    return out


@dataclass(frozen=True)
class OfficerOnCase:
    officer_id: str
    covered: int
    verdict: Verdict
    explained: bool
    clips: list[PlacedClip]
    gaps: list[tuple[int, int]]  # unrecorded parts of the window, joins excepted
    joins: list[tuple[int, int]]  # holes of at most max_gap between files (one recording)


def audit_case(
    case: Case,
    rules: Rules,
    placed: Sequence[PlacedClip],
    explanations: AbstractSet[Pair] = frozenset(),
) -> list[OfficerOnCase]:
    """One case's verdict per officer, with the clips that touch its window and the gaps.
    ``placed`` must hold every clip of the case's officers overlapping
    [start − max_gap, end) (true time); more is fine."""
    check_case(case)
    out: list[OfficerOnCase] = []
    for oid in dict.fromkeys(case.officers):
        mine = [p for p in placed if p.officer_id == oid]
        f = Footage.build([(p.start, p.end) for p in mine], rules.max_gap_ms)
        covered, verdict = judge(f, case.start, case.end, rules)
        explained = verdict != "full" and (case.case_id, oid) in explanations
        near = [p for p in mine if p.end > case.start - rules.max_gap_ms and p.start < case.end]
        gaps, joins = f.holes(case.start, case.end, rules.max_gap_ms)
        out.append(OfficerOnCase(oid, covered, verdict, explained, near, gaps, joins))
    return out
