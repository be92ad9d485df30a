"""Which manifest the custody log says an item has: the last intake or re-attribution's
`manifest_sha256`, never another event's (an `exported` event names the manifest it handed
over; a forged or mistaken one must not become the manifest `bwc verify` checks against)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bwc.evidence.events import DecodedEvent
from bwc.evidence.verify.core import item_facts

pytestmark = pytest.mark.unit

_AT = datetime(2026, 10, 15, 1, 30, tzinfo=UTC)


def _ev(index: int, kind: str, **details: Any) -> DecodedEvent:
    return DecodedEvent(index, kind, _AT, "clerk", "st-1", "ab" * 32, details)


def test_only_intake_and_attribution_decide_the_manifest() -> None:
    events = [
        _ev(0, "ingested", manifest_sha256="1" * 64),
        _ev(1, "exported", bundle="b", manifest_sha256="2" * 64),
        _ev(2, "viewed", manifest_sha256="3" * 64),
    ]
    assert item_facts(events).manifest_sha256 == "1" * 64
    events.append(_ev(3, "attributed", officer_id="110023", manifest_sha256="4" * 64))
    events.append(_ev(4, "exported", bundle="c", manifest_sha256="5" * 64))
    facts = item_facts(events)
    assert facts.manifest_sha256 == "4" * 64
    assert facts.officer == "110023" and facts.attributed


def test_no_intake_means_no_logged_manifest() -> None:
    assert item_facts([_ev(0, "exported", manifest_sha256="2" * 64)]).manifest_sha256 is None
