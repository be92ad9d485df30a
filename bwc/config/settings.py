"""Settings: the home's ``bwc.toml`` plus ``BWC_*`` environment overrides, validated once.

The tables are pydantic models (strict types, unknown keys refused); the environment is read
by pydantic-settings: ``BWC_<SETTING>`` for a top-level setting, ``BWC_<TABLE>_<SETTING>`` for
one in a table (``BWC_DAEMON_WORKERS``, ``BWC_AUDIT_MAX_GAP_S``), lists as ``:``-separated
text (``BWC_IGNORE``, ``BWC_DAEMON_DOCKS``). Every invalid setting is reported at once, by
its dotted name. The result is a frozen :class:`Settings`; everything downstream takes values
from it and never reads the environment again.

Recorder profiles (``[[profiles]]``) are kept here as tables: the ingest part, which knows
what a profile means, validates them when it compiles them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    SettingsConfigDict,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from bwc.config import limits
from bwc.config.home import (
    CONFIG_NAME,
    DEFAULT_HOME,
    default_catalog_url,
    default_store_url,
    resolve_home,
)
from bwc.config.stores import store_url_problem
from bwc.errors import HomeError, first_line

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

# Each table refuses unknown keys and converts nothing implicitly (no "yes" for true, no 2.5
# for a whole number). A field's description is what it must be: error messages say it.
_TABLE = ConfigDict(strict=True, extra="forbid", frozen=True)


def _must(default: Any, description: str, **constraints: Any) -> Any:
    return Field(default, description=description, **constraints)


def _problems(*named: tuple[str, str]) -> PydanticCustomError:
    """Several problems from one validator, each under its own name below the field's
    (``retention.classes.<name>``)."""
    return PydanticCustomError(
        "bwc_problems", "; ".join(f"{n}: {m}" for n, m in named), {"problems": list(named)}
    )


NonEmpty = Annotated[str, StringConstraints(min_length=1)]
# at most a year: more is a typo, and overflows waits (threading's limit) and time arithmetic
Seconds = Annotated[float, Field(ge=0, le=limits.SECONDS_MAX, allow_inf_nan=False)]
_SECONDS = f"a number of seconds from 0 to {limits.SECONDS_MAX:.0f} (366 days)"
_HOURS_MAX = limits.SECONDS_MAX / 3600
Hours = Annotated[float, Field(ge=0, le=_HOURS_MAX, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
_PERCENT = "a percentage from 0 to 100"


class DaemonSettings(BaseModel):
    """The docking-station daemon's ``[daemon]`` table."""

    model_config = _TABLE

    docks: Annotated[tuple[NonEmpty, ...], NoDecode, Field(strict=False)] = _must(
        (), "a list of folders"
    )
    # size and mtime unchanged this long: the file is complete
    stable_seconds: Seconds = _must(5.0, _SECONDS)
    # periodic rescan, whether or not the file system sends events
    rescan_seconds: Seconds = _must(2.0, _SECONDS)
    workers: int = _must(
        2, f"from 1 to {limits.DAEMON_WORKERS_MAX}", ge=1, le=limits.DAEMON_WORKERS_MAX
    )
    # below this, stop taking new files (never drop any)
    spool_min_free_mb: int = _must(1024, "a whole number >= 0", ge=0)
    wipe_after_verify: bool = _must(False, "true or false")
    # cap of the exponential backoff for store errors
    retry_max_seconds: Seconds = _must(300.0, _SECONDS)
    # sign a checkpoint this often while there is news
    checkpoint_seconds: Seconds = _must(300.0, _SECONDS)
    # a checked-out camera not docked for longer than this is overdue (bwc.evidence.overdue)
    dock_overdue_hours: Hours = _must(24.0, f"a number of hours from 0 to {_HOURS_MAX:.0f}")


