"""Settings: the home's ``bwc.toml`` plus ``BWC_*`` environment overrides, validated once.

The result is a frozen :class:`Settings`; everything downstream takes values from it and
never reads the environment again.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bwc.errors import HomeError

CONFIG_NAME = "bwc.toml"
DEFAULT_HOME = "~/.bwc"
_STATION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

# Every setting, its type and its default. The default bwc.toml written by `bwc init` is
# rendered from this table so that the file documents every setting.
_DEFAULT_IGNORE = (
    "System Volume Information",
    "$RECYCLE.BIN",
    ".Trashes",
    ".Spotlight-V100",
    ".fseventsd",
    "Thumbs.db",
    "desktop.ini",
    ".DS_Store",
    "._*",
)


@dataclass(frozen=True)
class DaemonSettings:
    """The docking-station daemon's `[daemon]` table."""

    docks: tuple[str, ...] = ()
    stable_seconds: float = 5.0  # size and mtime unchanged this long: the file is complete
    rescan_seconds: float = 2.0  # periodic rescan, whether or not the file system sends events
    workers: int = 2
    spool_min_free_mb: int = 1024  # below this, stop taking new files (never drop any)
    wipe_after_verify: bool = False
    retry_max_seconds: float = 300.0  # cap of the exponential backoff for store errors
    checkpoint_seconds: float = 300.0  # sign a checkpoint this often while there is news


_DAEMON_FIELDS: dict[str, type] = {
    "docks": list,
    "stable_seconds": float,
    "rescan_seconds": float,
    "workers": int,
    "spool_min_free_mb": int,
    "wipe_after_verify": bool,
    "retry_max_seconds": float,
    "checkpoint_seconds": float,
}


def _daemon_settings(raw: Any, problems: list[str]) -> DaemonSettings:
    if raw is None:
        return DaemonSettings()
    if not isinstance(raw, dict):
        problems.append("daemon: must be a table")
        return DaemonSettings()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kind = _DAEMON_FIELDS.get(key)
        if kind is None:
            problems.append(f"daemon.{key}: unknown setting")
            continue
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(d, str) and d for d in value):
                problems.append(f"daemon.{key}: must be a list of folders")
                continue
            values[key] = tuple(value)
        elif kind is bool:
            if not isinstance(value, bool):
                problems.append(f"daemon.{key}: must be true or false")
                continue
            values[key] = value
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or value < 0 or (kind is int and not isinstance(value, int)):
                problems.append(f"daemon.{key}: must be a number >= 0 (got {value!r})")
                continue
            values[key] = kind(value)
    if values.get("workers") == 0:
        problems.append("daemon.workers: must be at least 1")
    return DaemonSettings(**values)


def _profiles(raw: Any, problems: list[str]) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
        problems.append("profiles: must be a list of [[profiles]] tables")
        return ()
    return tuple(dict(p) for p in raw)


@dataclass(frozen=True)
class S3Settings:
    """The `[s3]` table: how evidence is uploaded to an s3:// store. Credentials, region and
    endpoint come from the standard AWS chain, never from bwc's settings."""

    # files up to this size (MiB) go in one PUT carrying the file's own SHA-256, which the
    # server can check end to end; larger ones in parts of part_size_mb
    multipart_threshold_mb: int = 100
    part_size_mb: int = 16  # multipart part size (MiB)
    concurrency: int = 4  # parts of one file uploaded in parallel
    retry_seconds: float = 60.0  # keep retrying an unreachable store this long, then fail


_S3_LIMITS: dict[str, tuple[float, float]] = {
    "multipart_threshold_mb": (5, 5120),  # S3 takes at most 5 GiB in one PUT
    "part_size_mb": (5, 5120),  # S3's own limits for a part
    "concurrency": (1, 64),
    "retry_seconds": (0, 86400),
}


def _s3_settings(raw: Any, problems: list[str]) -> S3Settings:
    if raw is None:
        return S3Settings()
    if not isinstance(raw, dict):
        problems.append("s3: must be a table")
        return S3Settings()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        limits = _S3_LIMITS.get(key)
        if limits is None:
            problems.append(f"s3.{key}: unknown setting")
            continue
        lo, hi = limits
        whole = key != "retry_seconds"
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (whole and not isinstance(value, int)) or not lo <= value <= hi:
            kind = "a whole number" if whole else "a number"
            problems.append(f"s3.{key}: must be {kind} from {lo:g} to {hi:g} (got {value!r})")
            continue
        values[key] = value if whole else float(value)
    return S3Settings(**values)


