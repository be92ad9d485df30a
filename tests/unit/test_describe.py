"""describe(): device, officer and recorded times of a file, and where each came from.

Precedence: operator > name (profile) / id file > ledger (officer only). Start: the name,
else the container's creation_time; end = start + duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bwc.ingest.describe import describe
from bwc.ingest.profiles import IdFile, builtin_profiles

pytestmark = pytest.mark.unit

PROFILES = builtin_profiles()
CN = "DSJ0042_110023_20261015093012_0003.MP4"  # 01:30:12 UTC
DCIM = "DCIM/100MEDIA/20261015_093012_0003.MP4"  # 01:30:12 UTC
NAME_START = datetime(2026, 10, 15, 1, 30, 12, tzinfo=UTC)


def media(creation: str | None = None, duration_ms: Any = 2500) -> dict[str, Any]:
    return {
        "format": "mov,mp4",
        "streams": [],
        "duration_ms": duration_ms,
        "creation_time": creation,
    }


class Ledger:
    def __init__(self, officer: str | None) -> None:
        self.officer = officer
        self.calls: list[tuple[str, datetime]] = []

    def __call__(self, device: str, at: datetime) -> str | None:
        self.calls.append((device, at))
        return self.officer


# ------------------------------------------------------------------------------ who


def test_operator_beats_everything() -> None:
    ledger = Ledger("LEDGER")
    d = describe(
        CN,
        profiles=PROFILES,
        id_file=IdFile("IDDEV", "IDOFF"),
        media=media(),
        operator_officer="OPOFF",
        operator_device="OPDEV",
        ledger=ledger,
    )
    assert (d.device_id, d.device_source) == ("OPDEV", "operator")
    assert (d.officer_id, d.officer_source) == ("OPOFF", "operator")
    assert ledger.calls == []
    assert d.profile == "cn-standard"  # the name still gives the time
    assert d.recorded_start == NAME_START


def test_operator_officer_only_keeps_device_from_name() -> None:
    d = describe(CN, profiles=PROFILES, id_file=None, media=None, operator_officer="OPOFF")
    assert (d.device_id, d.device_source) == ("DSJ0042", "profile")
    assert (d.officer_id, d.officer_source) == ("OPOFF", "operator")


def test_name_beats_id_file_and_ledger() -> None:
    ledger = Ledger("LEDGER")
    d = describe(CN, profiles=PROFILES, id_file=IdFile("IDDEV", "IDOFF"), media=None, ledger=ledger)
    assert (d.device_id, d.device_source) == ("DSJ0042", "profile")
    assert (d.officer_id, d.officer_source) == ("110023", "profile")
    assert ledger.calls == []


def test_id_file_beats_ledger() -> None:
    ledger = Ledger("LEDGER")
    d = describe(
        DCIM, profiles=PROFILES, id_file=IdFile("DSJ0100", "220044"), media=None, ledger=ledger
    )
    assert (d.device_id, d.device_source) == ("DSJ0100", "id-file")
    assert (d.officer_id, d.officer_source) == ("220044", "id-file")
    assert d.profile == "dcim"
    assert ledger.calls == []


def test_id_file_for_a_name_no_profile_knows() -> None:
    d = describe(
        "GPS/GPS0001.csv", profiles=PROFILES, id_file=IdFile("DSJ0100", "220044"), media=None
    )
    assert (d.device_id, d.device_source) == ("DSJ0100", "id-file")
    assert (d.officer_id, d.officer_source) == ("220044", "id-file")
    assert d.profile is None and d.recorded_start is None and d.start_source == "unknown"


def test_ledger_attributes_at_the_recorded_start() -> None:
    ledger = Ledger("330055")
    d = describe(
        DCIM, profiles=PROFILES, id_file=IdFile("DSJ0200", None), media=None, ledger=ledger
    )
    assert (d.officer_id, d.officer_source) == ("330055", "ledger")
    assert ledger.calls == [("DSJ0200", NAME_START)]  # UTC, from the name


def test_ledger_at_the_container_start() -> None:
    ledger = Ledger("330055")
    d = describe(
        "MOV0001.MP4",
        profiles=PROFILES,
        id_file=IdFile("DSJ0200", None),
        media=media("2026-10-15T04:00:00Z"),
        ledger=ledger,
    )
    assert d.officer_id == "330055"
    assert ledger.calls == [("DSJ0200", datetime(2026, 10, 15, 4, 0, tzinfo=UTC))]


def test_ledger_without_an_entry_leaves_it_unattributed() -> None:
    ledger = Ledger(None)
    d = describe(
        DCIM, profiles=PROFILES, id_file=IdFile("DSJ0300", None), media=None, ledger=ledger
    )
    assert (d.officer_id, d.officer_source) == (None, None)
    assert ledger.calls == [("DSJ0300", NAME_START)]


def test_ledger_needs_a_device_and_a_start() -> None:
    ledger = Ledger("330055")
    # no device anywhere
    d = describe(DCIM, profiles=PROFILES, id_file=None, media=None, ledger=ledger)
    assert d.officer_id is None and d.device_id is None
    # a device but no time
    d = describe(
        "notes.txt", profiles=PROFILES, id_file=IdFile("D", None), media=None, ledger=ledger
    )
    assert d.officer_id is None
    assert ledger.calls == []


def test_ledger_uses_the_operator_device() -> None:
    ledger = Ledger("330055")
    d = describe(
        DCIM, profiles=PROFILES, id_file=None, media=None, operator_device="DSJ9", ledger=ledger
    )
    assert d.officer_id == "330055"
    assert ledger.calls == [("DSJ9", NAME_START)]


# ------------------------------------------------------------------------------ when


def test_start_from_name_beats_container() -> None:
    d = describe(CN, profiles=PROFILES, id_file=None, media=media("2030-01-01T00:00:00Z", 2500))
    assert d.recorded_start == NAME_START and d.start_source == "profile"
    assert d.recorded_end == NAME_START + timedelta(milliseconds=2500)


def test_start_from_container_when_the_name_has_none() -> None:
    d = describe(
        "MOV0001.MP4", profiles=PROFILES, id_file=None, media=media("2026-10-15T01:30:00Z")
    )
    start = datetime(2026, 10, 15, 1, 30, tzinfo=UTC)
    assert d.recorded_start == start and d.start_source == "container"
    assert d.recorded_end == start + timedelta(milliseconds=2500)
    assert d.profile is None


def test_start_from_container_when_the_name_time_is_bad() -> None:
    d = describe(
        "DSJ0042_110023_20261345093012_0003.MP4",
        profiles=PROFILES,
        id_file=None,
        media=media("2026-10-15T01:30:00Z", 1000),
    )
    assert d.profile == "cn-standard" and d.officer_id == "110023"
    assert d.start_source == "container"
    assert d.recorded_start == datetime(2026, 10, 15, 1, 30, tzinfo=UTC)
    assert d.recorded_end == datetime(2026, 10, 15, 1, 30, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "m",
    [
        None,
        media(None),
        media("not a time"),
        {"format": "x", "streams": []},
    ],
)
def test_no_start(m: dict[str, Any] | None) -> None:
    d = describe("MOV0001.MP4", profiles=PROFILES, id_file=None, media=m)
    assert d.recorded_start is None and d.recorded_end is None
    assert d.start_source == "unknown"


@pytest.mark.parametrize("duration", [None, "2500", 2.5])
def test_no_end_without_an_integer_duration(duration: Any) -> None:
    d = describe(CN, profiles=PROFILES, id_file=None, media=media(None, duration))
    assert d.recorded_start == NAME_START and d.recorded_end is None


def test_zero_duration_ends_at_start() -> None:
    d = describe(CN, profiles=PROFILES, id_file=None, media=media(None, 0))
    assert d.recorded_end == NAME_START


def test_end_from_axis_utc_name() -> None:
    rel = "110099_AXW1234_20261015T020000Z/20261015_020000_REC42.mkv"
    d = describe(rel, profiles=PROFILES, id_file=None, media=media(None, 61_500))
    assert d.recorded_start == datetime(2026, 10, 15, 2, 0, tzinfo=UTC)
    assert d.recorded_end == datetime(2026, 10, 15, 2, 1, 1, 500_000, tzinfo=UTC)
    assert (d.device_id, d.officer_id) == ("AXW1234", "110099")