class S3Settings(BaseModel):
    """The ``[s3]`` table: how evidence is uploaded to an s3:// store. Credentials, region and
    endpoint come from the standard AWS chain, never from bwc's settings."""

    model_config = _TABLE

    # files up to this size (MiB) go in one PUT carrying the file's own SHA-256, which the
    # server can check end to end; larger ones in parts of part_size_mb. S3 takes at most
    # 5 GiB in one PUT; 5 MiB to 5 GiB are S3's own limits for a part.
    multipart_threshold_mb: int = _must(100, "a whole number from 5 to 5120", ge=5, le=5120)
    part_size_mb: int = _must(16, "a whole number from 5 to 5120", ge=5, le=5120)
    concurrency: int = _must(4, "a whole number from 1 to 64", ge=1, le=64)
    # keep retrying an unreachable store this long, then fail
    retry_seconds: float = _must(
        60.0, "a number from 0 to 86400", ge=0, le=86400, allow_inf_nan=False
    )
    # how long one request may wait for the server's answer: an RGW whose storage is down
    # or full accepts the request and never answers, so this bounds every wait
    timeout_seconds: float = _must(
        60.0, "a number from 1 to 3600", ge=1, le=3600, allow_inf_nan=False
    )


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
    days = n if unit == "day" else 0
    months = n * 12 if unit == "year" else n if unit == "month" else 0
    # 99999 years would put the date past year 9999 (no such date: a crash, not a rule)
    if months > limits.RETENTION_MONTHS_MAX or days > limits.RETENTION_MONTHS_MAX * 31:
        raise ValueError(f'at most {limits.RETENTION_MONTHS_MAX // 12} years, or "permanent"')
    return RetentionClass(name, months=months, days=days)


def _retention_classes(value: Any) -> Any:
    """A ``[retention.classes]`` table (name = period) -> the default classes with it laid
    over them, every rule checked; a tuple of classes (built in code) is taken as it is."""
    if not isinstance(value, dict):
        return value  # a tuple passes; anything else fails the type check
    classes = {c.name: c for c in DEFAULT_CLASSES}
    bad: list[tuple[str, str]] = []
    for name, period in value.items():
        if not isinstance(name, str) or not _CLASS_RE.fullmatch(name):
            bad.append((str(name), "class names are 1-32 of a-z, 0-9 and '-'"))
        elif not isinstance(period, str):
            bad.append((name, 'must be text like "6 months" or "permanent"'))
        else:
            try:
                cls = parse_period(name, period)
            except ValueError as e:
                bad.append((name, str(e)))
                continue
            if name in PERMANENT_CLASSES and not cls.permanent:
                bad.append((name, "must stay permanent (kept permanently by law)"))
            elif not cls.permanent and cls.months < MIN_MONTHS and cls.days < MIN_DAYS:
                bad.append((name, f"footage is kept at least {MIN_MONTHS} months (got {period!r})"))
            else:
                classes[name] = cls
    if bad:
        raise _problems(*bad)
    return tuple(classes.values())


class RetentionSettings(BaseModel):
    """The ``[retention]`` table: the retention classes, the class of new footage, and how
    far ahead permanent footage is locked in a store with Object Lock."""

    model_config = _TABLE

    default: str = _must("standard", "a class name")
    classes: Annotated[
        tuple[RetentionClass, ...], BeforeValidator(_retention_classes), Field(strict=False)
    ] = _must(DEFAULT_CLASSES, "a table of class = period")
    permanent_lock_years: int = _must(10, "a whole number from 1 to 100", ge=1, le=100)

    @model_validator(mode="after")
    def _default_is_a_class(self) -> RetentionSettings:
        if self.get(self.default) is None:
            known = ", ".join(c.name for c in self.classes)
            raise _problems(("default", f"unknown class {self.default!r} (known: {known})"))
        return self

    def get(self, name: str) -> RetentionClass | None:
        return next((c for c in self.classes if c.name == name), None)

    @property
    def default_class(self) -> RetentionClass:
        cls = self.get(self.default)
        if cls is None:  # refused when the settings were made
            raise HomeError(f"retention.default: unknown class {self.default!r}")
        return cls


class AuditSettings(BaseModel):
    """The ``[audit]`` table: the coverage rules' defaults (docs/audit.md)."""

    model_config = _TABLE

    # clips this close are one recording (cameras split files)
    max_gap_s: Seconds = _must(5.0, _SECONDS)
    # recording may start this late, and stop this early, and still be "full" (each at most
    # 25 % of the case: bwc.audit.model.Rules.graces)
    start_grace_s: Seconds = _must(60.0, _SECONDS)
    end_grace_s: Seconds = _must(60.0, _SECONDS)
    # footage ingested within this long after it ends is on time
    upload_limit_h: Hours = _must(24.0, f"a number of hours from 0 to {_HOURS_MAX:.0f}")
    # the targets reports draw a line at and colour rates by their distance to (percent)
    target_full_pct: Percent = _must(100.0, _PERCENT)
    target_on_time_pct: Percent = _must(100.0, _PERCENT)


