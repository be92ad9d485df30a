"""Attributing footage to an officer after ingest (an unattributed clip, a shared camera):
a custody event (`attributed`) with the reason; the signed manifest is never changed, and
verification reads the officer from the latest `attributed` event."""

from __future__ import annotations

from dataclasses import dataclass

from bwc.config.limits import require_id
from bwc.errors import UsageError
from bwc.evidence import custody
from bwc.evidence.items import resolve_id
from bwc.evidence.station import Station
from bwc.evidence.verify.run import require_proven


@dataclass(frozen=True)
class Attributed:
    sha256: str
    officer_id: str
    previous: str | None


def attribute(station: Station, item_id: str, officer: str, reason: str) -> Attributed:
    if not reason.strip():
        raise UsageError("--reason must say why")
    require_id(officer, "--officer")
    station.signer()  # an unknown or wrong key refuses before anything changes
    with station.session() as s:
        sha = resolve_id(s, item_id).sha256
    require_proven(station, sha)  # the officer it had is what the log says
    with station.session() as s:
        item = resolve_id(s, sha)
        previous = item.officer_id
        item.officer_id = officer
        s.add(item)
        custody.append_events(
            s,
            [
                station.event(
                    "attributed",
                    item.sha256,
                    officer_id=officer,
                    previous_officer_id=previous,
                    reason=reason,
                )
            ],
        )
    station.checkpoint()
    return Attributed(item.sha256, officer, previous)
