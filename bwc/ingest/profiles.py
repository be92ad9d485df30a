"""Recorder profiles: how device id, officer id and recording start are read from a camera's
file paths. Pure: strings in, values out.

Profiles are tried in order: those configured in bwc.toml first, then the built-ins
(cn-standard, dcim, axis). Times in names are device-local unless the profile says UTC;
they are returned in UTC. A name whose time does not parse yields no start (and the caller
falls back to the container's creation_time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bwc.config.home import CONFIG_NAME
from bwc.errors import HomeError

if TYPE_CHECKING:
    from bwc.config.settings import Settings

DEFAULT_TZ = "Asia/Shanghai"
ID_FILE_NAMES = ("ID.TXT", "id.txt", "Id.txt")


@dataclass(frozen=True)
class Profile:
    name: str
    pattern: re.Pattern[str]
    time_format: str
    tz: tzinfo
    id_file: bool = False  # device/officer from ID.TXT at the mount root


@dataclass(frozen=True)
class PathInfo:
    profile: str
    device_id: str | None
    officer_id: str | None
    start: datetime | None
    seq: str | None
    device_source: str | None = None  # "profile" (the name) or "id-file"
    officer_source: str | None = None


@dataclass(frozen=True)
class IdFile:
    device_id: str | None
    officer_id: str | None
    # which file it was (its path at the mount root) and its SHA-256 and size: the id file is
    # camera metadata, recorded with the dock session, and marked as such when ingested
    name: str | None = None
    sha256: str | None = None
    size: int | None = None


def parse_id_file(text: str) -> IdFile:
    """`device=` / `officer=` lines (case-insensitive keys; '#' comments; BOM tolerated)."""
    values: dict[str, str] = {}
    for line in text.lstrip("\ufeff").splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if value:
            values[key] = value
    return IdFile(values.get("device"), values.get("officer"))


def _tz(name: str) -> tzinfo:
    return UTC if name.upper() == "UTC" else ZoneInfo(name)


def builtin_profiles(local_tz: str = DEFAULT_TZ) -> list[Profile]:
    tz = _tz(local_tz)
    return [
        # DSJ0042_110023_20261015093012_0003.MP4, anywhere under the mount
        Profile(
            "cn-standard",
            re.compile(
                r"(?:^|/)(?P<device>[A-Za-z0-9-]+)_(?P<officer>[A-Za-z0-9-]+)_"
                r"(?P<start>\d{14})_(?P<seq>\d+)\.[A-Za-z0-9]+$"
            ),
            "%Y%m%d%H%M%S",
            tz,
        ),
        # DCIM/100MEDIA/20261015_093012_0003.MP4 with ID.TXT at the mount root
        Profile(
            "dcim",
            re.compile(r"^DCIM/[^/]+/(?P<start>\d{8}_\d{6})_(?P<seq>\d+)\.[A-Za-z0-9]+$"),
            "%Y%m%d_%H%M%S",
            tz,
            id_file=True,
        ),
        # Axis body-worn integration API: <UserID>_<BWCSerial>_<YYYYMMDDTHHMMSSZ>/
        #   <YYYYMMDD>_<HHMMSS>_<RecordingID>.<mkv|mp4>, in UTC
        Profile(
            "axis",
            re.compile(
                r"(?:^|/)(?P<officer>[^/_]+)_(?P<device>[^/_]+)_\d{8}T\d{6}Z/"
                r"(?P<start>\d{8}_\d{6})_(?P<seq>[^/.]+)\.(?i:mkv|mp4)$"
            ),
            "%Y%m%d_%H%M%S",
            UTC,
        ),
    ]


ALLOWED_GROUPS = {"device", "officer", "start", "seq"}


def compile_profile(spec: Mapping[str, Any], default_tz: str) -> Profile:
    """A profile from its bwc.toml table; ValueError naming what is wrong."""
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("a profile needs a name")
    pattern = spec.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"profile {name!r}: pattern must be a regular expression")
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ValueError(f"profile {name!r}: pattern does not compile: {e}") from e
    unknown = set(rx.groupindex) - ALLOWED_GROUPS
    if unknown:
        raise ValueError(f"profile {name!r}: unknown named groups {sorted(unknown)}")
    time_format = spec.get("time_format", "%Y%m%d%H%M%S")
    if not isinstance(time_format, str):
        raise ValueError(f"profile {name!r}: time_format must be a strptime format")
    tz_name = spec.get("timezone", default_tz)
    try:
        tz = _tz(str(tz_name))
    except (KeyError, ValueError) as e:
        raise ValueError(f"profile {name!r}: unknown time zone {tz_name!r}") from e
    id_file = spec.get("id_file", False)
    if not isinstance(id_file, bool):
        raise ValueError(f"profile {name!r}: id_file must be true or false")
    extra = set(spec) - {"name", "pattern", "time_format", "timezone", "id_file"}
    if extra:
        raise ValueError(f"profile {name!r}: unknown keys {sorted(extra)}")
    return Profile(name, rx, time_format, tz, id_file)


def all_profiles(configured: Iterable[Mapping[str, Any]], default_tz: str) -> list[Profile]:
    """The configured profiles (compiled) before the built-ins; ValueError for a bad one."""
    return [compile_profile(s, default_tz) for s in configured] + builtin_profiles(default_tz)


def station_profiles(settings: Settings) -> list[Profile]:
    """The profiles of a station's settings, every bad ``[[profiles]]`` table named (the
    settings keep them as tables: what a profile means is this module's business)."""
    problems: list[str] = []
    for spec in settings.profiles:
        try:
            compile_profile(spec, settings.timezone)
        except ValueError as e:
            problems.append(f"profiles: {e}")
    if problems:
        raise HomeError(
            "invalid settings: " + "; ".join(problems),
            hint=f"fix the [[profiles]] tables in {settings.home / CONFIG_NAME}",
        )
    return all_profiles(settings.profiles, settings.timezone)


def parse_start(text: str, fmt: str, tz: tzinfo) -> datetime | None:
    try:
        naive = datetime.strptime(text, fmt)
        if naive.tzinfo is not None:
            return naive.astimezone(UTC)
        return naive.replace(tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None
    except OverflowError:  # a device clock at 0001-01-01 or 9999-12-31: no time in UTC
        return None


def _text(value: str | None) -> str | None:
    """A name's id, or None where its bytes are not UTF-8 (os.fsdecode's surrogates): no id
    can be stored from them, and the file is still evidence, its name kept byte for byte in
    the manifest and flagged non-utf8-name."""
    if value is None or any("\udc80" <= ch <= "\udcff" for ch in value):
        return None
    return value


def match_path(profiles: Sequence[Profile], rel: str, id_file: IdFile | None) -> PathInfo | None:
    """The first profile whose pattern matches ``rel`` (a '/'-separated relative path)."""
    for p in profiles:
        m = p.pattern.search(rel)
        if m is None:
            continue
        groups = m.groupdict()
        start = parse_start(groups["start"], p.time_format, p.tz) if groups.get("start") else None
        device, officer = _text(groups.get("device")), _text(groups.get("officer"))
        dsrc = "profile" if device else None
        osrc = "profile" if officer else None
        if p.id_file and id_file is not None:
            if device is None and id_file.device_id:
                device, dsrc = id_file.device_id, "id-file"
            if officer is None and id_file.officer_id:
                officer, osrc = id_file.officer_id, "id-file"
        return PathInfo(p.name, device, officer, start, groups.get("seq"), dsrc, osrc)
    return None