def _tsa_url(value: str) -> str:
    if value and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
        raise ValueError(f"must be an http:// or https:// URL, or empty (got {value!r})")
    return value


class TimestampSettings(BaseModel):
    """The ``[timestamp]`` table: an RFC 3161 time-stamping authority (TSA) that timestamps
    every published checkpoint. Off while ``tsa_url`` is empty."""

    model_config = _TABLE

    tsa_url: Annotated[str, AfterValidator(_tsa_url)] = _must(
        "", "an http:// or https:// URL, or empty (no timestamps)"
    )
    # PEM roots the TSA's certificate must chain to: a token is checked against them when it
    # is fetched and by every `bwc log verify`; relative to the home
    ca_file: str = _must("", "the path of a PEM file of trusted root certificates")
    # one request's wait; the checkpoint never waits longer for its timestamp
    timeout: Seconds = _must(5.0, _SECONDS)
    # the daemon asks again this often for checkpoints still without a timestamp
    retry_seconds: Seconds = _must(300.0, _SECONDS)

    @model_validator(mode="after")
    def _ca_with_url(self) -> TimestampSettings:
        if self.tsa_url and not self.ca_file:
            raise _problems(("ca_file", "must be set with tsa_url: the TSA's trusted roots"))
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.tsa_url)


def _station_id(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
        raise ValueError(f"must be 1-64 letters, digits, '.', '_' or '-' (got {value!r})")
    return value


def _catalog(value: str) -> str:
    if not (value.startswith("sqlite:///") or value.startswith("postgresql")):
        raise ValueError(f"must be a sqlite:/// or postgresql+psycopg:// URL (got {value!r})")
    return value


def _store(value: str) -> str:
    problem = store_url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _one_line(value: str) -> str:
    if not value or "\n" in value:
        raise ValueError("must be a non-empty single line")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _workers(value: Any) -> Any:
    # 0 (the default) means one per CPU core; digits are accepted as text (the environment
    # gives text), nothing else is converted (no 2.5, no true)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value


def _per_core(value: int) -> int:
    return value or min(os.cpu_count() or 1, limits.VERIFY_WORKERS_MAX)


__all__ = [
    "CONFIG_NAME",
    "DEFAULT_HOME",
    "AuditSettings",
    "DaemonSettings",
    "RetentionClass",
    "RetentionSettings",
    "S3Settings",
    "Settings",
    "TimestampSettings",
    "default_catalog_url",
    "default_store_url",
    "load_settings",
    "render_default_config",
    "resolve_home",
    "validate",
    "validate_table",
]


class Settings(BaseSettings):
    """Everything a station is configured with. ``home`` is where it was loaded from."""

    model_config = SettingsConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        env_prefix="BWC_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        case_sensitive=False,
    )

    home: Path
    station_id: Annotated[str, AfterValidator(_station_id)] = _must(
        ..., "1-64 letters, digits, '.', '_' or '-'"
    )
    catalog: Annotated[str, AfterValidator(_catalog)] = _must(
        "", "a sqlite:/// or postgresql+psycopg:// URL"
    )
    # how long a command waits for the catalog (SQLite's write lock, a PostgreSQL
    # connection) before it counts as unavailable; the daemon then retries with backoff
    catalog_wait_seconds: Seconds = _must(60.0, _SECONDS)
    store: Annotated[str, AfterValidator(_store)] = _must("", "a file:/// or s3:// URL")
    # a store object the catalog does not know is reported once it is this old (younger:
    # an ingest may be between its store write and its commit)
    orphan_grace_seconds: Seconds = _must(900.0, _SECONDS)
    log_origin: Annotated[str, AfterValidator(_one_line)] = _must("", "a non-empty single line")
    timezone: Annotated[str, AfterValidator(_timezone)] = _must("Asia/Shanghai", "a time zone")
    ignore: Annotated[tuple[NonEmpty, ...], NoDecode, Field(strict=False)] = _must(
        _DEFAULT_IGNORE, "a list of non-empty patterns"
    )
    verify_workers: Annotated[
        int,
        BeforeValidator(_workers),
        AfterValidator(_per_core),
        Field(ge=0, le=limits.VERIFY_WORKERS_MAX),
    ] = _must(0, f"a whole number from 0 to {limits.VERIFY_WORKERS_MAX} (0: one per core)")
    daemon: DaemonSettings = _must(DaemonSettings(), "a table ([daemon])")
    profiles: Annotated[tuple[dict[str, Any], ...], NoDecode, Field(strict=False)] = _must(
        (), "a list of [[profiles]] tables"
    )
    s3: S3Settings = _must(S3Settings(), "a table ([s3])")
    retention: RetentionSettings = _must(RetentionSettings(), "a table ([retention])")
    audit: AuditSettings = _must(AuditSettings(), "a table ([audit])")
    timestamp: TimestampSettings = _must(TimestampSettings(), "a table ([timestamp])")

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_home(cls, raw: Any) -> Any:
        """The defaults that depend on the home and the station id."""
        if not isinstance(raw, dict) or not isinstance(raw.get("home"), Path):
            return raw
        home: Path = raw["home"]
        raw = dict(raw)
        raw.setdefault("catalog", default_catalog_url(home))
        raw.setdefault("store", default_store_url(home))
        sid = raw.get("station_id")
        raw.setdefault("log_origin", f"bwc/{sid if isinstance(sid, str) else 'invalid'}")
        return raw

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def tsa_ca_file(self) -> Path:
        """``[timestamp] ca_file``, relative to the home unless absolute."""
        return self.home / self.timestamp.ca_file

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"


