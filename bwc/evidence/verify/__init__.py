"""Verification: a pure core (``core``: values in, a report of every failure out), loaders
from a catalog (``catalog``) and the station-level runs (``run``)."""

from bwc.evidence.items import resolve_id
from bwc.evidence.verify.core import Check, ItemReport, LogReport

__all__ = ["Check", "ItemReport", "LogReport", "resolve_id"]
