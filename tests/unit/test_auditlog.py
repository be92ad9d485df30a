"""The audit's input facts (bwc.evidence.auditlog): digests and the fold of logged events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bwc.evidence import auditlog as al

pytestmark = pytest.mark.unit

T = datetime(2026, 10, 15, 1, 30, tzinfo=UTC)


def test_facts_change_with_every_value_the_audit_uses() -> None:
    base = al.case_fact("C1", "x", "u", T, T + timedelta(minutes=10), "loc", ["2", "1"])
    assert base == al.case_fact("C1", "x", "u", T, T + timedelta(minutes=10), "loc", ["1", "2"])
    assert base != al.case_fact("C1", "x", "u", T, T + timedelta(minutes=11), "loc", ["1", "2"])
    assert base != al.case_fact("C1", "x", "u", T, T + timedelta(minutes=10), "loc", ["1"])
    later = T + timedelta(microseconds=1)
    assert al.clock_fact(1, "D", 30_000, T) != al.clock_fact(1, "D", 30_000, later)
    assert al.clock_fact(1, "D", 30_000, T) != al.clock_fact(1, "D", 31_000, T)
    assert al.explanation_fact(3, "C1", "1", " battery ") == al.explanation_fact(
        3, "C1", "1", "battery"
    )
    assert al.officer_fact("1", "a", "u", "c", True) != al.officer_fact("1", "a", "u", "c", False)
    # the same instant in another zone is the same fact
    shanghai = T.astimezone(ZoneInfo("Asia/Shanghai"))
    assert al.assignment_fact("1", "D", T, None) == al.assignment_fact("1", "D", shanghai, None)


def test_fold_later_wins_and_seal_removes() -> None:
    k1, d1 = al.officer_fact("1", "a", "u", "c", True)
    _, d2 = al.officer_fact("1", "b", "u", "c", True)
    k3, d3 = al.officer_fact("3", "c", "u", "c", True)
    want = al.fold(
        [
            ("audit-input", {"table": "officers", "facts": [[k1, d1], [k3, d3]]}),
            ("audit-input", {"table": "officers", "facts": [[k1, d2]]}),
            ("audit-input", {"table": "officers", "facts": [[k3, None]]}),
            ("explained", {"explanation_id": 7, "case_id": "C", "officer_id": "1", "reason": "r"}),
            ("audit-input", {"table": "nonsense", "facts": [["x", "y"]]}),
        ]
    )
    assert want["officers"] == {k1: d2}
    assert want["explanations"] == {"7": al.explanation_fact(7, "C", "1", "r")[1]}


def test_large_writes_are_split_into_entries_that_fit_the_log() -> None:
    class St:
        def event(self, kind: str, item: object = None, **d: object) -> dict[str, object]:
            return {"kind": kind, **d}

    facts = [al.case_fact(f"C{i:06d}", "x", "u", T, T, "", ["1"]) for i in range(5000)]
    evs = al.events(St(), "cases", facts, source="import", file_sha256="ab", rows=5000)  # type: ignore[arg-type]
    assert len(evs) > 1
    parts = [e["facts"] for e in evs]  # type: ignore[index]
    assert sum(len(p) for p in parts) == 5000  # type: ignore[arg-type]
    assert all(e["parts"] == len(evs) and e["rows"] == 5000 for e in evs)  # type: ignore[index]