def render_default_config(station_id: str) -> str:
    """The documented bwc.toml that `bwc init` writes: every setting with its default."""
    ignore = ",\n".join(f'    "{p}"' for p in _DEFAULT_IGNORE)
    return f"""\
# bwc configuration. Every setting is shown with its default.
# Any setting can be overridden by an environment variable BWC_<NAME IN CAPITALS>, and one
# in a table by BWC_<TABLE>_<NAME>: BWC_STORE=s3://evidence/station-07,
# BWC_CATALOG=postgresql+psycopg://..., BWC_DAEMON_WORKERS=4, BWC_AUDIT_MAX_GAP_S=2.
# Lists are ':'-separated there (BWC_IGNORE, BWC_DAEMON_DOCKS).

# This docking station's id. It names the station in manifests and custody events and is the
# name in the signed checkpoints' signature lines. Letters, digits, '.', '_' and '-'.
station_id = "{station_id}"

# Catalog database URL. Default: the embedded SQLite file in this home.
# PostgreSQL for several stations sharing one catalog: "postgresql+psycopg://user@host/db".
# catalog = "sqlite:///<home>/catalog.sqlite"
# How long to wait for the catalog (a lock, a connection) before it counts as unavailable;
# the daemon then keeps the files in its spool and tries again with backoff.
catalog_wait_seconds = 60.0

# Evidence store URL. Default: the local store folder in this home.
# S3-compatible object storage: "s3://bucket/prefix" (credentials from the AWS chain).
# store = "file:///<home>/store"
# An object in the store that the catalog does not know (a commit that failed after the
# store write) is reported by `bwc verify --all` and `bwc store check` once it is this old.
orphan_grace_seconds = 900.0

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
# A camera checked out in the ledger and not docked for longer than this (hours since its
# last dock, or since its checkout when it has not docked since) is listed as overdue by
# `bwc status` and the monthly audit.
dock_overdue_hours = 24.0

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
# How long one request waits for the server's answer (an object store whose storage is down
# or full may take a request and never answer).
timeout_seconds = 60.0

# The monthly coverage audit's rules (docs/audit.md); `bwc audit report` options override
# them for one report.
[audit]
# Clips this close (seconds) are one recording: cameras split footage into files.
max_gap_s = 5.0
# Recording may start this many seconds late, and stop this many early, and still be "full"
# (each at most 25 % of the case: "full" always needs the middle half recorded).
start_grace_s = 60.0
end_grace_s = 60.0
# Footage ingested within this many hours after it ends is on time.
upload_limit_h = 24.0
# Targets (percent): reports draw a line at them and colour rates by how far below they are.
target_full_pct = 100.0
target_on_time_pct = 100.0

# RFC 3161 timestamps: a time-stamping authority (TSA) signs "these bytes existed at this
# time" over every checkpoint the station publishes, so the log's state is dated by a third
# party. Off while tsa_url is empty. A TSA that cannot be reached never holds up ingest or a
# checkpoint: the timestamp is fetched later (the daemon, `bwc log timestamp`).
[timestamp]
# The TSA's URL (HTTP POST of application/timestamp-query), e.g. "http://timestamp.example/tsa".
tsa_url = ""
# PEM file of the root certificates the TSA's certificate must chain to (relative to this
# home unless absolute). Required with tsa_url.
ca_file = ""
# Seconds to wait for one answer.
timeout = 5.0
# The daemon asks again this often for checkpoints still without a timestamp.
retry_seconds = 300.0

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


# ---------------------------------------------------------------------------- loading


class _Environment(EnvSettingsSource):
    """pydantic-settings' reading of ``BWC_*`` variables, from a given mapping (the process
    environment unless a caller, such as a test, passes its own)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(Settings)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._env, False, False, None)


