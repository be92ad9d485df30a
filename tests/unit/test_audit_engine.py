"""The coverage engine on hand-made cases: the rules' boundaries, clock offsets, the ledger,
month boundaries, overlapping cases, shared devices, explanations."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bwc.audit.engine import (
    EMPTY_FOOTAGE,
    ClockTable,
    Footage,
    Ledger,
    audit_case,
    place_clips,
    run_audit,
)
from bwc.audit.model import (
    Assignment,
    AuditInputError,
    Case,
    Clip,
    ClockMeasurement,
    Officer,
    Period,
    Rules,
    from_ms,
    to_ms,
)
from bwc.errors import UsageError

pytestmark = pytest.mark.unit

SH = "Asia/Shanghai"
OCT = Period(2026, 10, SH)
S = 1000
MIN = 60 * S
H = 60 * MIN


def t(text: str, tz: str = SH) -> int:
    """Local wall time in ``tz`` -> epoch ms."""
    return to_ms(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)))


def case(cid: str, start: int, end: int, *officers: str) -> Case:
    return Case(cid, "cat", "unit", start, end, "", officers)


def clip(oid: str | None, start: int, end: int | None, dev: str | None = None) -> Clip:
    return Clip(oid, dev, start, end, (end or start) + H)


def audit(cases, clips, assignments=(), clocks=(), explanations=frozenset(), rules=None):  # type: ignore[no-untyped-def]
    return run_audit(
        OCT,
        rules or Rules(),
        officers=[Officer("A", "a", "u1", "c1", True), Officer("B", "b", "u2", "c1", True)],
        cases=cases,
        clips=clips,
        assignments=assignments,
        clocks=clocks,
        explanations=explanations,
    )


def verdicts(result) -> dict[tuple[str, str], tuple[str, float]]:  # type: ignore[no-untyped-def]
    return {(p.case_id, p.officer_id): (p.verdict, round(p.coverage, 4)) for p in result.pairs}


S0 = t("2026-10-15T09:30:00")
E0 = S0 + 10 * MIN


@pytest.mark.parametrize(
    ("clips", "expected"),
    [
        ([], ("none", 0.0)),
        ([(S0, E0)], ("full", 1.0)),
        ([(S0 + 60 * S, E0 - 60 * S)], ("full", 0.8)),  # exactly at both graces
        ([(S0 + 61 * S, E0)], ("partial", 0.8983)),  # one second too late
        ([(S0, E0 - 61 * S)], ("partial", 0.8983)),  # one second too early
        ([(S0, S0 + 5 * MIN), (S0 + 5 * MIN + 5 * S, E0)], ("full", 0.9917)),  # 5 s gap
        ([(S0, S0 + 5 * MIN), (S0 + 5 * MIN + 6 * S, E0)], ("partial", 0.99)),  # 6 s gap
        ([(S0 - H, S0 - 1)], ("none", 0.0)),  # ends just before
        ([(S0 - 30 * S, S0 + 5 * S)], ("partial", 0.0083)),
    ],
)
def test_rules(clips: list[tuple[int, int]], expected: tuple[str, float]) -> None:
    r = audit([case("C", S0, E0, "A")], [clip("A", a, b) for a, b in clips])
    assert verdicts(r)[("C", "A")] == expected


@pytest.mark.parametrize(
    ("length", "clips", "expected"),
    [
        # issue 15.9: the demo's 10 s case with a 3 s clip at its start was "full"
        (10 * S, [(0, 3 * S)], ("partial", 0.3)),
        # a 90 s case with one 5 s clip was "full"
        (90 * S, [(40 * S, 45 * S)], ("partial", 0.0556)),
        # grace = 25 % of the case at each end: exactly the middle half is enough ...
        (10 * S, [(2500, 7500)], ("full", 0.5)),
        # ... a millisecond less at either end is not
        (10 * S, [(2501, 7500)], ("partial", 0.4999)),
        (10 * S, [(2500, 7499)], ("partial", 0.4999)),
        # 240 s and longer: the configured 60 s applies again
        (240 * S, [(60 * S, 180 * S)], ("full", 0.5)),
        (241 * S, [(60 * S, 181 * S)], ("full", 0.5021)),
        (241 * S, [(61 * S, 241 * S)], ("partial", 0.7469)),
    ],
)
def test_short_case_grace_is_at_most_a_quarter_of_the_case(
    length: int, clips: list[tuple[int, int]], expected: tuple[str, float]
) -> None:
    r = audit([case("C", S0, S0 + length, "A")], [clip("A", S0 + a, S0 + b) for a, b in clips])
    assert verdicts(r)[("C", "A")] == expected
    placed = place_clips(
        [(str(i), clip("A", S0 + a, S0 + b)) for i, (a, b) in enumerate(clips)],
        ClockTable([]),
        Ledger([]),
    )
    (one,) = audit_case(case("C", S0, S0 + length, "A"), Rules(), placed)
    assert one.verdict == expected[0]


def test_a_short_case_inside_a_gap_is_none_not_full() -> None:
    """Coverage 0 wins over the grace rule, even when merged clips would span the case."""
    s = S0 + 10 * S
    r = audit([case("C", s, s + 3 * S, "A")], [clip("A", S0, s), clip("A", s + 4 * S, E0)])
    assert verdicts(r)[("C", "A")] == ("none", 0.0)


def test_explanations_count_separately_and_keep_the_verdict() -> None:
    cases = [case("C1", S0, E0, "A"), case("C2", S0 + H, E0 + H, "A", "B")]
    clips = [clip("A", S0, E0), clip("A", S0 + H, S0 + H + MIN)]
    r = audit(cases, clips, explanations={("C1", "A"), ("C2", "A"), ("C2", "B")})
    v = {(p.case_id, p.officer_id): (p.verdict, p.explained) for p in r.pairs}
    assert v == {
        ("C1", "A"): ("full", False),  # full: an explanation changes nothing
        ("C2", "A"): ("partial", True),
        ("C2", "B"): ("none", True),
    }
    a, b = r.officers["A"], r.officers["B"]
    assert (a.cases, a.full, a.partial, a.none, a.explained) == (2, 1, 1, 0, 1)
    assert (b.cases, b.full, b.partial, b.none, b.explained) == (1, 0, 0, 1, 1)
    assert a.has_footage and not b.has_footage


def test_overlapping_cases_share_footage() -> None:
    cases = [case("C1", S0, E0, "A"), case("C2", S0 + 2 * MIN, S0 + 4 * MIN, "A")]
    r = audit(cases, [clip("A", S0, E0)])
    assert verdicts(r) == {("C1", "A"): ("full", 1.0), ("C2", "A"): ("full", 1.0)}
    assert r.officers["A"].outside_cases_ms == 0


def test_clock_offset_is_subtracted_nearest_measurement() -> None:
    # the camera runs 2 minutes fast: its clip says 09:32-09:42, truly 09:30-09:40
    clocks = [
        ClockMeasurement("D1", 2 * MIN, t("2026-10-15T20:00:00")),
        ClockMeasurement("D1", 0, t("2026-10-01T20:00:00")),
    ]
    r = audit(
        [case("C", S0, E0, "A")], [clip("A", S0 + 2 * MIN, E0 + 2 * MIN, "D1")], clocks=clocks
    )
    assert verdicts(r)[("C", "A")] == ("full", 1.0)


def test_clock_tie_takes_the_earlier_measurement() -> None:
    ct = ClockTable(
        [ClockMeasurement("D", 5, 100), ClockMeasurement("D", 7, 300), ClockMeasurement("X", 1, 0)]
    )
    assert [ct.offset_at("D", x) for x in (0, 199, 200, 201, 999)] == [5, 5, 5, 7, 7]
    assert ct.offset_at("X", 10**12) == 1
    assert ct.offset_at("unknown", 0) == 0


def test_device_shared_by_three_officers_in_one_day() -> None:
    day = "2026-10-15T"
    ledger = [
        Assignment("A", "D1", t(day + "07:00:00"), t(day + "11:00:00")),
        Assignment("B", "D1", t(day + "11:00:00"), t(day + "15:00:00")),
        Assignment("C", "D1", t(day + "15:00:00"), None),
    ]
    clips = [
        clip(None, t(day + "09:00:00"), t(day + "09:10:00"), "D1"),
        clip(None, t(day + "10:55:00"), t(day + "11:05:00"), "D1"),  # holder at its start: A
        clip(None, t(day + "13:00:00"), t(day + "13:10:00"), "D1"),
        clip(None, t(day + "23:00:00"), t(day + "23:10:00"), "D1"),
        clip("B", t(day + "16:00:00"), t(day + "16:10:00"), "D1"),  # its own officer wins
        clip(None, t(day + "06:00:00"), t(day + "06:10:00"), "D1"),  # nobody holds it
    ]
    cases = [
        case("K1", t(day + "09:00:00"), t(day + "09:10:00"), "A"),
        case("K2", t(day + "13:00:00"), t(day + "13:10:00"), "B", "C"),
        case("K3", t(day + "23:00:00"), t(day + "23:10:00"), "C"),
    ]
    r = audit(cases, clips, assignments=ledger)
    assert verdicts(r) == {
        ("K1", "A"): ("full", 1.0),
        ("K2", "B"): ("full", 1.0),
        ("K2", "C"): ("none", 0.0),
        ("K3", "C"): ("full", 1.0),
    }
    assert r.officers["A"].uploads == 2 and r.officers["B"].uploads == 2
    assert r.officers["C"].uploads == 1
    assert (r.unattributed_clips, r.unattributed_ms) == (1, 10 * MIN)
    lg = Ledger(ledger)
    assert lg.holder("D1", t(day + "11:00:00")) == "B"
    assert lg.holder("D1", t(day + "06:59:59")) is None


def test_overlapping_checkouts_most_recent_wins() -> None:
    lg = Ledger(
        [
            Assignment("Z", "D", 0, None),  # never checked back in
            Assignment("B", "D", 100, 200),
            Assignment("A", "D", 100, 300),  # same instant as B: smallest id wins
            Assignment("Q", "D", 150, 150),  # empty: ignored
        ]
    )
    assert [lg.holder("D", x) for x in (50, 100, 199, 200, 299, 300)] == [
        "Z",
        "A",
        "A",
        "A",
        "A",
        "Z",
    ]


def test_month_boundaries() -> None:
    m0, m1 = OCT.bounds_ms()
    assert m0 == t("2026-10-01T00:00:00") and m1 == t("2026-11-01T00:00:00")
    cases = [
        case("Early", m0 + MIN, m0 + 11 * MIN, "A"),  # recorded from September
        case("Sept", m0 - 20 * MIN, m0 - 10 * MIN, "A"),  # belongs to September
        case("Late", m1 - 5 * MIN, m1 + 5 * MIN, "A"),  # starts in October, ends in November
    ]
    clips = [
        clip("A", m0 - 30 * MIN, m0 + 20 * MIN),  # crosses into October: an October upload
        clip("A", m1 - 6 * MIN, m1 + 6 * MIN),  # ends in November: not an October upload
    ]
    r = audit(cases, clips)
    assert verdicts(r) == {("Early", "A"): ("full", 1.0), ("Late", "A"): ("full", 1.0)}
    a = r.officers["A"]
    assert a.uploads == 1
    assert a.footage_ms == 20 * MIN + 6 * MIN  # only October's part of each clip
    # in October: 20 min of which 10 during "Early" (the September case ended before m0),
    # and 6 min of which 5 during "Late"
    assert a.outside_cases_ms == 10 * MIN + 1 * MIN


def test_period_in_an_offset_zone_without_dst() -> None:
    p = Period.parse("2026-10", "Asia/Kathmandu")
    a, b = p.bounds()
    assert a.isoformat() == "2026-09-30T18:15:00+00:00"
    assert b.isoformat() == "2026-10-31T18:15:00+00:00"
    assert Period.parse("2026-12", "UTC").bounds()[1].year == 2027
    for bad in ("2026-13", "2026-1", "Oct 2026", "1969-12"):
        with pytest.raises(UsageError):
            Period.parse(bad, "UTC")
    with pytest.raises(UsageError):
        Period.parse("2026-10", "Mars/Olympus")


def test_zero_length_or_inverted_cases_are_input_errors() -> None:
    for c in (case("Z", S0, S0, "A"), case("I", E0, S0, "A"), case("N", S0, E0)):
        with pytest.raises(AuditInputError, match=f"case {c.case_id}"):
            audit([c], [])


def test_uploads_on_time_and_equipage() -> None:
    clips = [
        Clip("A", "D1", S0, E0, E0 + 24 * H),  # on time (limit inclusive)
        Clip("A", "D1", S0, E0, E0 + 24 * H + 1),  # late
        Clip("B", None, S0, E0, E0),  # no device: B is not equipped by it
        Clip("A", "D1", S0, None, S0 + H),  # a photo: an upload, no recorded time
        Clip("A", "D1", E0, S0, E0),  # ends before it starts: skipped
    ]
    r = audit([], clips)
    a, b = r.officers["A"], r.officers["B"]
    assert (a.uploads, a.on_time, sorted(a.delays)) == (3, 2, [H, 24 * H, 24 * H + 1])
    assert a.equipped and not b.equipped
    assert r.invalid_clips == 1
    r = audit([], clips[2:3], assignments=[Assignment("B", "D9", S0 - 40 * 24 * H, S0)])
    assert r.officers["B"].equipped  # held a camera on October's first 15 days


def test_results_do_not_depend_on_when_they_are_computed() -> None:
    args = ([case("C", S0, E0, "A")], [clip("A", S0, E0)])
    assert audit(*args).pairs == audit(*args).pairs


def test_one_case_view() -> None:
    c = case("C", S0, E0, "A", "B")
    rows = [
        ("k1", clip("A", S0 + 2 * MIN, S0 + 5 * MIN, "D1")),
        ("k2", clip(None, S0 + 6 * MIN, E0 + 2 * MIN, "D1")),
        ("k3", clip("A", S0 - H, S0 - H + MIN)),
    ]
    placed = place_clips(
        rows,
        ClockTable([ClockMeasurement("D1", 2 * MIN, S0)]),
        Ledger([Assignment("B", "D1", S0 - H, None)]),
    )
    assert [(p.key, p.attributed_by, p.offset_ms) for p in placed] == [
        ("k3", "item", 0),
        ("k1", "item", 2 * MIN),
        ("k2", "ledger", 2 * MIN),
    ]
    # true times: k1 09:30-09:33 (A), k2 09:34-09:40 (B, by the ledger)
    a, b = audit_case(c, Rules(), placed, {("C", "B")})
    assert (a.verdict, [p.key for p in a.clips]) == ("partial", ["k1"])
    assert [(from_ms(x).minute, from_ms(y).minute) for x, y in a.gaps] == [(33, 40)]
    assert (b.verdict, b.explained, b.gaps) == ("partial", True, [(S0, S0 + 4 * MIN)])
    assert (a.covered, b.covered) == (3 * MIN, 6 * MIN)


def test_a_join_between_split_files_is_not_a_gap() -> None:
    """issue 15.10: a fully recorded case whose camera split the recording (1 s between
    files) has no gaps, one join; a real gap stays a gap."""
    rows = [
        ("k1", clip("A", S0, S0 + 5 * MIN)),
        ("k2", clip("A", S0 + 5 * MIN + S, E0)),
        ("k3", clip("B", S0, S0 + 5 * MIN)),
        ("k4", clip("B", S0 + 5 * MIN + 6 * S, E0)),
    ]
    placed = place_clips(rows, ClockTable([]), Ledger([]))
    a, b = audit_case(case("C", S0, E0, "A", "B"), Rules(), placed)
    assert (a.verdict, a.gaps, a.joins) == ("full", [], [(S0 + 5 * MIN, S0 + 5 * MIN + S)])
    assert (b.verdict, b.gaps, b.joins) == ("partial", [(S0 + 5 * MIN, S0 + 5 * MIN + 6 * S)], [])


def test_footage_helpers() -> None:
    f = Footage.build([(10, 20), (15, 30), (33, 40), (50, 50), (60, 70)], max_gap=3)
    assert (f.ustarts, f.uends) == ([10, 33, 60], [30, 40, 70])
    assert (f.mstarts, f.mends) == ([10, 60], [40, 70])
    assert f.covered(0, 100) == 37 and f.covered(25, 35) == 7 and f.covered(5, 5) == 0
    assert f.covered_in([(0, 12), (25, 35)]) == 2 + 7
    assert f.gaps(0, 45) == [(0, 10), (30, 33), (40, 45)]
    # issue 15.10: the 3 ms hole between 30 and 33 is a join (one recording), not a gap
    assert f.holes(0, 45, 3) == ([(0, 10), (40, 45)], [(30, 33)])
    # a hole only partly in the window is judged by its whole length: 40..60 is a gap
    assert f.holes(31, 58, 3) == ([(40, 58)], [(31, 33)])
    assert f.holes(0, 45, 2) == ([(0, 10), (30, 33), (40, 45)], [])
    assert EMPTY_FOOTAGE.holes(0, 45, 3) == ([(0, 45)], [])
    g = Footage.from_lists([60, 10, 33], [70, 30, 40], 3, keep=True)
    assert (g.ustarts, g.clips) == ([10, 33, 60], [(10, 30), (33, 40), (60, 70)])