@dataclass(frozen=True)
class RetentionClass:
    """How long footage of one class is kept, counted from its ingest: ``months`` (a year is
    12) or ``days``, or ``permanent``."""

    name: str
    months: int = 0
    days: int = 0
    permanent: bool = False

    def describe(self) -> str:
        if self.permanent:
            return "permanent"
        if self.days:
            return f"{self.days} day{'s' if self.days != 1 else ''}"
        if self.months % 12 == 0:
            y = self.months // 12
            return f"{y} year{'s' if y != 1 else ''}"
        return f"{self.months} month{'s' if self.months != 1 else ''}"


# The legal minimum for any footage (on-scene recording rules: at least 6 months), and the
# classes that must be kept permanently (evidence, obstruction of enforcement, major or mass
# incidents). Configuration may add classes and lengthen `standard`, never go below these.
MIN_MONTHS = 6
MIN_DAYS = 184  # the longest 6 calendar months
PERMANENT_CLASSES = ("evidence", "obstruction", "major-incident", "mass-incident")
DEFAULT_CLASSES: tuple[RetentionClass, ...] = (
    RetentionClass("standard", months=6),
    *(RetentionClass(n, permanent=True) for n in PERMANENT_CLASSES),
)
_CLASS_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_PERIOD_RE = re.compile(r"(\d{1,5}) *(day|month|year)s?")


@dataclass(frozen=True)
class RetentionSettings:
    """The `[retention]` table: the retention classes, the class of new footage, and how far
    ahead permanent footage is locked in a store with Object Lock."""

    default: str = "standard"
    classes: tuple[RetentionClass, ...] = DEFAULT_CLASSES
    permanent_lock_years: int = 10

    def get(self, name: str) -> RetentionClass | None:
        return next((c for c in self.classes if c.name == name), None)

    @property
    def default_class(self) -> RetentionClass:
        cls = self.get(self.default)
        assert cls is not None  # validated
        return cls


def parse_period(name: str, text: str) -> RetentionClass:
    """``"6 months"``, ``"1 year"``, ``"400 days"`` or ``"permanent"`` -> a class; ValueError."""
    t = text.strip().lower()
    if t == "permanent":
        return RetentionClass(name, permanent=True)
    m = _PERIOD_RE.fullmatch(t)
    if not m:
        raise ValueError(
            f'must be "<n> days", "<n> months", "<n> years" or "permanent" (got {text!r})'
        )
    n, unit = int(m.group(1)), m.group(2)
    if unit == "day":
        return RetentionClass(name, days=n)
    return RetentionClass(name, months=n * 12 if unit == "year" else n)


def _retention_settings(raw: Any, problems: list[str]) -> RetentionSettings:
    if raw is None:
        return RetentionSettings()
    if not isinstance(raw, dict):
        problems.append("retention: must be a table")
        return RetentionSettings()
    classes = {c.name: c for c in DEFAULT_CLASSES}
    default = "standard"
    lock_years = RetentionSettings.permanent_lock_years
    for key, value in raw.items():
        if key == "default":
            if not isinstance(value, str):
                problems.append("retention.default: must be a class name")
            else:
                default = value
        elif key == "permanent_lock_years":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
                problems.append(
                    f"retention.permanent_lock_years: must be a whole number from 1 to 100 "
                    f"(got {value!r})"
                )
            else:
                lock_years = value
        elif key == "classes":
            if not isinstance(value, dict):
                problems.append("retention.classes: must be a table of class = period")
                continue
            for name, period in value.items():
                label = f"retention.classes.{name}"
                if not _CLASS_RE.fullmatch(name):
                    problems.append(f"{label}: class names are 1-32 of a-z, 0-9 and '-'")
                    continue
                if not isinstance(period, str):
                    problems.append(f'{label}: must be text like "6 months" or "permanent"')
                    continue
                try:
                    cls = parse_period(name, period)
                except ValueError as e:
                    problems.append(f"{label}: {e}")
                    continue
                if name in PERMANENT_CLASSES and not cls.permanent:
                    problems.append(f"{label}: must stay permanent (kept permanently by law)")
                elif not cls.permanent and cls.months < MIN_MONTHS and cls.days < MIN_DAYS:
                    problems.append(
                        f"{label}: footage is kept at least {MIN_MONTHS} months (got {period!r})"
                    )
                else:
                    classes[name] = cls
        else:
            problems.append(f"retention.{key}: unknown setting")
    if default not in classes:
        problems.append(
            f"retention.default: unknown class {default!r} (known: {', '.join(classes)})"
        )
        default = "standard"
    return RetentionSettings(
        default=default, classes=tuple(classes.values()), permanent_lock_years=lock_years
    )


@dataclass(frozen=True)
class Settings:
    home: Path
    station_id: str
    catalog: str
    store: str
    log_origin: str
    timezone: str
    ignore: tuple[str, ...]
    verify_workers: int
    daemon: DaemonSettings = DaemonSettings()
    profiles: tuple[dict[str, Any], ...] = ()
    s3: S3Settings = S3Settings()
    retention: RetentionSettings = RetentionSettings()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"


