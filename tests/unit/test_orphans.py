"""The sorted merge that finds store objects the catalog does not know (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bwc.evidence.orphans import unknown_objects

pytestmark = pytest.mark.unit

T = datetime(2026, 10, 15, tzinfo=UTC)
ids = st.lists(st.text("0123456789abcdef", min_size=4, max_size=4), unique=True).map(sorted)


def test_merge_names_only_the_unknown() -> None:
    listed = [(s, T) for s in ("01", "02", "05", "09", "ff")]
    assert [s for s, _ in unknown_objects(listed, ["02", "03", "09"])] == ["01", "05", "ff"]
    assert list(unknown_objects([], ["01"])) == []
    assert [s for s, _ in unknown_objects(listed, [])] == ["01", "02", "05", "09", "ff"]


@given(ids, ids)
def test_merge_is_a_set_difference(store: list[str], catalog: list[str]) -> None:
    got = [s for s, _ in unknown_objects(((s, T) for s in store), iter(catalog))]
    assert got == sorted(set(store) - set(catalog))
