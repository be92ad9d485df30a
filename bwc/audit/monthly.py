"""The monthly coverage audit of a station's catalog: read exactly what the month needs (in
one snapshot), run the pure engine, build the report the renderers draw."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from bwc.audit import catalog
from bwc.audit.engine import run_audit
from bwc.audit.metrics import check_scope
from bwc.audit.model import Period, Rules, Targets
from bwc.audit.report import Report, build_report
from bwc.errors import VerificationError
from bwc.evidence import auditlog, overdue
from bwc.evidence.overdue import Stretch
from bwc.evidence.station import Station


def verified_inputs(
    s: Session, station: Station, *, allow_unverified: bool, cases_where: Sequence[Any]
) -> list[str]:
    """Check the audit's inputs against the custody log (in the snapshot the audit reads;
    the values of the cases ``cases_where`` selects, the ones the audit reads); a
    VerificationError naming what does not verify, or with ``allow_unverified`` those
    problems as lines for the report to show."""
    check = auditlog.check_inputs(s, station, cases_where=cases_where)
    if check.ok:
        return []
    lines = check.lines()
    if allow_unverified:
        return lines
    raise VerificationError(
        "the audit's inputs do not verify against the custody log, so nothing was reported: "
        + "; ".join(lines),
        hint="rows written outside bwc are not counted on trust; `bwc audit verify` lists "
        "them; a catalog from before inputs were logged needs `bwc audit seal` once; "
        "--allow-unverified reports anyway, marked as unverified",
    )


def monthly_report(
    station: Station,
    period: Period,
    rules: Rules,
    *,
    unit: str | None = None,
    county: str | None = None,
    keep_clips: bool = False,
    allow_unverified: bool = False,
    compare: bool = False,
    targets: Targets | None = None,
) -> Report:
    """``keep_clips``: keep every clip of the non-full pairs (the HTML report draws them);
    ``allow_unverified``: report even when inputs do not verify, saying which; ``compare``:
    also audit the month before (same rules, same snapshot) for the changes (Δ) shown."""
    before = period.previous() if compare else None
    with station.session(snapshot=True) as s:
        # the cases of both months are the ones read, so the ones compared by value
        where = catalog.month_cases(period, before)
        unverified = verified_inputs(
            s, station, allow_unverified=allow_unverified, cases_where=where
        )
        inputs = catalog.read_inputs(s, period, rules)
        late, limit_h = _not_docked(s, station, period)
        states = catalog.explanation_states(s, period)
        check_scope(inputs.officers, unit, county)  # before the month's work
        result = run_audit(
            period,
            rules,
            officers=inputs.officers,
            cases=inputs.cases,
            clip_batches=inputs.clip_batches,
            assignments=inputs.assignments,
            clocks=inputs.clocks,
            explanations=inputs.explanations,
            keep_clips=keep_clips,
        )
        previous = None
        if before is not None:
            prev = catalog.read_inputs(s, before, rules)
            previous = run_audit(
                before,
                rules,
                officers=prev.officers,
                cases=prev.cases,
                clip_batches=prev.clip_batches,
                assignments=prev.assignments,
                clocks=prev.clocks,
                explanations=prev.explanations,
            )
    return build_report(
        result,
        unit=unit,
        county=county,
        undated=inputs.undated,
        unverified=unverified,
        explanation_states=states,
        targets=targets,
        previous=previous,
        not_docked=late,
        dock_limit_h=limit_h,
    )


def _not_docked(s: Session, station: Station, period: Period) -> tuple[list[Stretch], float]:
    """The month's stretches of checked-out cameras not docked for longer than ``[daemon]
    dock_overdue_hours``: up to the month's end, or for the month still running up to the
    station clock's now (no dock of the future is known)."""
    hours = station.settings.daemon.dock_overdue_hours
    start, end = period.bounds()
    end = min(end, station.clock.now())
    if end <= start:
        return [], hours
    limit = timedelta(hours=hours)
    checkouts, docks = overdue.read(s, start=start, end=end, limit=limit)
    return overdue.stretches(checkouts, docks, start=start, end=end, limit=limit), hours
