"""Reports from an audit result: the report value, CSV, JSON and the rows of the terminal
table. Pure: values in, text/values out (the CLI prints; the HTML lives in bwc.audit.html).

Number formats: counts are integers; rates and coverage are plain decimals with 4 places
(0.9375); hours have 2 places; a rate with nothing to divide by is empty (CSV) / null (JSON).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any, Literal

from bwc.audit.engine import AuditResult, OfficerAudit, PairResult
from bwc.audit.metrics import (
    Metrics,
    aggregate,
    group_by,
    select,
    worst_first,
    worst_first_officers,
)
from bwc.audit.model import HOUR_MS, from_ms
from bwc.evidence.timefmt import format_utc

By = Literal["officer", "unit", "county"]
BY: tuple[By, ...] = ("officer", "unit", "county")

OFFICER_COLUMNS = (
    "officer_id",
    "name",
    "unit",
    "county",
    "cases",
    "full",
    "partial",
    "none",
    "explained",
    "full_rate",
    "mean_coverage",
    "uploads",
    "on_time",
    "on_time_rate",
)
GROUP_COLUMNS = (
    "officers",
    "cases",
    "full",
    "partial",
    "none",
    "explained",
    "full_rate",
    "mean_coverage",
    "uploads",
    "on_time",
    "on_time_rate",
    "p95_upload_delay_h",
    "frontline",
    "equipped",
    "equipage_rate",
    "officers_without_footage",
    "footage_h",
    "footage_h_outside_cases",
)


@dataclass
class Report:
    result: AuditResult
    unit: str | None
    county: str | None
    summary: Metrics
    counties: list[Metrics]
    units: list[Metrics]
    officers: list[OfficerAudit]  # worst first
    non_full: list[PairResult]  # lowest coverage first
    not_in_roster: list[str]
    undated: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def filtered(self) -> bool:
        return self.unit is not None or self.county is not None


def build_report(
    result: AuditResult, *, unit: str | None = None, county: str | None = None, undated: int = 0
) -> Report:
    chosen = select(result, unit, county)
    ids = {a.officer_id for a in chosen}
    non_full = sorted(
        (p for p in result.pairs if p.verdict != "full" and p.officer_id in ids),
        key=lambda p: (p.covered / (p.end - p.start), p.start, p.case_id, p.officer_id),
    )
    not_in_roster = sorted(a.officer_id for a in chosen if not a.in_roster and a.cases)
    warnings: list[str] = []
    if not_in_roster:
        warnings.append(
            f"{len(not_in_roster)} officer(s) on cases are not in the roster "
            f"(no unit or county): {', '.join(not_in_roster[:10])}"
            + (", ..." if len(not_in_roster) > 10 else "")
        )
    if undated:
        warnings.append(f"{undated} item(s) ingested this month have no recorded time")
    if result.invalid_clips:
        warnings.append(f"{result.invalid_clips} item(s) end before they start: skipped")
    return Report(
        result=result,
        unit=unit,
        county=county,
        summary=aggregate("all", chosen),
        counties=group_by(chosen, lambda a: a.county),
        units=group_by(chosen, lambda a: a.unit),
        officers=worst_first_officers(chosen),
        non_full=non_full,
        not_in_roster=not_in_roster,
        undated=undated,
        warnings=warnings,
    )


# ------------------------------------------------------------------------------ formats


def rate(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def hours(ms: int | None) -> str:
    return "" if ms is None else f"{ms / HOUR_MS:.2f}"


def _rate_json(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _hours_json(ms: int | None) -> float | None:
    return None if ms is None else round(ms / HOUR_MS, 2)


def officer_values(a: OfficerAudit) -> list[str]:
    return [
        a.officer_id,
        a.name,
        a.unit,
        a.county,
        str(a.cases),
        str(a.full),
        str(a.partial),
        str(a.none),
        str(a.explained),
        rate(a.full / a.cases if a.cases else None),
        rate(a.coverage_sum / a.cases if a.cases else None),
        str(a.uploads),
        str(a.on_time),
        rate(a.on_time / a.uploads if a.uploads else None),
    ]


def group_values(m: Metrics) -> list[str]:
    return [
        str(m.officers),
        str(m.cases),
        str(m.full),
        str(m.partial),
        str(m.none),
        str(m.explained),
        rate(m.full_rate),
        rate(m.mean_coverage),
        str(m.uploads),
        str(m.on_time),
        rate(m.on_time_rate),
        hours(m.p95_delay_ms),
        str(m.frontline),
        str(m.equipped),
        rate(m.equipage_rate),
        str(m.no_footage),
        hours(m.footage_ms),
        hours(m.outside_cases_ms),
    ]


def to_csv(report: Report, by: By = "officer") -> str:
    """CSV sorted by key (stable across runs, easy to diff); header first."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if by == "officer":
        w.writerow(OFFICER_COLUMNS)
        for a in sorted(report.officers, key=lambda a: a.officer_id):
            w.writerow(officer_values(a))
    elif by == "unit":
        w.writerow(("unit", "county", *GROUP_COLUMNS))
        for m in report.units:
            w.writerow((m.key, "/".join(m.counties), *group_values(m)))
    else:
        w.writerow(("county", *GROUP_COLUMNS))
        for m in report.counties:
            w.writerow((m.key, *group_values(m)))
    return buf.getvalue()


