"""The ``[audit]`` table of the home's bwc.toml: the coverage rules' defaults.

    [audit]
    max_gap_s = 5          # clips this close are one recording (cameras split files)
    start_grace_s = 60     # recording may start this late ...
    end_grace_s = 60       # ... and stop this early, and still be "full"
    upload_limit_h = 24    # footage ingested within this long after it ends is on time

The general settings loader tolerates the table and leaves it to the audit to validate.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bwc.audit.model import HOUR_MS, SECOND_MS, Rules
from bwc.config.settings import CONFIG_NAME
from bwc.errors import HomeError

_KEYS = {
    "max_gap_s": ("max_gap_ms", SECOND_MS),
    "start_grace_s": ("start_grace_ms", SECOND_MS),
    "end_grace_s": ("end_grace_ms", SECOND_MS),
    "upload_limit_h": ("upload_limit_ms", HOUR_MS),
}


def rules_from(raw: Mapping[str, Any], base: Rules | None = None) -> Rules:
    """Validate an ``[audit]`` table; every problem is named. Missing keys keep ``base``."""
    values: dict[str, int] = {}
    problems: list[str] = []
    for key, v in raw.items():
        if key not in _KEYS:
            problems.append(f"audit.{key}: unknown setting")
            continue
        field, unit = _KEYS[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or v != v:
            problems.append(f"audit.{key}: must be a number >= 0 (got {v!r})")
            continue
        values[field] = round(v * unit)
    if problems:
        raise HomeError("invalid settings: " + "; ".join(problems), hint=f"fix {CONFIG_NAME}")
    base = base or Rules()
    return Rules(
        max_gap_ms=values.get("max_gap_ms", base.max_gap_ms),
        start_grace_ms=values.get("start_grace_ms", base.start_grace_ms),
        end_grace_ms=values.get("end_grace_ms", base.end_grace_ms),
        upload_limit_ms=values.get("upload_limit_ms", base.upload_limit_ms),
    )


def load_rules(home: Path) -> Rules:
    """The rules configured in ``home``'s bwc.toml (defaults where not set)."""
    path = home / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise HomeError(f"cannot read {path}: {e}") from e
    table = raw.get("audit", {})
    if not isinstance(table, dict):
        raise HomeError("invalid settings: audit: must be a table ([audit])")
    return rules_from(table)
