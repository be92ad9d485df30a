"""Officers' written explanations for a case not fully recorded, and their review.

An explanation is submitted (`bwc audit explain`: by the officer, or entered for them), then
approved or rejected by a named supervisor (`bwc audit approve`); only approved explanations
count in the audit. Each step is stored for the audit and logged as a custody event
(`explained`, `explanation-reviewed`), since it changes what the audit reports; `bwc audit
verify` checks the rows against those events. Explaining a pair that is fully recorded is
refused as not needed, and nothing is stored or logged."""

from __future__ import annotations

from dataclasses import dataclass

from bwc.audit import catalog
from bwc.audit.cases import case_audit
from bwc.audit.model import Rules
from bwc.errors import UsageError
from bwc.evidence import custody
from bwc.evidence.auditlog import REVIEWED
from bwc.evidence.models import Explanation
from bwc.evidence.station import Station
from bwc.evidence.verify.run import require_proven


@dataclass(frozen=True)
class NotNeeded:
    """The pair is fully recorded: no explanation is needed, none was stored."""

    case_id: str
    officer_id: str
    coverage: float


def explain(
    station: Station, case_id: str, officer_id: str, reason: str, rules: Rules
) -> Explanation | NotNeeded:
    station.signer()  # an unknown or wrong key refuses before anything changes
    require_proven(station)  # never append to a log that does not verify
    if not reason.strip():
        raise UsageError("--reason is empty: say why the recording is incomplete")
    # the verdict under the configured rules, from inputs checked against the log
    ca = case_audit(station, case_id, rules)
    mine = [v for v in ca.verdicts if v.officer_id == officer_id]
    if mine and mine[0].verdict == "full":
        c = ca.case
        return NotNeeded(case_id, officer_id, mine[0].covered / (c.end - c.start))
    with station.session() as s:
        row = catalog.add_explanation(
            s,
            case_id,
            officer_id,
            reason,
            actor=station.actor,
            station_id=station.station_id,
            at=station.clock.now(),
        )
        custody.append_events(
            s,
            [
                station.event(
                    "explained",
                    None,
                    case_id=case_id,
                    officer_id=officer_id,
                    reason=reason,
                    explanation_id=row.id,
                )
            ],
        )
    station.checkpoint()
    return row


def review(
    station: Station,
    case_id: str,
    officer_id: str,
    *,
    approve: bool,
    by: str,
    reason: str | None = None,
) -> Explanation:
    """Approve (or reject, with a reason) the pair's explanation awaiting review, naming the
    supervisor ``by``; logged as an `explanation-reviewed` event in the same transaction."""
    station.signer()
    require_proven(station)
    with station.session() as s:
        custody.lock_head(s)  # two reviews of one explanation: the second sees the first
        row = catalog.review_explanation(
            s,
            case_id,
            officer_id,
            approve=approve,
            by=by,
            reason=reason,
            at=station.clock.now(),
        )
        custody.append_events(
            s,
            [
                station.event(
                    REVIEWED,
                    None,
                    case_id=case_id,
                    officer_id=officer_id,
                    explanation_id=row.id,
                    decision=row.status,
                    by=row.reviewed_by,
                    reason=row.review_reason,
                )
            ],
        )
    station.checkpoint()
    return row
