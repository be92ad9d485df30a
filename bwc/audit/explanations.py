"""Officers' written explanations for a case not fully recorded (`bwc audit explain`):
stored for the audit and logged as custody events, since an explanation changes what the
audit reports."""

from __future__ import annotations

from bwc.audit import catalog
from bwc.evidence import custody
from bwc.evidence.models import Explanation
from bwc.evidence.station import Station
from bwc.evidence.verify.run import require_proven


def explain(station: Station, case_id: str, officer_id: str, reason: str) -> Explanation:
    station.signer()  # an unknown or wrong key refuses before anything changes
    require_proven(station)  # never append to a log that does not verify
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
