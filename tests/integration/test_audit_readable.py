"""The monthly report for a bureau chief on a real catalog (issue 15.11): percentages in the
table, targets from bwc.toml, the change since the month before (the engine audits both
months from one snapshot), the warnings with the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_audit_cli import city

pytestmark = pytest.mark.integration


def test_table_percentages_and_the_change_since_last_month(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city(bwc, home, tmp_path)  # September: 110023's C0, recorded in full
    r = bwc("audit", "report", "--month", "2026-10", "--by", "county")
    assert r.code == 0, r.err
    assert "full rate 50.0 % (target 100 %, Δ -50.0 pp vs 2026-09)" in r.out, r.out
    assert "mean coverage 77.4 %" in r.out and "0.5000" not in r.out
    (east,) = [line for line in r.out.splitlines() if "东城区" in line]
    assert "66.7 %" in east and "-33.3" in east  # 2 of 3 in October, 1 of 1 in September
    assert "Δ pp: the full rate's change since 2026-09" in r.out  # the Δ column's legend
    assert "no recorded time" in r.err  # the warnings come with the table

    r = bwc("audit", "report", "--month", "2026-10", "--no-compare")
    assert r.code == 0 and "Δ" not in r.out and "full rate 50.0 % (target 100 %)" in r.out

    data = json.loads(bwc("audit", "report", "--month", "2026-10", "--format", "json").out)
    assert data["previous"]["month"] == "2026-09"
    assert data["previous"]["summary"]["full_rate"] == 1.0
    assert data["summary"]["full_rate"] == 0.5  # JSON keeps numbers


def test_targets_from_the_config(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city(bwc, home, tmp_path)
    toml = home / "bwc.toml"
    assert "target_full_pct = 100.0" in toml.read_text()  # the default, written by init
    toml.write_text(
        toml.read_text().replace("target_full_pct = 100.0", "target_full_pct = 50"),
        encoding="utf-8",
    )
    r = bwc("audit", "report", "--month", "2026-10")
    assert "(target 50 %, Δ" in r.out, r.out
    r = bwc("audit", "report", "--month", "2026-10", "--format", "html", "--lang", "en")
    assert "target 50 %" in r.out
    # 东城区 (66.7 %) meets a 50 % target; 西城区 (0 %) is far below it
    assert '<rect class="b-met" x="220"' in r.out and '<rect class="b-far" x="220"' in r.out
    data = json.loads(bwc("audit", "report", "--month", "2026-10", "--format", "json").out)
    assert data["targets"] == {"full_rate": 0.5, "on_time_rate": 1.0}

    toml.write_text(
        toml.read_text().replace("target_full_pct = 50", "target_full_pct = 101"),
        encoding="utf-8",
    )
    r = bwc("audit", "report", "--month", "2026-10")
    assert r.code == 4 and "audit.target_full_pct" in r.err and "Traceback" not in r.err
