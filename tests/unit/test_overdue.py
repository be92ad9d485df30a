"""Issue 15 item 8: the rule for cameras that should have docked (bwc.evidence.overdue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bwc.evidence.overdue import Checkout, Dock, overdue_now, stretches

pytestmark = pytest.mark.unit

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
DAY = 24 * H


def at(hours: float) -> datetime:
    return T0 + hours * H


def now_overdue(checkouts: list[Checkout], docks: list[Dock], hours: float) -> list[str]:
    return [
        f"{s.device_id}/{s.officer_id} {s.hours:g}h {'checkout' if s.since_checkout else 'dock'}"
        for s in overdue_now(checkouts, docks, now=at(hours), limit=DAY)
    ]


HELD = [Checkout("D-1", "1001", T0, None)]


def test_never_docked_counts_from_the_checkout_and_exactly_the_limit_is_not_overdue() -> None:
    assert now_overdue(HELD, [], 24) == []
    assert now_overdue(HELD, [], 24 + 1 / 3600) == ["D-1/1001 24.0003h checkout"]
    assert now_overdue(HELD, [], 30) == ["D-1/1001 30h checkout"]
    assert now_overdue(HELD, [], -1) == []  # not yet checked out


def test_counted_from_the_end_of_the_last_dock() -> None:
    docked = [Dock("D-1", at(10), at(11)), Dock("D-1", at(20), at(21))]
    assert now_overdue(HELD, docked, 45) == []  # 24 h after the last dock ended
    assert now_overdue(HELD, docked, 46) == ["D-1/1001 25h dock"]
    # a dock of another camera, or one before the checkout, does not count
    other = [Dock("D-2", at(20), at(21)), Dock("D-1", at(-5), at(-4))]
    assert now_overdue(HELD, other, 30) == ["D-1/1001 30h checkout"]


def test_docked_now_is_never_overdue() -> None:
    assert now_overdue(HELD, [Dock("D-1", at(1), None)], 100) == []


def test_a_returned_checkout_is_not_overdue_now() -> None:
    returned = [Checkout("D-1", "1001", T0, at(30))]
    assert now_overdue(returned, [], 40) == []
    assert now_overdue(returned, [], 29) == ["D-1/1001 29h checkout"]
    # ... but the audit lists its stretch: returned after 30 h without a dock
    (s,) = stretches(returned, [], start=at(0), end=at(40), limit=DAY)
    assert (s.since, s.until, s.hours) == (T0, at(30), 30)


def test_stretches_of_a_window() -> None:
    docks = [Dock("D-1", at(30), at(31)), Dock("D-1", at(40), at(41))]
    found = stretches(HELD, docks, start=at(0), end=at(100), limit=DAY)
    assert [(s.since, s.until, s.since_checkout) for s in found] == [
        (T0, at(30), True),  # 30 h from the checkout to the first dock
        (at(41), None, False),  # 59 h since the last dock, still not docked at the end
    ]
    # a stretch overdue only before the window is not the window's
    assert stretches(HELD, docks, start=at(31), end=at(40), limit=DAY) == []
    # one that becomes overdue after the window's end neither
    assert stretches(HELD, docks, start=at(41), end=at(60), limit=DAY) == []
    assert len(stretches(HELD, docks, start=at(41), end=at(66), limit=DAY)) == 1


def test_each_checkout_of_a_shared_camera_for_its_officer() -> None:
    shared = [Checkout("D-1", "1001", T0, at(10)), Checkout("D-1", "1002", at(10), None)]
    assert now_overdue(shared, [], 40) == ["D-1/1002 30h checkout"]