def metrics_json(m: Metrics) -> dict[str, Any]:
    return {
        "officers": m.officers,
        "cases": m.cases,
        "full": m.full,
        "partial": m.partial,
        "none": m.none,
        "explained": m.explained,
        "full_rate": _rate_json(m.full_rate),
        "mean_coverage": _rate_json(m.mean_coverage),
        "uploads": m.uploads,
        "on_time": m.on_time,
        "on_time_rate": _rate_json(m.on_time_rate),
        "p95_upload_delay_h": _hours_json(m.p95_delay_ms),
        "frontline": m.frontline,
        "equipped": m.equipped,
        "equipage_rate": _rate_json(m.equipage_rate),
        "officers_without_footage": m.no_footage,
        "footage_h": _hours_json(m.footage_ms),
        "footage_h_outside_cases": _hours_json(m.outside_cases_ms),
    }


def officer_json(a: OfficerAudit) -> dict[str, Any]:
    m = aggregate(a.officer_id, [a])
    return {
        "officer_id": a.officer_id,
        "name": a.name,
        "unit": a.unit,
        "county": a.county,
        "frontline": a.frontline,
        "in_roster": a.in_roster,
        "equipped": a.equipped,
        **{k: v for k, v in metrics_json(m).items() if k not in ("officers", "frontline")},
    }


def pair_json(p: PairResult) -> dict[str, Any]:
    return {
        "case_id": p.case_id,
        "officer_id": p.officer_id,
        "start": format_utc(from_ms(p.start)),
        "end": format_utc(from_ms(p.end)),
        "coverage": round(p.coverage, 4),
        "recorded_s": p.covered / 1000,
        "verdict": p.verdict,
        "explained": p.explained,
    }


def to_json(report: Report) -> dict[str, Any]:
    r = report.result
    start, end = r.period.bounds()
    return {
        "month": r.period.label,
        "timezone": r.period.tz,
        "period": {"start": format_utc(start), "end": format_utc(end)},
        "rules": r.rules.as_dict(),
        "filters": {"unit": report.unit, "county": report.county},
        "summary": metrics_json(report.summary),
        "counties": [{"county": m.key, **metrics_json(m)} for m in report.counties],
        "units": [
            {"unit": m.key, "counties": list(m.counties), **metrics_json(m)} for m in report.units
        ],
        "officers": [officer_json(a) for a in sorted(report.officers, key=lambda a: a.officer_id)],
        "non_full": [pair_json(p) for p in report.non_full],
        "unattributed": {
            "clips": r.unattributed_clips,
            "footage_h": _hours_json(r.unattributed_ms),
        },
        "undated_items": report.undated,
        "officers_not_in_roster": report.not_in_roster,
        "warnings": report.warnings,
    }


def table_rows(report: Report, by: By) -> tuple[list[str], list[list[str]]]:
    """Header and rows for the terminal table, worst first."""
    if by == "officer":
        return list(OFFICER_COLUMNS), [officer_values(a) for a in report.officers]
    rows = worst_first(report.units if by == "unit" else report.counties)
    header = [by, *GROUP_COLUMNS]
    return header, [[m.key or "-", *group_values(m)] for m in rows]
