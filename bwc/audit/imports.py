"""Imports of the audit's inputs (roster, device checkout ledger, enforcement cases) into a
station's catalog: all-or-nothing (the rows were parsed and checked before), idempotent."""

from __future__ import annotations

from collections.abc import Sequence

from bwc.audit import catalog
from bwc.audit.parse import AssignmentIn, CaseIn, Kind, OfficerIn, Row
from bwc.evidence.station import Station


def import_rows(station: Station, kind: Kind, rows: Sequence[Row]) -> catalog.ImportCounts:
    """Store parsed rows of one kind in one transaction; how many were new, changed, the same."""
    with station.session() as s:
        if kind == "officers":
            return catalog.import_officers(s, [r for r in rows if isinstance(r, OfficerIn)])
        if kind == "cases":
            return catalog.import_cases(s, [r for r in rows if isinstance(r, CaseIn)])
        return catalog.import_assignments(s, [r for r in rows if isinstance(r, AssignmentIn)])
