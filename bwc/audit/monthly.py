"""The monthly coverage audit of a station's catalog: read exactly what the month needs (in
one snapshot), run the pure engine, build the report the renderers draw."""

from __future__ import annotations

from bwc.audit import catalog
from bwc.audit.engine import run_audit
from bwc.audit.model import Period, Rules
from bwc.audit.report import Report, build_report
from bwc.evidence.station import Station


def monthly_report(
    station: Station,
    period: Period,
    rules: Rules,
    *,
    unit: str | None = None,
    county: str | None = None,
    keep_clips: bool = False,
) -> Report:
    """``keep_clips``: keep every clip of the non-full pairs (the HTML report draws them)."""
    with station.session(snapshot=True) as s:
        inputs = catalog.read_inputs(s, period, rules)
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
    return build_report(result, unit=unit, county=county, undated=inputs.undated)
