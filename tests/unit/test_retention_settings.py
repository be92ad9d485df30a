"""The `[retention]` and `[s3]` settings: defaults, the legal minimums, every bad value named."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bwc.config.settings import (
    PERMANENT_CLASSES,
    RetentionClass,
    RetentionSettings,
    S3Settings,
    parse_period,
    render_default_config,
    validate,
)
from bwc.errors import HomeError

pytestmark = pytest.mark.unit


def settings(tmp_path: Path, **raw: Any) -> Any:
    return validate(tmp_path, {"station_id": "st-01", **raw})


def invalid(tmp_path: Path, **raw: Any) -> str:
    with pytest.raises(HomeError) as info:
        settings(tmp_path, **raw)
    return str(info.value)


def test_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.s3 == S3Settings(
        multipart_threshold_mb=100, part_size_mb=16, concurrency=4, retry_seconds=60.0
    )
    r = s.retention
    assert r == RetentionSettings()
    assert r.default_class == RetentionClass("standard", months=6)
    for name in PERMANENT_CLASSES:
        assert r.get(name) == RetentionClass(name, permanent=True)
    assert r.get("nonesuch") is None
    assert r.permanent_lock_years == 10


def test_rendered_config_states_the_defaults(tmp_path: Path) -> None:
    raw = tomllib.loads(render_default_config("st-01"))
    s = validate(tmp_path, raw)
    assert s.s3 == S3Settings() and s.retention == RetentionSettings()
    assert raw["retention"]["classes"]["major-incident"] == "permanent"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6 months", RetentionClass("x", months=6)),
        ("1 month", RetentionClass("x", months=1)),
        ("2 years", RetentionClass("x", months=24)),
        ("400 days", RetentionClass("x", days=400)),
        (" Permanent ", RetentionClass("x", permanent=True)),
    ],
)
def test_parse_period(text: str, expected: RetentionClass) -> None:
    assert parse_period("x", text) == expected


@pytest.mark.parametrize("text", ["six months", "6", "6 weeks", "-1 days", "", "forever"])
def test_bad_periods(text: str) -> None:
    with pytest.raises(ValueError, match="permanent"):
        parse_period("x", text)


def test_describe() -> None:
    assert RetentionClass("a", months=6).describe() == "6 months"
    assert RetentionClass("a", months=12).describe() == "1 year"
    assert RetentionClass("a", days=1).describe() == "1 day"
    assert RetentionClass("a", permanent=True).describe() == "permanent"


def test_classes_added_and_lengthened(tmp_path: Path) -> None:
    r = settings(
        tmp_path,
        retention={
            "default": "patrol",
            "permanent_lock_years": 30,
            "classes": {"standard": "1 year", "patrol": "200 days", "traffic": "2 years"},
        },
    ).retention
    assert r.default == "patrol" and r.permanent_lock_years == 30
    assert r.get("standard") == RetentionClass("standard", months=12)
    assert r.get("patrol") == RetentionClass("patrol", days=200)
    assert r.get("evidence") == RetentionClass("evidence", permanent=True)  # still there


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            {"classes": {"standard": "3 months"}},
            "retention.classes.standard: footage is kept at least 6 months",
        ),
        ({"classes": {"short": "100 days"}}, "retention.classes.short: footage is kept at least"),
        ({"classes": {"evidence": "10 years"}}, "retention.classes.evidence: must stay permanent"),
        ({"classes": {"Bad Name": "1 year"}}, "retention.classes.Bad Name: class names"),
        ({"classes": {"x": 12}}, "retention.classes.x: must be text"),
        ({"classes": {"x": "a while"}}, "retention.classes.x: must be"),
        ({"classes": ["standard"]}, "retention.classes: must be a table"),
        ({"default": "nonesuch"}, "retention.default: unknown class 'nonesuch'"),
        ({"default": 3}, "retention.default: must be a class name"),
        ({"permanent_lock_years": 0}, "retention.permanent_lock_years"),
        ({"permanent_lock_years": True}, "retention.permanent_lock_years"),
        ({"keep": 1}, "retention.keep: unknown setting"),
    ],
)
def test_bad_retention_settings(tmp_path: Path, raw: dict[str, Any], named: str) -> None:
    assert named in invalid(tmp_path, retention=raw)


def test_retention_must_be_a_table(tmp_path: Path) -> None:
    assert "retention: must be a table" in invalid(tmp_path, retention="6 months")


def test_s3_settings(tmp_path: Path) -> None:
    s3 = settings(
        tmp_path,
        s3={"part_size_mb": 64, "concurrency": 8, "retry_seconds": 5, "timeout_seconds": 7},
    ).s3
    assert s3 == S3Settings(part_size_mb=64, concurrency=8, retry_seconds=5.0, timeout_seconds=7)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"part_size_mb": 4}, "s3.part_size_mb: must be a whole number from 5 to 5120"),
        ({"part_size_mb": 16.5}, "s3.part_size_mb"),
        ({"concurrency": 0}, "s3.concurrency"),
        ({"concurrency": True}, "s3.concurrency"),
        ({"retry_seconds": -1}, "s3.retry_seconds: must be a number"),
        ({"timeout_seconds": 0}, "s3.timeout_seconds: must be a number from 1 to 3600"),
        ({"timeout_seconds": float("inf")}, "s3.timeout_seconds"),
        ({"endpoint": "http://x"}, "s3.endpoint: unknown setting"),
    ],
)
def test_bad_s3_settings(tmp_path: Path, raw: dict[str, Any], named: str) -> None:
    assert named in invalid(tmp_path, s3=raw)


def test_all_problems_at_once(tmp_path: Path) -> None:
    text = invalid(tmp_path, s3={"concurrency": 0}, retention={"classes": {"standard": "1 month"}})
    assert "s3.concurrency" in text and "retention.classes.standard" in text