def default_catalog_url(home: Path) -> str:
    return f"sqlite:///{home / 'catalog.sqlite'}"


def default_store_url(home: Path) -> str:
    return (home / "store").as_uri()


def resolve_home(home: str | Path | None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    raw = str(home) if home is not None else env.get("BWC_HOME", DEFAULT_HOME)
    return Path(raw).expanduser().resolve()


def render_default_config(station_id: str) -> str:
    """The documented bwc.toml that `bwc init` writes: every setting with its default."""
    ignore = ",\n".join(f'    "{p}"' for p in _DEFAULT_IGNORE)
    return f"""\
# bwc configuration. Every setting is shown with its default.
# Any setting can be overridden by an environment variable BWC_<NAME IN CAPITALS>,
# e.g. BWC_STORE=s3://evidence/station-07 or BWC_CATALOG=postgresql+psycopg://...

# This docking station's id. It names the station in manifests and custody events and is the
# name in the signed checkpoints' signature lines. Letters, digits, '.', '_' and '-'.
station_id = "{station_id}"

# Catalog database URL. Default: the embedded SQLite file in this home.
# PostgreSQL for several stations sharing one catalog: "postgresql+psycopg://user@host/db".
# catalog = "sqlite:///<home>/catalog.sqlite"

# Evidence store URL. Default: the local store folder in this home.
# S3-compatible object storage: "s3://bucket/prefix" (credentials from the AWS chain).
# store = "file:///<home>/store"

# Origin line of the custody log's signed checkpoints (C2SP tlog-checkpoint). It names the
# log, which belongs to the catalog: it is used only when this station creates the catalog;
# stations joining a shared catalog use the origin already stored there.
# log_origin = "bwc/{station_id}"

# Time zone of officers, devices and reports. Stored times are always UTC.
timezone = "Asia/Shanghai"

# Files and folders on a camera that are OS junk: skipped, but counted and listed.
# Shell-style patterns matched against each path component.
ignore = [
{ignore},
]

# Parallel readers for `bwc verify --all` (0 = one per CPU core).
verify_workers = 0

# Recorder profiles: how device id, officer id and recording start are read from a camera's
# paths. Configured profiles are tried first, then the built-ins: cn-standard
# (DEVICE_OFFICER_YYYYMMDDhhmmss_SEQ.ext), dcim (DCIM/<folder>/YYYYMMDD_hhmmss_SEQ.ext with
# ID.TXT at the camera root) and axis (<User>_<Serial>_<YYYYMMDDTHHMMSSZ>/<date>_<time>_<id>.mkv).
# [[profiles]]
# name = "my-camera"
# pattern = '(?P<device>[A-Z0-9]+)-(?P<officer>\\d+)-(?P<start>\\d{{14}})\\.mp4$'
# time_format = "%Y%m%d%H%M%S"
# timezone = "Asia/Shanghai"   # the device clock's zone; "UTC" for devices that write UTC
# id_file = false              # true: device/officer from ID.TXT (device=, officer=)

# The docking-station daemon (`bwc daemon`).
[daemon]
# Dock roots: folders under which docked cameras appear as mounted sub-folders.
docks = []
# A file is taken once its size and mtime have not changed for this long (files older than
# this are taken at once).
stable_seconds = 5.0
# Rescan every dock this often, whether or not the file system sends events.
rescan_seconds = 2.0
# Files processed in parallel.
workers = 2
# Below this much free space in the spool, stop taking new files (nothing is dropped).
spool_min_free_mb = 1024
# Delete a source file after its stored copy was read back and matched. Off by default;
# cameras are normally mounted read-only.
wipe_after_verify = false
# Longest wait between retries when the store fails (exponential backoff).
retry_max_seconds = 300.0
# Sign a checkpoint this often while events are being added.
checkpoint_seconds = 300.0

# Uploads to an S3-compatible store (used when `store` is an s3:// URL). Credentials, region
# and endpoint come from the standard AWS chain (AWS_* variables, ~/.aws), never from here.
[s3]
# Files up to this size (MiB) are sent in one request carrying the file's own SHA-256, which
# the server checks end to end; larger files go in parts (a part's checksum is its own).
multipart_threshold_mb = 100
# Multipart part size in MiB (5 to 5120).
part_size_mb = 16
# Parts of one file uploaded in parallel.
concurrency = 4
# How long an upload keeps retrying while the store cannot be reached before it fails.
retry_seconds = 60.0

# Retention: how long footage is kept, counted from its ingest, and legal holds.
[retention]
# The class of new footage.
default = "standard"
# With S3 Object Lock, permanent footage is locked this many years ahead; `bwc retention
# apply` extends the lock when less than a year is left.
permanent_lock_years = 10

# Each class: "<n> days", "<n> months", "<n> years" or "permanent". Every class keeps footage
# at least 6 months; evidence, obstruction, major-incident and mass-incident stay permanent.
# Add classes of your own below.
[retention.classes]
standard = "6 months"
evidence = "permanent"
obstruction = "permanent"
major-incident = "permanent"
mass-incident = "permanent"
"""


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("station_id", "catalog", "store", "log_origin", "timezone", "verify_workers"):
        key = "BWC_" + name.upper()
        if key in env:
            out[name] = env[key]
    if "BWC_IGNORE" in env:
        out["ignore"] = [p for p in env["BWC_IGNORE"].split(":") if p]
    return out


def load_settings(home: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Load and validate settings; raise HomeError naming every invalid setting."""
    env = os.environ if env is None else env
    path = home / CONFIG_NAME
    if not path.is_file():
        raise HomeError(
            f"no bwc home at {home} (missing {CONFIG_NAME})",
            hint="run `bwc init` first, or pass --home / set BWC_HOME",
        )
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise HomeError(f"cannot read {path}: {e}", hint="fix the file") from e
    raw.update(_env_overrides(env))
    return validate(home, raw)


def validate(home: Path, raw: Mapping[str, Any]) -> Settings:
    problems: list[str] = []
    known = {
        "station_id",
        "catalog",
        "store",
        "log_origin",
        "timezone",
        "ignore",
        "verify_workers",
        # Sections later issues add are tolerated here and validated by their owners.
        "daemon",
        "profiles",
        "s3",
        "retention",
        "audit",
    }
    for key in raw:
        if key not in known:
            problems.append(f"{key}: unknown setting")

    station_id = raw.get("station_id")
    if not isinstance(station_id, str) or not _STATION_RE.fullmatch(station_id):
        problems.append(
            f"station_id: must be 1-64 letters, digits, '.', '_' or '-' (got {station_id!r})"
        )
        station_id = "invalid"

    catalog = raw.get("catalog", default_catalog_url(home))
    if not isinstance(catalog, str) or not (
        catalog.startswith("sqlite:///") or catalog.startswith("postgresql")
    ):
        problems.append(
            f"catalog: must be a sqlite:/// or postgresql+psycopg:// URL (got {catalog!r})"
        )

    store = raw.get("store", default_store_url(home))
    if not isinstance(store, str) or not (
        store.startswith("file:///") or store.startswith("s3://")
    ):
        problems.append(f"store: must be a file:/// or s3:// URL (got {store!r})")

    log_origin = raw.get("log_origin", f"bwc/{station_id}")
    if not isinstance(log_origin, str) or not log_origin or "\n" in log_origin:
        problems.append("log_origin: must be a non-empty single line")

    timezone = raw.get("timezone", "Asia/Shanghai")
    try:
        if not isinstance(timezone, str):
            raise ZoneInfoNotFoundError(timezone)
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: unknown time zone {timezone!r}")

    ignore = raw.get("ignore", list(_DEFAULT_IGNORE))
    if not isinstance(ignore, list) or not all(isinstance(p, str) and p for p in ignore):
        problems.append("ignore: must be a list of non-empty patterns")
        ignore = []

    workers_raw = raw.get("verify_workers", 0)
    try:
        # TOML gives an int; the environment gives text. Nothing else (no 2.5, no true).
        if isinstance(workers_raw, bool) or not isinstance(workers_raw, int | str):
            raise TypeError
        verify_workers = int(workers_raw)
        if verify_workers < 0:
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"verify_workers: must be a whole number >= 0 (got {workers_raw!r})")
        verify_workers = 0
    if verify_workers == 0:
        verify_workers = os.cpu_count() or 1

    daemon = _daemon_settings(raw.get("daemon"), problems)
    profiles = _profiles(raw.get("profiles"), problems)
    s3 = _s3_settings(raw.get("s3"), problems)
    retention = _retention_settings(raw.get("retention"), problems)
    if profiles:
        # Compiled here only to report bad profiles at start-up, by name.
        from bwc.ingest.profiles import compile_profile

        for spec in profiles:
            try:
                compile_profile(spec, str(timezone))
            except ValueError as e:
                problems.append(f"profiles: {e}")

    if problems:
        raise HomeError(
            "invalid settings: " + "; ".join(problems),
            hint=f"fix {home / CONFIG_NAME} or the BWC_* environment",
        )
    return Settings(
        home=home,
        station_id=str(station_id),
        catalog=str(catalog),
        store=str(store),
        log_origin=str(log_origin),
        timezone=str(timezone),
        ignore=tuple(ignore),
        verify_workers=verify_workers,
        daemon=daemon,
        profiles=profiles,
        s3=s3,
        retention=retention,
    )
