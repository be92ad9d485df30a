"""Retention rules as pure functions: dates, class changes, holds, what `retention apply`
decides, and the custody-log cross-check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bwc.config.settings import RetentionClass, RetentionSettings
from bwc.errors import UsageError
from bwc.evidence import retention as r

pytestmark = pytest.mark.unit

POLICY = RetentionSettings(
    classes=(
        *RetentionSettings().classes,
        RetentionClass("traffic", months=24),
        RetentionClass("long-days", days=400),
    )
)
T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
SHA = "ab" * 32


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (utc(2026, 1, 15), 6, utc(2026, 7, 15)),
        (utc(2026, 8, 31), 6, utc(2027, 3, 1)),  # no 31 February: round up, never short
        (utc(2026, 12, 31), 2, utc(2027, 3, 1)),
        (utc(2024, 2, 29), 12, utc(2025, 3, 1)),
        (utc(2026, 11, 30), 3, utc(2027, 3, 1)),
        (utc(2026, 7, 31), 5, utc(2026, 12, 31)),
    ],
)
def test_add_months(start: datetime, months: int, expected: datetime) -> None:
    assert r.add_months(start, months) == expected


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=0, max_value=1200),
)
def test_add_months_is_never_short(start: datetime, months: int) -> None:
    start = start.replace(tzinfo=UTC)
    end = r.add_months(start, months)
    # at least `months` calendar months: the same day-of-month or later, in the right month
    whole = (end.year - start.year) * 12 + end.month - start.month
    assert whole == months or (whole == months + 1 and end.day == 1)
    assert end >= start and (end - start).days <= months * 31 + 1
    assert end.time() == start.time()


def test_retain_until() -> None:
    assert r.retain_until(POLICY.default_class, T0) == utc(2026, 7, 15, 9, 30)
    assert r.retain_until(POLICY.get("evidence"), T0) is None  # type: ignore[arg-type]
    assert r.retain_until(POLICY.get("long-days"), T0) == T0 + timedelta(days=400)  # type: ignore[arg-type]


def test_is_later_treats_none_as_forever() -> None:
    assert r.is_later(None, T0) and not r.is_later(T0, None)
    assert not r.is_later(None, None) and not r.is_later(T0, T0)
    assert r.is_later(T0 + timedelta(seconds=1), T0)


def test_describe_and_parse_until_round_trip() -> None:
    for until in (None, T0, T0 + timedelta(microseconds=5)):
        assert r.parse_until(r.describe_until(until)) == until
    with pytest.raises(ValueError):
        r.parse_until(5)


def test_lock_target() -> None:
    now = T0
    assert r.lock_target(None, now, 10) == utc(2036, 1, 15, 9, 30)
    assert r.lock_target(now + timedelta(days=3), now, 10) == now + timedelta(days=3)
    assert r.lock_target(now - timedelta(days=3), now, 10) is None  # past: no lock
    assert r.lock_target(now, now, 10) is None
    odd = now + timedelta(days=1, microseconds=250)
    assert r.lock_target(odd, now, 10) == now + timedelta(days=1, seconds=1)  # rounded up


# ---------------------------------------------------------------------------- class changes


def state(**kw: object) -> r.ItemState:
    base = r.state_of(SHA, T0, POLICY)
    return r.ItemState(**{**base.__dict__, **kw})  # type: ignore[arg-type]


def test_unclassified_items_follow_the_default_class() -> None:
    s = r.state_of(SHA, T0, POLICY)
    assert (s.class_name, s.retain_until, s.classified) == (
        "standard",
        utc(2026, 7, 15, 9, 30),
        False,
    )
    s = r.state_of(SHA, T0, POLICY, class_name="evidence", retain=None, case_id="C-1")
    assert (s.class_name, s.retain_until, s.case_id, s.classified) == (
        "evidence",
        None,
        "C-1",
        True,
    )
    assert r.state_of(SHA, T0, POLICY, hold_reason="court").on_hold


def test_lengthening_is_allowed() -> None:
    ch = r.plan_change(state(), "evidence", POLICY, case_id="C-9", reason="assault", force=False)
    assert ch.lengthens and not ch.shortens
    assert (ch.old_class, ch.new_class, ch.new_until, ch.case_id) == (
        "standard",
        "evidence",
        None,
        "C-9",
    )
    ch = r.plan_change(state(), "traffic", POLICY, case_id=None, reason="appeal", force=False)
    assert ch.new_until == utc(2028, 1, 15, 9, 30)


def test_shortening_needs_force() -> None:
    permanent = state(class_name="evidence", retain_until=None, classified=True)
    with pytest.raises(UsageError, match="would shorten") as info:
        r.plan_change(permanent, "standard", POLICY, case_id=None, reason="x", force=False)
    assert info.value.exit_code == 2 and "--force" in str(info.value)
    ch = r.plan_change(permanent, "standard", POLICY, case_id=None, reason="x", force=True)
    assert ch.shortens and ch.forced
    two_years = state(class_name="traffic", retain_until=utc(2028, 1, 15, 9, 30), classified=True)
    with pytest.raises(UsageError, match="would shorten"):
        r.plan_change(two_years, "long-days", POLICY, case_id=None, reason="x", force=False)


def test_permanent_to_permanent_and_case_links() -> None:
    ev = state(class_name="evidence", retain_until=None, classified=True, case_id="C-1")
    ch = r.plan_change(ev, "obstruction", POLICY, case_id=None, reason="x", force=False)
    assert not ch.shortens and ch.case_id == "C-1"  # the case link is kept
    ch = r.plan_change(ev, "evidence", POLICY, case_id="C-2", reason="x", force=False)
    assert ch.case_id == "C-2"
    with pytest.raises(UsageError, match="already of class evidence linked to case C-1"):
        r.plan_change(ev, "evidence", POLICY, case_id=None, reason="x", force=False)


@pytest.mark.parametrize(
    ("kw", "cls", "reason", "message"),
    [
        ({}, "nonesuch", "x", "unknown retention class 'nonesuch'"),
        ({}, "evidence", " ", "a reason is required"),
        ({"deleted": True}, "evidence", "x", "deleted by retention policy"),
    ],
)
def test_bad_changes(kw: dict[str, object], cls: str, reason: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        r.plan_change(state(**kw), cls, POLICY, case_id=None, reason=reason, force=False)


def test_holds() -> None:
    r.check_hold(state(), "court", place=True)
    with pytest.raises(UsageError, match=r"already on legal hold \(court\)"):
        r.check_hold(state(on_hold=True, hold_reason="court"), "again", place=True)
    with pytest.raises(UsageError, match="not on legal hold"):
        r.check_hold(state(), "x", place=False)
    with pytest.raises(UsageError, match="reason is required"):
        r.check_hold(state(), "", place=True)
    with pytest.raises(UsageError, match="deleted"):
        r.check_hold(state(deleted=True), "x", place=True)


# ---------------------------------------------------------------------------- decide


def test_decide() -> None:
    now = utc(2026, 8, 1)
    states = [
        state(sha256="01" * 32),  # due on 2026-07-15: delete
        state(sha256="02" * 32, on_hold=True, hold_reason="court"),  # due but held: keep
        state(sha256="03" * 32, ingested_at=utc(2026, 3, 1), retain_until=utc(2026, 9, 1)),
        state(sha256="04" * 32, deleted=True),  # already gone
        state(sha256="05" * 32, class_name="evidence", retain_until=None, classified=True),
        state(
            sha256="06" * 32,
            class_name="evidence",
            retain_until=None,
            lock_until=utc(2030, 1, 1),
        ),
        state(
            sha256="07" * 32,
            class_name="evidence",
            retain_until=None,
            lock_until=utc(2027, 3, 1),
        ),
    ]
    got = {d.sha256[:2]: d for d in r.decide(states, now, POLICY, store_locks=True)}
    assert {k: d.action for k, d in got.items()} == {
        "01": r.DELETE,
        "02": r.KEEP,
        "05": r.EXTEND,  # permanent, no lock recorded
        "07": r.EXTEND,  # lock ends in less than a year
    }
    assert got["01"].reason == (
        "class standard: retained until 2026-07-15T09:30:00Z (16 days ago), not on hold"
    )
    assert "on legal hold (court)" in got["02"].reason
    assert got["07"].lock_until == utc(2036, 8, 1)
    # without Object Lock there is nothing to extend
    plain = r.decide(states, now, POLICY, store_locks=False)
    assert {d.sha256[:2] for d in plain} == {"01", "02"}
    # a clock before the date: nothing is due
    assert r.decide(states[:1], utc(2026, 7, 15, 9, 29), POLICY, store_locks=False) == []
    assert r.decide(states[:1], utc(2026, 7, 15, 9, 30), POLICY, store_locks=False)


def test_due_before_is_a_safe_bound() -> None:
    now = utc(2026, 8, 31)
    bound = r.due_before(POLICY, now)
    # anything due now was ingested at or before the bound
    for days in range(0, 400):
        ingested = now - timedelta(days=days)
        if r.retain_until(POLICY.default_class, ingested) <= now:  # type: ignore[operator]
            assert ingested <= bound


# ---------------------------------------------------------------------------- the log


def test_replay_and_cross_check() -> None:
    events = [
        ("ingested", {}),
        (
            "retention-changed",
            {"from": "standard", "to": "evidence", "case": "C-1", "retain_until": "permanent"},
        ),
        ("hold-placed", {"reason": "court"}),
        ("hold-released", {"reason": "done"}),
        ("hold-placed", {"reason": "again"}),
    ]
    logged = r.replay(events)
    assert logged == r.Logged("evidence", None, "C-1", on_hold=True, deleted=False)
    good = state(
        class_name="evidence", retain_until=None, classified=True, case_id="C-1", on_hold=True
    )
    assert r.differs_from_log(good, logged) is None
    tampered = state(classified=True, on_hold=True)  # class set back to standard in the catalog
    assert "catalog class standard, logged evidence" in (r.differs_from_log(tampered, logged) or "")
    recased = state(
        class_name="evidence", retain_until=None, classified=True, case_id="C-2", on_hold=True
    )
    assert "catalog case C-2, logged C-1" in (r.differs_from_log(recased, logged) or "")
    released = state(class_name="evidence", retain_until=None, classified=True)
    assert "on legal hold" in (r.differs_from_log(released, logged) or "")
    # never classified: the default class is what both say
    assert r.differs_from_log(state(), r.replay([("ingested", {})])) is None
    assert "logged (default)" in (r.differs_from_log(state(classified=True), r.Logged()) or "")
    assert r.replay([("deleted-by-policy", {})]).deleted
    # an unclassified item deleted by policy: its record keeps the class it went under
    gone = r.replay(
        [("deleted-by-policy", {"class": "standard", "retain_until": r.describe_until(T0)})]
    )
    assert r.differs_from_log(state(classified=True, deleted=True, retain_until=T0), gone) is None
