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
class Settings:
    home: Path
    station_id: str
    catalog: str
    store: str
    log_origin: str
    timezone: str
    ignore: tuple[str, ...]
    verify_workers: int

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
    )
