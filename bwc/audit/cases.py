"""One enforcement case audited on its own (`bwc audit case`): its officers, their clips
with clock offsets applied, the gaps and the verdict per officer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col

from bwc.audit import catalog
from bwc.audit.engine import (
    ClockTable,
    Ledger,
    OfficerOnCase,
    PlacedClip,
    audit_case,
    place_clips,
)
from bwc.audit.model import Case, Officer, Rules, from_ms
from bwc.audit.monthly import verified_inputs
from bwc.evidence.models import EnforcementCase, Explanation
from bwc.evidence.station import Station
from bwc.evidence.timefmt import format_utc


@dataclass(frozen=True)
class CaseAudit:
    case: Case
    rules: Rules
    verdicts: list[OfficerOnCase]
    roster: dict[str, Officer]
    explanations: list[Explanation]
    unverified: list[str] = field(default_factory=list)  # inputs the log does not vouch for
    # per clip shown (sha256) whose officer is the item's own: where that officer came from,
    # (source, actor of an after-ingest attribution) (catalog.attribution_sources)
    sources: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # per officer: the cameras checked out to them (ledger) during the case
    checked_out: dict[str, list[str]] = field(default_factory=dict)

    def attributed_from(self, p: PlacedClip) -> tuple[str, str | None]:
        """Where the clip's officer came from: "ledger" (at the clip's time, by the audit),
        or the item's own source (``sources``)."""
        if p.attributed_by == "ledger":
            return "ledger", None
        return self.sources.get(p.key, ("unknown", None))

    def camera_assigned(self, v: OfficerOnCase) -> bool:
        """A camera checked out to the officer during the case, or footage of theirs."""
        return bool(self.checked_out.get(v.officer_id) or v.clips)


def case_audit(
    station: Station, case_id: str, rules: Rules, *, allow_unverified: bool = False
) -> CaseAudit:
    with station.session(snapshot=True) as s:
        unverified = verified_inputs(
            s,
            station,
            allow_unverified=allow_unverified,
            cases_where=[col(EnforcementCase.case_id) == case_id],
        )
        ci = catalog.read_case(s, case_id, rules)
        ledger = Ledger(ci.assignments)
        placed = place_clips(ci.clips, ClockTable(ci.clocks), ledger)
        # only an approved explanation counts (a submitted one awaits a supervisor)
        explained = {(e.case_id, e.officer_id) for e in ci.explanations if e.status == "approved"}
        verdicts = audit_case(ci.case, rules, placed, explained)
        sources = catalog.attribution_sources(
            s, (p.key for v in verdicts for p in v.clips if p.attributed_by == "item")
        )
    c = ci.case
    checked_out = {
        v.officer_id: ledger.devices_held(v.officer_id, c.start, c.end) for v in verdicts
    }
    return CaseAudit(
        c, rules, verdicts, ci.roster, ci.explanations, unverified, sources, checked_out
    )


def case_json(ca: CaseAudit) -> dict[str, Any]:
    c, rules, verdicts, ci = ca.case, ca.rules, ca.verdicts, ca
    return {
        "case_id": c.case_id,
        "category": c.category,
        "unit": c.unit,
        "location": c.location,
        "start": format_utc(from_ms(c.start)),
        "end": format_utc(from_ms(c.end)),
        "rules": rules.as_dict(),
        "officers": [
            {
                "officer_id": v.officer_id,
                "in_roster": v.officer_id in ci.roster,
                "verdict": v.verdict,
                "coverage": round(v.covered / (c.end - c.start), 4),
                "explained": v.explained,
                "camera_assigned": ca.camera_assigned(v),
                "cameras_checked_out": ca.checked_out.get(v.officer_id, []),
                "clips": [
                    {
                        "sha256": p.key,
                        "device_id": p.device_id,
                        "start": format_utc(from_ms(p.start)),
                        "end": format_utc(from_ms(p.end)),
                        "clock_offset_ms": p.offset_ms,
                        "attributed_by": p.attributed_by,
                        "attributed_from": ca.attributed_from(p)[0],
                        "attributed_after_ingest_by": ca.attributed_from(p)[1],
                    }
                    for p in v.clips
                ],
                "gaps": _spans(v.gaps),
                "joins": _spans(v.joins),
                "explanations": [
                    {
                        "reason": e.reason,
                        "actor": e.actor,
                        "at": format_utc(e.at),
                        "status": e.status,
                        "reviewed_by": e.reviewed_by,
                        "review_reason": e.review_reason,
                        "reviewed_at": format_utc(e.reviewed_at) if e.reviewed_at else None,
                    }
                    for e in ci.explanations
                    if e.officer_id == v.officer_id
                ],
            }
            for v in verdicts
        ],
        "unverified_inputs": ca.unverified,
    }


def _spans(spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
    return [
        {"start": format_utc(from_ms(a)), "end": format_utc(from_ms(b)), "seconds": (b - a) / 1000}
        for a, b in spans
    ]
