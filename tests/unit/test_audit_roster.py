"""Officers who left (issue 15.16), the pure parts: the roster's `active` column, the
custody-log fact of an inactive officer, who counts as staff in a month's equipage rate."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bwc.audit.engine import run_audit
from bwc.audit.metrics import aggregate
from bwc.audit.model import Assignment, Case, Officer, Period, Rules, to_ms
from bwc.audit.parse import parse_rows
from bwc.evidence import auditlog as al

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
OCT = Period(2026, 10, "Asia/Shanghai")
M0, M1 = OCT.bounds_ms()
T = datetime(2026, 10, 20, tzinfo=UTC)


def test_active_column_is_optional_and_read_as_yes_or_no() -> None:
    head = "officer_id,name,unit,county,frontline"
    rows, problems = parse_rows("officers", f"{head}\n1,a,u,c,是\n".encode(), tz=SH)
    assert not problems and rows[0].active is None  # not said: the import decides
    text = f"{head},active\n1,a,u,c,是,否\n2,b,u,c,是,yes\n3,c,u,c,是,\n4,d,u,c,是,0\n"
    rows, problems = parse_rows("officers", text.encode(), tz=SH)
    assert not problems
    assert [r.active for r in rows] == [False, True, None, False]  # type: ignore[union-attr]
    rows, problems = parse_rows("officers", f"{head},active\n1,a,u,c,是,maybe\n".encode(), tz=SH)
    assert [(p.line, p.message) for p in problems] == [
        (2, "active: 'maybe' is not true/false/1/0/是/否")
    ]
    js = b'[{"officer_id":"1","name":"a","unit":"u","county":"c","frontline":true,"active":false}]'
    rows, problems = parse_rows("officers", js, tz=SH, fmt="json")
    assert not problems and rows[0].active is False  # type: ignore[union-attr]


def test_an_active_officers_fact_is_unchanged() -> None:
    """Facts logged before officers could leave must still verify: an active officer
    digests exactly as before (name, unit, county, frontline)."""
    old = ("1", al.digest(["a", "u", "c", True]))
    assert al.officer_fact("1", "a", "u", "c", True) == old
    assert al.officer_fact("1", "a", "u", "c", True, True, None, None) == old
    left = al.officer_fact("1", "a", "u", "c", True, False, T, "调离")
    assert left != old
    assert left != al.officer_fact("1", "a", "u", "c", True, False, None, "调离")
    assert left != al.officer_fact("1", "a", "u", "c", True, False, T, "退休")
    assert left != al.officer_fact("1", "a", "u", "c", True, True, T, "调离")


@pytest.mark.parametrize(
    ("active", "since", "staff"),
    [
        (True, None, True),
        (False, None, False),  # left, no date: never staff
        (False, M0, False),  # inactive from the month's first instant: the whole month
        (False, M0 - 1, False),
        (False, M0 + 1, True),  # left during the month: staff for part of it
        (False, M1 + 1, True),
    ],
)
def test_on_staff(active: bool, since: int | None, staff: bool) -> None:
    assert Officer("1", "a", "u", "c", True, active, since).on_staff(M0) is staff


def test_equipage_counts_current_staff_and_cases_still_count() -> None:
    day = to_ms(datetime(2026, 10, 15, 9, tzinfo=SH))
    officers = [
        Officer("A", "a", "u", "c", True),
        Officer("B", "b", "u", "c", True, False, M0),  # left before October
        Officer("C", "c", "u", "c", True, False, day),  # left in October
    ]
    result = run_audit(
        OCT,
        Rules(),
        officers=officers,
        cases=[Case("K", "", "u", day - 3_600_000, day - 3_000_000, "", ("B",))],
        clips=[],
        assignments=[Assignment(o.officer_id, "D", M0 - 1, None) for o in officers],
        clocks=[],
        explanations=set(),
    )
    m = aggregate("all", list(result.officers.values()))
    assert (m.frontline, m.equipped) == (2, 2)  # A and C
    assert (m.cases, m.none) == (1, 1)  # B's case counts: B did the work
    assert not result.officers["B"].on_staff