def _from_text(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """Environment values are text: make numbers, booleans and ``:``-separated lists of
    them where the setting is one, so they are then held to the same strict types as the
    file's. Text that is not what the setting needs stays text and is reported as such."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        field = model.model_fields.get(name)
        if field is None or not isinstance(value, str | dict):
            out[name] = value
            continue
        kind = field.annotation
        if isinstance(value, dict):
            is_table = isinstance(kind, type) and issubclass(kind, BaseModel)
            out[name] = _from_text(kind, value) if is_table else value  # type: ignore[arg-type]
        elif getattr(kind, "__origin__", None) is tuple:
            out[name] = [p for p in value.split(":") if p]
        elif kind in (int, float, bool):
            try:
                out[name] = TypeAdapter(kind).validate_python(value, strict=False)
            except ValidationError:
                out[name] = value
        else:
            out[name] = value
    return out


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``, tables merged key by key (the environment over the file)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def _field(path: list[str]) -> FieldInfo | None:
    model: Any = Settings
    field: FieldInfo | None = None
    for part in path:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return field
        field = fields[part]
        model = field.annotation
    return field


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _messages(error: ValidationError, within: tuple[str, ...] = ()) -> list[str]:
    """One ``name: what is wrong`` per setting, in the order pydantic found them."""
    found: dict[str, str] = {}
    for e in error.errors(include_url=False):
        path = [*within, *(str(p) for p in e["loc"] if not isinstance(p, int))]
        if e["type"] == "bwc_problems":
            for sub, msg in (e.get("ctx") or {})["problems"]:
                found.setdefault(".".join([*path, sub]), msg)
            continue
        field = _field(path)
        must = field.description if field is not None and field.description else "valid"
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        elif e["type"] == "missing":
            msg = f"must be set: {must}"
        elif e["type"] == "value_error":
            msg = str(e["msg"]).removeprefix("Value error, ")
        else:
            msg = f"must be {must} (got {_shown(e['input'])})"
        found.setdefault(".".join(path) or "settings", msg)
    return [f"{name}: {msg}" for name, msg in found.items()]


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
    except ValueError as e:  # a number of more than 4300 digits (Python's int limit)
        raise HomeError(
            f"cannot read {path}: a number with too many digits", hint="fix the file"
        ) from e
    except RecursionError as e:  # arrays nested deeper than the stack
        raise HomeError(f"cannot read {path}: nested too deeply", hint="fix the file") from e
    try:
        overrides = _Environment(env)()
    except SettingsError as e:  # BWC_DAEMON='{"workers": 3' (not JSON), 5000 digits
        raise HomeError(
            f"invalid settings: {first_line(e)} (BWC_* environment)",
            hint="fix or unset that BWC_* variable",
        ) from e
    overrides.pop("home", None)  # BWC_HOME chose the home; it is not a setting
    return validate(home, _merged(raw, _from_text(Settings, overrides)))


def validate(home: Path, raw: Mapping[str, Any]) -> Settings:
    """Settings from a parsed bwc.toml (with any overrides laid over it)."""
    problems = ["home: unknown setting"] if "home" in raw else []
    try:
        settings = Settings.model_validate({**raw, "home": home})
    except ValidationError as e:
        problems += _messages(e)
    if problems:
        raise HomeError(
            "invalid settings: " + "; ".join(problems),
            hint=f"fix {home / CONFIG_NAME} or the BWC_* environment",
        )
    return settings


def validate_table(name: str, raw: Mapping[str, Any]) -> Any:
    """One table of the settings (``audit``, ``s3``...) on its own, its problems named as in a
    whole file (``audit.max_gap_s: ...``)."""
    model = Settings.model_fields[name].annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ValueError(f"{name} is not a table of the settings")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise HomeError(
            "invalid settings: " + "; ".join(_messages(e, (name,))), hint=f"fix {CONFIG_NAME}"
        ) from e
