"""The coverage rules from the ``[audit]`` table of the settings (``AuditSettings``: seconds
and hours, as people configure them) in the audit's own units (milliseconds).

    [audit]
    max_gap_s = 5          # clips this close are one recording (cameras split files)
    start_grace_s = 60     # recording may start this late ...
    end_grace_s = 60       # ... and stop this early, and still be "full" (each <= 25 % of a case)
    upload_limit_h = 24    # footage ingested within this long after it ends is on time
    target_full_pct = 100  # targets: reports draw a line at them, colour by distance
    target_on_time_pct = 100
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bwc.audit.model import HOUR_MS, SECOND_MS, Rules, Targets
from bwc.config.settings import AuditSettings, validate_table


def rules_of(audit: AuditSettings) -> Rules:
    return Rules(
        max_gap_ms=round(audit.max_gap_s * SECOND_MS),
        start_grace_ms=round(audit.start_grace_s * SECOND_MS),
        end_grace_ms=round(audit.end_grace_s * SECOND_MS),
        upload_limit_ms=round(audit.upload_limit_h * HOUR_MS),
    )


def targets_of(audit: AuditSettings) -> Targets:
    return Targets(audit.target_full_pct / 100, audit.target_on_time_pct / 100)


def rules_from(raw: Mapping[str, Any]) -> Rules:
    """Rules from an ``[audit]`` table given on its own; HomeError names every problem."""
    table: AuditSettings = validate_table("audit", raw)
    return rules_of(table)
