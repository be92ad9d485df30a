"""Issue 15, point 4: one form of local time for people (``timefmt.format_local``), with the
configured zone's offset at that instant; and the one offset a table header may state."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bwc.evidence.timefmt import common_offset, format_local, zone_label

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")  # daylight saving: +02:00 in summer, +01:00 in winter


@pytest.mark.parametrize(
    ("utc", "tz", "text"),
    [
        (datetime(2026, 10, 15, 1, 30, tzinfo=UTC), SHANGHAI, "2026-10-15 09:30:00 +08:00"),
        (datetime(2026, 10, 15, 1, 30, tzinfo=UTC), BERLIN, "2026-10-15 03:30:00 +02:00"),
        (datetime(2026, 12, 15, 1, 30, tzinfo=UTC), BERLIN, "2026-12-15 02:30:00 +01:00"),
        (datetime(2026, 10, 15, 1, 30, 5, 250, tzinfo=UTC), UTC, "2026-10-15 01:30:05 +00:00"),
        (
            datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
            ZoneInfo("America/Sao_Paulo"),
            "2025-12-31 21:00:00 -03:00",
        ),
        # a device clock at the end of time: shown in UTC rather than overflowing
        (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), SHANGHAI, "9999-12-31 23:00:00 +00:00"),
    ],
)
def test_format_local(utc: datetime, tz: ZoneInfo, text: str) -> None:
    assert format_local(utc, tz) == text


def test_format_local_short_forms() -> None:
    t = datetime(2026, 10, 15, 1, 30, 12, tzinfo=UTC)
    assert format_local(t, SHANGHAI, seconds=False) == "2026-10-15 09:30 +08:00"
    assert format_local(t, SHANGHAI, seconds=False, offset=False) == "2026-10-15 09:30"


def test_format_local_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_local(datetime(2026, 10, 15, 1, 30), SHANGHAI)


def test_common_offset_only_when_it_holds_for_every_row() -> None:
    summer = datetime(2026, 7, 1, tzinfo=UTC)
    winter = datetime(2026, 12, 1, tzinfo=UTC)
    assert common_offset([summer, summer], BERLIN) == "+02:00"
    assert common_offset([summer, winter], BERLIN) is None  # each row then shows its own
    assert common_offset([summer, winter], SHANGHAI) == "+08:00"
    assert common_offset([], SHANGHAI) is None
    assert zone_label(SHANGHAI, summer) == "Asia/Shanghai (UTC+08:00)"
    assert zone_label(BERLIN, winter) == "Europe/Berlin (UTC+01:00)"
