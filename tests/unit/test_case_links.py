"""The fold of an item's custody events into its case links (bwc.evidence.verify.core):
what `bwc verify`'s ``cases`` check and `items_of_case` compare the catalog's links with."""

from __future__ import annotations

from typing import Any

import pytest

from bwc.evidence.events import DecodedEvent
from bwc.evidence.retention import replay
from bwc.evidence.timefmt import parse_utc
from bwc.evidence.verify.core import case_link_problems, logged_cases

pytestmark = pytest.mark.unit

SHA = "ab" * 32
T = parse_utc("2026-10-15T01:00:00Z")


def ev(i: int, kind: str, item: str = SHA, **d: Any) -> DecodedEvent:
    return DecodedEvent(i, kind, T, "clerk", "st", item, d)


def test_legacy_retention_case_is_the_last_one() -> None:
    """Before links had events, `classify --case` kept one case, the last given: 0009
    links that one, and the fold agrees."""
    legacy = [
        ev(0, "ingested"),
        ev(1, "retention-changed", case="OLD-1"),
        ev(2, "retention-changed", case="OLD-2"),
        ev(3, "retention-changed", case=None),  # a classify without --case keeps it
    ]
    assert logged_cases(legacy) == {"OLD-2"}
    assert case_link_problems(SHA, {"OLD-2"}, legacy) == []
    (problem,) = case_link_problems(SHA, {"OLD-1", "OLD-2"}, legacy)
    assert "'OLD-1' in the catalog has no `case-linked`" in problem


def test_links_and_unlinks() -> None:
    events = [
        ev(0, "ingested"),
        ev(1, "retention-changed", case="A"),
        ev(2, "case-linked", case="A"),
        ev(3, "case-linked", case="B"),
        ev(4, "case-unlinked", case="A"),  # also the retention case: gone
        ev(5, "retention-changed", case=None),
        ev(6, "viewed", what="case-show", case="C"),  # a view links nothing
        ev(7, "case-linked", item="cd" * 32, case="D"),  # another item's
    ]
    assert logged_cases(events[:7]) == {"B"}
    assert case_link_problems(SHA, {"B"}, events) == []
    (problem,) = case_link_problems(SHA, set(), events)
    assert "'B' is in the custody log but missing from the catalog" in problem
    # retention folds the same unlink: the class's case is cleared with the link
    assert replay((e.kind, e.details) for e in events[:6]).case_id is None
    assert replay((e.kind, e.details) for e in events[:4]).case_id == "A"
