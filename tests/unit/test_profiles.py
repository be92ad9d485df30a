"""Recorder profiles: device, officer and recording start from a camera's paths."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bwc.config.settings import validate
from bwc.errors import HomeError
from bwc.ingest.profiles import (
    IdFile,
    all_profiles,
    builtin_profiles,
    compile_profile,
    match_path,
    parse_id_file,
    parse_start,
    station_profiles,
)

pytestmark = pytest.mark.unit

BUILTIN = builtin_profiles()


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


# ------------------------------------------------------------------------------ cn-standard


@pytest.mark.parametrize(
    "rel",
    [
        "DSJ0042_110023_20261015093012_0003.MP4",
        "DCIM/100MEDIA/DSJ0042_110023_20261015093012_0003.MP4",
        "Record/2026-10-15/DSJ0042_110023_20261015093012_0003.mp4",
    ],
)
def test_cn_standard_anywhere_under_the_mount(rel: str) -> None:
    info = match_path(BUILTIN, rel, None)
    assert info is not None
    assert info.profile == "cn-standard"
    assert (info.device_id, info.officer_id, info.seq) == ("DSJ0042", "110023", "0003")
    assert (info.device_source, info.officer_source) == ("profile", "profile")
    # device-local Asia/Shanghai (UTC+8) -> UTC
    assert info.start == at(2026, 10, 15, 1, 30, 12)


def test_cn_standard_name_beats_the_id_file() -> None:
    info = match_path(
        BUILTIN, "DSJ0042_110023_20261015093012_0003.MP4", IdFile("OTHERDEV", "999999")
    )
    assert info is not None
    assert (info.device_id, info.officer_id) == ("DSJ0042", "110023")


def test_cn_standard_across_midnight_utc() -> None:
    info = match_path(BUILTIN, "DSJ0042_110023_20261016073000_0001.MP4", None)
    assert info is not None and info.start == at(2026, 10, 15, 23, 30, 0)


def test_local_zone_is_configurable() -> None:
    info = match_path(builtin_profiles("UTC"), "DSJ0042_110023_20261015093012_0003.MP4", None)
    assert info is not None and info.start == at(2026, 10, 15, 9, 30, 12)
    info = match_path(
        builtin_profiles("Asia/Urumqi"), "DSJ0042_110023_20261015093012_0003.MP4", None
    )
    assert info is not None and info.start == at(2026, 10, 15, 3, 30, 12)


# ------------------------------------------------------------------------------ dcim


def test_dcim_with_id_file() -> None:
    info = match_path(
        BUILTIN, "DCIM/100MEDIA/20261015_093012_0003.MP4", IdFile("DSJ0100", "220044")
    )
    assert info is not None
    assert info.profile == "dcim"
    assert (info.device_id, info.officer_id, info.seq) == ("DSJ0100", "220044", "0003")
    assert (info.device_source, info.officer_source) == ("id-file", "id-file")
    assert info.start == at(2026, 10, 15, 1, 30, 12)


def test_dcim_without_id_file_has_time_only() -> None:
    info = match_path(BUILTIN, "DCIM/100MEDIA/20261015_093012_0003.JPG", None)
    assert info is not None and info.profile == "dcim"
    assert (info.device_id, info.officer_id) == (None, None)
    assert (info.device_source, info.officer_source) == (None, None)
    assert info.start == at(2026, 10, 15, 1, 30, 12)


def test_dcim_id_file_with_device_only() -> None:
    info = match_path(BUILTIN, "DCIM/100MEDIA/20261015_093012_0003.MP4", IdFile("DSJ0100", None))
    assert info is not None
    assert (info.device_id, info.officer_id) == ("DSJ0100", None)
    assert (info.device_source, info.officer_source) == ("id-file", None)


@pytest.mark.parametrize(
    "rel",
    [
        "DCIM/20261015_093012_0003.MP4",  # no folder under DCIM
        "100MEDIA/20261015_093012_0003.MP4",  # not under DCIM
        "X/DCIM/100MEDIA/20261015_093012_0003.MP4",  # DCIM not at the mount root
        "DCIM/100MEDIA/2026101_093012_0003.MP4",
    ],
)
def test_dcim_needs_its_layout(rel: str) -> None:
    assert match_path(BUILTIN, rel, IdFile("DSJ0100", "220044")) is None


# ------------------------------------------------------------------------------ axis


@pytest.mark.parametrize("ext", ["mkv", "mp4", "MKV", "MP4"])
def test_axis_is_utc(ext: str) -> None:
    rel = f"110099_AXW1234_20261015T020000Z/20261015_020512_REC42.{ext}"
    info = match_path(BUILTIN, rel, IdFile("IGNORED", "IGNORED"))
    assert info is not None
    assert info.profile == "axis"
    assert (info.officer_id, info.device_id, info.seq) == ("110099", "AXW1234", "REC42")
    assert info.start == at(2026, 10, 15, 2, 5, 12)  # UTC: no shift


def test_axis_in_a_sub_folder_and_unknown_extension() -> None:
    rel = "export/110099_AXW1234_20261015T020000Z/20261015_020512_REC42.mkv"
    info = match_path(BUILTIN, rel, None)
    assert info is not None and info.profile == "axis"
    assert (
        match_path(BUILTIN, "110099_AXW1234_20261015T020000Z/20261015_020512_R.avi", None) is None
    )


def test_no_profile_matches() -> None:
    for rel in ("GPS0001.csv", "DCIM/100MEDIA/IMG_0001.JPG", "ID.TXT", ""):
        assert match_path(BUILTIN, rel, IdFile("D", "O")) is None


# ------------------------------------------------------------------------------ bad times


@pytest.mark.parametrize(
    "rel",
    [
        "DSJ0042_110023_20261345093012_0003.MP4",  # month 13
        "DSJ0042_110023_20260230093012_0003.MP4",  # 30 February
        "DSJ0042_110023_20261015250000_0003.MP4",  # hour 25
        "DSJ0042_110023_00000000000000_0003.MP4",
    ],
)
def test_bad_time_in_name_gives_no_start(rel: str) -> None:
    info = match_path(BUILTIN, rel, None)
    assert info is not None and info.profile == "cn-standard"
    assert info.start is None
    assert (info.device_id, info.officer_id) == ("DSJ0042", "110023")


def test_bad_time_dcim_and_axis() -> None:
    info = match_path(BUILTIN, "DCIM/100MEDIA/20261015_996012_0003.MP4", IdFile("D", "O"))
    assert info is not None and info.profile == "dcim" and info.start is None
    assert info.device_id == "D"
    info = match_path(BUILTIN, "1_AX_20261015T020000Z/20261332_020512_R1.mkv", None)
    assert info is not None and info.profile == "axis" and info.start is None


def test_parse_start() -> None:
    tz8 = builtin_profiles()[0].tz
    assert parse_start("20261015093012", "%Y%m%d%H%M%S", tz8) == at(2026, 10, 15, 1, 30, 12)
    assert parse_start("20261015093012", "%Y%m%d%H%M%S", UTC) == at(2026, 10, 15, 9, 30, 12)
    assert parse_start("garbage", "%Y%m%d%H%M%S", UTC) is None
    assert parse_start("2026-10-15T09:30:12+0800", "%Y-%m-%dT%H:%M:%S%z", UTC) == at(
        2026, 10, 15, 1, 30, 12
    )


# ------------------------------------------------------------------------------ configured


def test_configured_profile_is_tried_before_the_builtins() -> None:
    profiles = all_profiles(
        [
            {
                "name": "city-fleet",
                "pattern": r"(?P<device>DSJ\d+)_(?P<officer>\d+)_(?P<start>\d{14})_(?P<seq>\d+)",
                "timezone": "UTC",
            }
        ],
        "Asia/Shanghai",
    )
    assert [p.name for p in profiles] == ["city-fleet", "cn-standard", "dcim", "axis"]
    info = match_path(profiles, "DSJ0042_110023_20261015093012_0003.MP4", None)
    assert info is not None and info.profile == "city-fleet"
    assert info.start == at(2026, 10, 15, 9, 30, 12)  # the configured zone, not Shanghai
    # other names still reach the built-ins
    info = match_path(profiles, "DCIM/100MEDIA/20261015_093012_0003.MP4", IdFile("D", "O"))
    assert info is not None and info.profile == "dcim"


def test_configured_profile_defaults_and_id_file() -> None:
    p = compile_profile(
        {
            "name": "bodycam-x",
            "pattern": r"^VID_(?P<start>\d{8}-\d{6})\.mp4$",
            "time_format": "%Y%m%d-%H%M%S",
            "id_file": True,
        },
        "Asia/Shanghai",
    )
    info = match_path([p], "VID_20261015-093012.mp4", IdFile("DSJ7", "7007"))
    assert info is not None
    assert info.start == at(2026, 10, 15, 1, 30, 12)  # the default zone
    assert (info.device_id, info.device_source) == ("DSJ7", "id-file")
    assert (info.officer_id, info.officer_source) == ("7007", "id-file")
    # without id_file = true, the id file is not this profile's business
    q = compile_profile({"name": "n", "pattern": r"^VID_(?P<start>\d{14})"}, "UTC")
    info = match_path([q], "VID_20261015093012.mp4", IdFile("DSJ7", "7007"))
    assert info is not None and (info.device_id, info.officer_id) == (None, None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"pattern": "x"}, "needs a name"),
        ({"name": "p"}, "pattern"),
        ({"name": "p", "pattern": "(unclosed"}, "does not compile"),
        ({"name": "p", "pattern": r"(?P<badge>\d+)"}, "unknown named groups"),
        ({"name": "p", "pattern": "x", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"name": "p", "pattern": "x", "id_file": "yes"}, "id_file"),
        ({"name": "p", "pattern": "x", "time_format": 5}, "time_format"),
        ({"name": "p", "pattern": "x", "colour": "red"}, "unknown keys"),
    ],
)
def test_bad_configured_profiles(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_profile(spec, "Asia/Shanghai")


# ------------------------------------------------------------------------------ the id file


def test_parse_id_file() -> None:
    text = "\ufeff# camera identity\r\nDevice = DSJ0100\r\nOFFICER=220044  # issued 2026-10\r\n"
    assert parse_id_file(text) == IdFile("DSJ0100", "220044")


def test_parse_id_file_partial_and_noise() -> None:
    assert parse_id_file("device=DSJ0100\n") == IdFile("DSJ0100", None)
    assert parse_id_file("officer=220044\n") == IdFile(None, "220044")
    assert parse_id_file("") == IdFile(None, None)
    assert parse_id_file("just text\nno equals here\n=value\nofficer=\n") == IdFile(None, None)
    assert parse_id_file("# officer=999\nmodel=DSJ-X1\ndevice=D1\n") == IdFile("D1", None)
    assert parse_id_file("  device  =  D 1  \n") == IdFile("D 1", None)


@pytest.mark.parametrize(
    ("profile", "named"),
    [
        ({"pattern": "x"}, "needs a name"),
        ({"name": "p", "pattern": "("}, "does not compile"),
        ({"name": "p", "pattern": "(?P<who>x)"}, "unknown named groups"),
        ({"name": "p", "pattern": "x", "timezone": "Mars/Base"}, "unknown time zone"),
        ({"name": "p", "pattern": "x", "colour": "red"}, "unknown keys"),
    ],
)
def test_invalid_profiles_in_settings_are_named(
    tmp_path: Path, profile: dict[str, Any], named: str
) -> None:
    """Ingest validates the profiles the settings keep, and names each bad one (exit 4)."""
    settings = validate(tmp_path, {"station_id": "st-01", "profiles": [profile]})
    with pytest.raises(HomeError, match=named) as info:
        station_profiles(settings)
    assert info.value.exit_code == 4
    assert "profiles:" in str(info.value) and "bwc.toml" in str(info.value)
