"""The checks of bwc.config.limits: what an identifier may be, and a duration in seconds."""

from __future__ import annotations

import pytest

from bwc.config import limits
from bwc.errors import UsageError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("DSJ0042", None),
        ("x" * limits.ID_MAX, None),
        ("执法记录仪-01", None),
        ("", "is empty"),
        ("   ", "is empty"),
        ("x" * (limits.ID_MAX + 1), "is 129 characters long (at most 128)"),
        ("DSJ\x000042", "contains a control character ('\\x00')"),
        ("DSJ\n0042", "contains a control character ('\\n')"),
        ("DSJ\udcff", "contains bytes that are not UTF-8 text"),
    ],
)
def test_text_problem(value: str, problem: str | None) -> None:
    assert limits.text_problem(value) == problem


def test_require_id_names_what_it_checked() -> None:
    assert limits.require_id("110023", "--officer") == "110023"
    with pytest.raises(UsageError, match=r"^--officer is 200 characters long"):
        limits.require_id("9" * 200, "--officer")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (0.0, True),
        (5.5, True),
        (limits.SECONDS_MAX, True),
        (limits.SECONDS_MAX + 1, False),
        (-0.5, False),
        (float("inf"), False),
        (float("-inf"), False),
        (float("nan"), False),
    ],
)
def test_seconds_problem(value: float, ok: bool) -> None:
    assert (limits.seconds_problem(value) is None) == ok
