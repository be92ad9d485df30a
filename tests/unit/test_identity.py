"""``identity.mismatch``: which claims of a device id disagree with what a camera's USB serial
was first seen as, and how that is said."""

from __future__ import annotations

import pytest

from bwc.ingest.identity import mismatch

pytestmark = pytest.mark.unit


def test_agreeing_or_absent_claims_are_no_mismatch() -> None:
    assert mismatch("S1", "DSJ0042", {"profile": "DSJ0042", "id-file": "DSJ0042"}) is None
    assert mismatch("S1", "DSJ0042", {"profile": None, "id-file": None}) is None
    assert mismatch("S1", "DSJ0042", {}) is None


def test_each_disagreeing_claim_is_named_with_where_it_came_from() -> None:
    assert mismatch("S1", "DSJ0042", {"id-file": "DSJ0099"}) == (
        "the camera with USB serial S1 was first seen as device DSJ0042, the id file says DSJ0099"
    )
    both = mismatch("S1", "DSJ0042", {"profile": "DSJ0007", "id-file": "DSJ0099"})
    assert both == (
        "the camera with USB serial S1 was first seen as device DSJ0042, "
        "the id file says DSJ0099 and its file name says DSJ0007"
    )
    # only the claim that disagrees is named
    one = mismatch("S1", "DSJ0042", {"profile": "DSJ0042", "id-file": "DSJ0099"})
    assert one is not None and "file name" not in one
