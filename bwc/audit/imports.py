"""Imports of the audit's inputs (roster, device checkout ledger, enforcement cases) into a
station's catalog: all-or-nothing (the rows were parsed and checked before), idempotent."""

from __future__ import annotations

from collections.abc import Sequence

from bwc.audit import catalog
from bwc.audit.parse import AssignmentIn, CaseIn, Kind, OfficerIn, Row
from bwc.evidence import auditlog, custody
from bwc.evidence.station import Station
from bwc.evidence.verify.run import require_proven


def facts_of(kind: Kind, rows: Sequence[Row]) -> list[auditlog.Fact]:
    """The rows of an import as the custody log records them (officers: see import_rows,
    their facts depend on the rows they update)."""
    out: list[auditlog.Fact] = []
    for r in rows:
        if isinstance(r, CaseIn):
            out.append(
                auditlog.case_fact(
                    r.case_id, r.category, r.unit, r.start, r.end, r.location, r.officers
                )
            )
        elif isinstance(r, AssignmentIn):
            out.append(auditlog.assignment_fact(r.officer_id, r.device_id, r.start, r.end))
    return out


def import_rows(
    station: Station, kind: Kind, rows: Sequence[Row], *, file_sha256: str | None = None
) -> catalog.ImportCounts:
    """Store parsed rows of one kind in one transaction, with custody events recording
    every row (the audit checks its inputs against them); how many were new, changed, the
    same."""
    require_proven(station)  # never append to a log that does not verify
    with station.session() as s:
        if kind == "officers":
            # an officer's state (active or not) comes from the row it updates, so its
            # fact is the row as written
            counts, facts = catalog.import_officers(
                s, [r for r in rows if isinstance(r, OfficerIn)]
            )
        elif kind == "cases":
            counts = catalog.import_cases(s, [r for r in rows if isinstance(r, CaseIn)])
            facts = facts_of(kind, rows)
        else:
            counts = catalog.import_assignments(s, [r for r in rows if isinstance(r, AssignmentIn)])
            facts = facts_of(kind, rows)
        evs = auditlog.events(
            station,
            kind,
            facts,
            source="import",
            file_sha256=file_sha256,
            rows=len(rows),
        )
        custody.append_events(s, evs)
    station.checkpoint()
    return counts
