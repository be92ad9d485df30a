"""The coverage engine against a brute-force per-second reference, on random officers,
cases, clips, gaps, clock offsets, shared devices and ledgers, around both month
boundaries and in time zones with odd offsets.

The reference shares no code with the engine: it works on sets of covered seconds, scans
every ledger entry and every clock measurement for each clip, and fills gaps second by second.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bwc.audit.engine import ClockTable, Ledger, audit_case, place_clips, run_audit
from bwc.audit.model import Assignment, Case, Clip, ClockMeasurement, Officer, Period, Rules

pytestmark = pytest.mark.unit

S = 1000  # the engine works in ms; the reference in whole seconds
OFFICERS = ["o1", "o2", "o3", "o4"]
DEVICES = ["d1", "d2", "d3"]
ZONES = ["UTC", "Asia/Shanghai", "Asia/Kathmandu", "America/St_Johns"]


@dataclass
class World:
    period: Period
    rules: Rules
    roster: list[Officer]
    cases: list[Case]
    clips: list[Clip]
    assignments: list[Assignment]
    clocks: list[ClockMeasurement]
    explanations: set[tuple[str, str]]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    period = Period(2026, draw(st.sampled_from([2, 10, 12])), draw(st.sampled_from(ZONES)))
    m0, m1 = (b // S for b in period.bounds_ms())
    anchors = [m0, m1]

    def t() -> int:
        return draw(st.sampled_from(anchors)) + draw(st.integers(-1500, 1500))

    def clip(draw: st.DrawFn, start: int, end: int | None, oid: str | None) -> Clip:
        ingested = (end if end is not None else start) + draw(st.integers(-50, 2500))
        return Clip(
            oid,
            draw(st.none() | st.sampled_from(DEVICES)),
            start * S,
            None if end is None else end * S,
            ingested * S,
        )

    rules = Rules(
        max_gap_ms=draw(st.integers(0, 8)) * S,
        start_grace_ms=draw(st.integers(0, 90)) * S,
        end_grace_ms=draw(st.integers(0, 90)) * S,
        upload_limit_ms=draw(st.integers(0, 2000)) * S,
    )
    roster = [
        Officer(
            o,
            f"name {o}",
            draw(st.sampled_from(["u1", "u2"])),
            draw(st.sampled_from(["c1", "c2"])),
            draw(st.booleans()),
        )
        for o in draw(st.lists(st.sampled_from(OFFICERS), unique=True, max_size=4))
    ]
    cases = []
    for i in range(draw(st.integers(0, 5))):
        start = t()
        cases.append(
            Case(
                f"C{i}",
                "cat",
                "u1",
                start * S,
                (start + draw(st.integers(1, 700))) * S,
                "",
                tuple(draw(st.lists(st.sampled_from(OFFICERS), min_size=1, max_size=3))),
            )
        )
    clips = []
    for _ in range(draw(st.integers(0, 10))):
        start = t()
        length = draw(st.integers(0, 400))
        end = None if draw(st.integers(0, 9)) == 0 else start + length
        clips.append(clip(draw, start, end, draw(st.none() | st.sampled_from(OFFICERS))))
    # chains of clips around a case, for its officers: starts near the start grace, gaps
    # near max_gap, ends near the end grace or a quarter of the case (the boundaries of the
    # "full" rule)
    for c in draw(st.lists(st.sampled_from(cases), max_size=3)) if cases else []:
        oid = draw(st.sampled_from(c.officers))
        g = rules.max_gap_ms // S
        quarter = (c.end - c.start) // S // 4
        cur = (
            c.start // S
            + draw(st.integers(-3, 3))
            + draw(st.sampled_from([0, rules.start_grace_ms // S, quarter]))
        )
        for _ in range(draw(st.integers(1, 4))):
            length = draw(st.integers(1, 300))
            clips.append(clip(draw, cur, cur + length, oid))
            cur += length + draw(st.integers(max(g - 1, 0), g + 1))
        end = (
            c.end // S
            - draw(st.sampled_from([rules.end_grace_ms // S, quarter]))
            + draw(st.integers(-2, 2))
        )
        if end > cur:
            clips.append(clip(draw, cur, end, oid))
    # a few clips end before they start: skipped by both
    if draw(st.booleans()) and clips:
        c0 = clips[0]
        if c0.end is not None and c0.end > c0.start:
            clips[0] = c0._replace(start=c0.end, end=c0.start)
    assignments = []
    starts = [t() for _ in range(3)]  # shared start times: ties between checkouts
    for _ in range(draw(st.integers(0, 6))):
        start = draw(st.sampled_from(starts)) if draw(st.booleans()) else t()
        end = draw(st.none() | st.integers(-10, 2000).map(lambda n, s=start: s + n))
        assignments.append(
            Assignment(
                draw(st.sampled_from(OFFICERS)),
                draw(st.sampled_from(DEVICES)),
                start * S,
                None if end is None else end * S,
            )
        )
    # unattributed clips recorded while a device is checked out, sometimes to two
    # officers from the same instant (the tie rule)
    for a in draw(st.lists(st.sampled_from(assignments), max_size=2)) if assignments else []:
        if draw(st.booleans()):
            assignments.append(a._replace(officer_id=draw(st.sampled_from(OFFICERS))))
        start = a.start // S + draw(st.integers(0, 100))
        end = start + draw(st.integers(1, 200))
        clips.append(Clip(None, a.device_id, start * S, end * S, (end + 60) * S))
    clocks = [
        ClockMeasurement(draw(st.sampled_from(DEVICES)), draw(st.integers(-40, 40)) * S, t() * S)
        for _ in range(draw(st.integers(0, 3)))
    ]
    # measurements just before and after a clip, sometimes equally far (the tie rule)
    for c0 in draw(st.lists(st.sampled_from(clips), max_size=2)) if clips else []:
        if c0.device_id is not None:
            before = draw(st.integers(0, 30))
            after = before if draw(st.booleans()) else draw(st.integers(0, 30))
            for d in (-before, after):
                clocks.append(
                    ClockMeasurement(c0.device_id, draw(st.integers(-40, 40)) * S, c0.start + d * S)
                )
    pairs = sorted({(c.case_id, o) for c in cases for o in c.officers})
    explanations = set(draw(st.lists(st.sampled_from(pairs), unique=True))) if pairs else set()
    return World(period, rules, roster, cases, clips, assignments, clocks, explanations)


# ---------------------------------------------------------------------------- the reference


def reference(w: World) -> dict[str, object]:
    m0, m1 = (b // S for b in w.period.bounds_ms())
    gap, sg, eg = (w.rules.max_gap_ms // S, w.rules.start_grace_ms // S, w.rules.end_grace_ms // S)
    limit = w.rules.upload_limit_ms // S

    def offset(dev: str, t: int) -> int:
        latest: dict[int, int] = {}
        for m in w.clocks:
            if m.device_id == dev:
                latest[m.measured_at // S] = m.offset_ms // S
        if not latest:
            return 0
        best = min(latest, key=lambda at: (abs(at - t), at))
        return latest[best]

    def holder(dev: str, t: int) -> str | None:
        live = [
            a
            for a in w.assignments
            if a.device_id == dev
            and (a.end is None or a.end > a.start)
            and a.start // S <= t
            and (a.end is None or t < a.end // S)
        ]
        if not live:
            return None
        return min(live, key=lambda a: (-a.start, a.officer_id)).officer_id

    covered: dict[str, set[int]] = {}
    delays: dict[str, list[int]] = {}
    device_in_month: set[str] = set()
    unattributed = unattributed_s = 0
    for c in w.clips:
        s = c.start // S
        e = s if c.end is None else c.end // S
        if e < s:
            continue
        oid = c.officer_id
        if c.device_id is not None:
            off = offset(c.device_id, s)
            s, e = s - off, e - off
            if oid is None:
                oid = holder(c.device_id, s)
        if oid is None:
            n = sum(1 for x in range(s, e) if m0 <= x < m1)
            if s < m1 and e > m0:
                unattributed += 1
                unattributed_s += n
            continue
        covered.setdefault(oid, set()).update(range(s, e))
        if m0 <= e < m1:
            delays.setdefault(oid, []).append(c.ingested // S - e)
        if c.device_id is not None and m0 <= e < m1:
            device_in_month.add(oid)

    def merged(cov: set[int], lo: int, hi: int) -> set[int]:
        """Covered seconds in [lo, hi) plus the uncovered ones in gaps of at most `gap`
        seconds between two covered ones, walking second by second."""
        out: set[int] = set()
        last = None
        for x in range(lo, hi):
            if x in cov:
                if last is not None and x - last - 1 <= gap:
                    out.update(range(last + 1, x))
                out.add(x)
                last = x
        return out

    pairs = {}
    for c in w.cases:
        s, e = c.start // S, c.end // S
        if not m0 <= s < m1:
            continue
        for oid in dict.fromkeys(c.officers):
            cov = covered.get(oid, set())
            n = sum(1 for x in range(s, e) if x in cov)
            # every clip near this case lies within an hour of it (times are drawn within
            # 1500 s of a month boundary); the other boundary is weeks away
            lo, hi = s - 3600, e + 3600
            mset = merged(cov, lo, hi)
            # each grace is at most a quarter of the case: a ≤ s + min(sg, d/4) and
            # b ≥ e − min(eg, d/4), kept in integers (4·x ≤ d for x ≤ d/4)
            d = e - s
            full = False
            for a in range(lo, s + sg + 1):
                if a in mset and a - 1 not in mset and 4 * (a - s) <= d:
                    b = a
                    while b in mset:
                        b += 1
                    if e - b <= eg and 4 * (e - b) <= d:
                        full = True
            verdict = "none" if n == 0 else "full" if full else "partial"
            pairs[(c.case_id, oid)] = (
                n * S,
                verdict,
                verdict != "full" and (c.case_id, oid) in w.explanations,
            )

    officers = {}
    in_roster = {o.officer_id for o in w.roster}
    held = {
        a.officer_id
        for a in w.assignments
        if (a.end is None or a.end > a.start)
        and a.start // S < m1
        and (a.end is None or a.end // S > m0)
    }
    everyone = in_roster | {o for _c, o in pairs} | set(delays)
    everyone |= {o for o, cov in covered.items() if any(m0 <= x < m1 for x in cov)}
    for oid in everyone:
        mine = {k: v for k, v in pairs.items() if k[1] == oid}
        cov = covered.get(oid, set())
        month = {x for x in cov if m0 <= x < m1}
        during = set()
        for c in w.cases:
            if oid in c.officers:
                during.update(range(c.start // S, c.end // S))
        ds = sorted(d * S for d in delays.get(oid, []))
        officers[oid] = {
            "cases": len(mine),
            "full": sum(1 for v in mine.values() if v[1] == "full"),
            "partial": sum(1 for v in mine.values() if v[1] == "partial"),
            "none": sum(1 for v in mine.values() if v[1] == "none"),
            "explained": sum(1 for v in mine.values() if v[2]),
            "uploads": len(ds),
            "on_time": sum(1 for d in ds if d <= limit * S),
            "delays": ds,
            "equipped": oid in held or oid in device_in_month,
            "footage_ms": len(month) * S,
            "outside_cases_ms": len(month - during) * S,
            "has_footage": bool(month) or any(v[0] for v in mine.values()),
        }
    return {
        "pairs": pairs,
        "officers": officers,
        "unattributed": (unattributed, unattributed_s * S),
    }


def engine(w: World) -> dict[str, object]:
    r = run_audit(
        w.period,
        w.rules,
        officers=w.roster,
        cases=w.cases,
        clips=iter(w.clips),
        assignments=w.assignments,
        clocks=w.clocks,
        explanations=w.explanations,
    )
    return {
        "pairs": {(p.case_id, p.officer_id): (p.covered, p.verdict, p.explained) for p in r.pairs},
        "officers": {
            oid: {
                "cases": a.cases,
                "full": a.full,
                "partial": a.partial,
                "none": a.none,
                "explained": a.explained,
                "uploads": a.uploads,
                "on_time": a.on_time,
                "delays": sorted(a.delays),
                "equipped": a.equipped,
                "footage_ms": a.footage_ms,
                "outside_cases_ms": a.outside_cases_ms,
                "has_footage": a.has_footage,
            }
            for oid, a in r.officers.items()
        },
        "unattributed": (r.unattributed_clips, r.unattributed_ms),
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_engine_matches_per_second_reference(w: World) -> None:
    assert engine(w) == reference(w)


@settings(max_examples=60, deadline=None)
@given(worlds())
def test_results_do_not_depend_on_input_order(w: World) -> None:
    a = engine(w)
    w.clips.reverse()
    w.cases.reverse()
    w.roster.reverse()
    assert engine(w) == a


@settings(max_examples=80, deadline=None)
@given(worlds())
def test_one_case_view_agrees_with_the_month(w: World) -> None:
    """`bwc audit case` (place_clips + audit_case) gives each pair the month's verdict."""
    month = run_audit(
        w.period,
        w.rules,
        officers=w.roster,
        cases=w.cases,
        clips=iter(w.clips),
        assignments=w.assignments,
        clocks=w.clocks,
        explanations=w.explanations,
    )
    placed = place_clips(
        [(str(i), c) for i, c in enumerate(w.clips)], ClockTable(w.clocks), Ledger(w.assignments)
    )
    expected = {(p.case_id, p.officer_id): (p.covered, p.verdict, p.explained) for p in month.pairs}
    got = {}
    for c in w.cases:
        if c.case_id in month.cases:
            for v in audit_case(c, w.rules, placed, w.explanations):
                got[(c.case_id, v.officer_id)] = (v.covered, v.verdict, v.explained)
                holes = v.gaps + v.joins
                assert sum(b - a for a, b in holes) == (c.end - c.start) - v.covered
                assert all(b - a <= w.rules.max_gap_ms for a, b in v.joins)
    assert got == expected
