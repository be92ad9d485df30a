"""Cases as first-class links: an evidence item may belong to several enforcement cases (an
administrative case and a police operation). Each link and unlink is a custody event
(`case-linked` / `case-unlinked`, with the actor, the case and the reason); the `case_link`
table is a cache of those events, checked against them by `bwc verify` (the ``cases``
check) and by :func:`items_of_case`, which the exporter selects a case's footage with.

A case id the audit's imported cases (`bwc audit import cases`) do not know is refused
unless the caller says it is a new case: a typo would otherwise quietly start a new case.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, select

from bwc.config.limits import require_id, text_problem
from bwc.errors import NotFoundError, UsageError
from bwc.evidence import custody
from bwc.evidence.events import NewEvent, decode_leaf
from bwc.evidence.items import resolve_id
from bwc.evidence.models import CaseLink, EnforcementCase, Item, ItemRetention
from bwc.evidence.station import Station
from bwc.evidence.verify.core import EventColumns, LoggedEvent, event_problems, logged_cases

LINKED = "case-linked"
UNLINKED = "case-unlinked"
# a reason is free text, but one line (it is printed in reports) and not a novel
REASON_MAX = 2000
_CLOSE_MATCHES = 3
_CANDIDATES = 2000  # case ids compared with an unknown one (those sharing its first digits)


def require_reason(reason: str) -> str:
    problem = text_problem(reason, REASON_MAX)
    if problem is not None:
        raise UsageError(f"--reason {problem}", hint='pass --reason "why"; nothing was changed')
    return reason


def known_case(session: Session, case_id: str) -> EnforcementCase | None:
    """The case as the audit imported it, or None."""
    return session.get(EnforcementCase, case_id)


def close_matches(session: Session, case_id: str) -> list[str]:
    """Imported case ids that look like ``case_id`` (a typo's likely intent). Cheap: only
    ids sharing its first characters are compared, whatever the number of cases."""
    head = case_id[: max(1, min(4, len(case_id) // 2))]
    ids = list(
        session.exec(
            select(EnforcementCase.case_id)
            .where(col(EnforcementCase.case_id).startswith(head, autoescape=True))
            .limit(_CANDIDATES)
        )
    )
    return difflib.get_close_matches(case_id, ids, n=_CLOSE_MATCHES, cutoff=0.6)


def require_case(session: Session, case_id: str, *, new_case: bool) -> None:
    """NotFoundError unless ``case_id`` is an imported case or ``new_case`` says it is new."""
    if new_case or known_case(session, case_id) is not None:
        return
    near = close_matches(session, case_id)
    raise NotFoundError(
        f"case {case_id!r} is not among the imported cases"
        + (f" (did you mean {', '.join(repr(c) for c in near)}?)" if near else ""),
        hint="check the id, import it with `bwc audit import cases`, or pass --new-case "
        "if it is a new case; nothing was changed",
    )


def links_of(session: Session, sha256: str) -> set[str]:
    """The cases the catalog links an item to."""
    return set(session.exec(select(CaseLink.case_id).where(CaseLink.sha256 == sha256)))


def linked_items(session: Session, case_id: str) -> list[str]:
    """The sha256s the catalog links to ``case_id`` (unchecked: see :func:`items_of_case`)."""
    return list(
        session.exec(
            select(CaseLink.sha256)
            .where(CaseLink.case_id == case_id)
            .order_by(col(CaseLink.sha256))
        )
    )


def add_link_row(session: Session, station: Station, case_id: str, sha256: str) -> bool:
    """Add the catalog row of a link (inside the caller's transaction, which also appends
    the `case-linked` event); False when the item is already linked to the case."""
    if session.get(CaseLink, (case_id, sha256)) is not None:
        return False
    session.add(
        CaseLink(
            case_id=case_id, sha256=sha256, linked_at=station.clock.now(), linked_by=station.actor
        )
    )
    return True


def keep_earlier_link(
    session: Session, station: Station, sha256: str, case_id: str
) -> list[NewEvent]:
    """``classify --case`` naming another case than the one the item's class was set for
    (``case_id``): that case stays linked. A link made before links had events (migration
    0009) rests on the earlier `retention-changed` event alone, which the new one replaces
    as the class's case; so it gets a `case-linked` event of its own (inside the caller's
    transaction). Nothing when the catalog has no such link or the log already has one."""
    if session.get(CaseLink, (case_id, sha256)) is None:
        return []
    explicit: set[str] = set()
    for ev in custody.iter_events(session, sha256):
        if ev.kind not in (LINKED, UNLINKED):
            continue
        try:
            case = decode_leaf(ev.leaf).details.get("case")
        except ValueError:
            continue  # reported by `bwc verify`
        if ev.kind == LINKED:
            explicit.add(str(case))
        else:
            explicit.discard(str(case))
    if case_id in explicit:
        return []
    why = "linked before case links were logged; kept when the class's case changed"
    return [station.event(LINKED, sha256, case=case_id, reason=why)]


def logged_links(session: Session, sha256: str) -> tuple[set[str], list[str]]:
    """The cases an item's custody events link it to, and what is wrong with those events
    (a leaf that does not decode, a catalog row that is not its leaf): read from the
    events' leaves, never from the catalog's columns."""
    decoded = []
    problems: list[str] = []
    for ev in custody.iter_events(session, sha256):
        columns = EventColumns(
            ev.kind, ev.at, ev.actor, ev.station_id, ev.item_sha256, ev.leaf_hash
        )
        found = event_problems(LoggedEvent(ev.idx, ev.leaf, None, columns))
        if found:
            problems.extend(found)
            continue
        decoded.append(decode_leaf(ev.leaf))
    return logged_cases(d for d in decoded if d.item_sha256 == sha256), problems


def items_of_case(session: Session, case_id: str) -> list[str]:
    """The sha256s of the items linked to ``case_id`` whose link is current and logged: a
    catalog row backed by the item's custody events (a `case-linked` not undone, or the
    case of its last `retention-changed`), each event's leaf matching its row. A row the
    log does not back is left out (`bwc verify` and `bwc case show` report it). Sorted.

    The exporter's one way to select a case's footage; it still verifies every item it
    exports (object, signature, inclusion proofs)."""
    out = []
    for sha in linked_items(session, case_id):
        logged, problems = logged_links(session, sha)
        if case_id in logged and not problems:
            out.append(sha)
    return out


# ---------------------------------------------------------------------------- link / unlink


@dataclass(frozen=True)
class LinkOutcome:
    sha256: str
    changed: bool  # False: it already was (un)linked; nothing logged


def _items(session: Session, ids: Sequence[str]) -> list[Item]:
    """The items named, each once, in the order given."""
    seen: dict[str, Item] = {}
    for i in ids:
        item = resolve_id(session, i)
        seen.setdefault(item.sha256, item)
    return list(seen.values())


def link(
    station: Station, case_id: str, ids: Sequence[str], reason: str, *, new_case: bool
) -> list[LinkOutcome]:
    """Link items to a case: one `case-linked` event per item not yet linked (an item
    already linked is reported as such, and nothing is logged for it); then a checkpoint."""
    return _change(station, case_id, ids, reason, new_case=new_case, add=True)


def unlink(station: Station, case_id: str, ids: Sequence[str], reason: str) -> list[LinkOutcome]:
    """Remove items' links to a case: one `case-unlinked` event per linked item. The item's
    retention is not changed (only the case it names, when it named this one)."""
    return _change(station, case_id, ids, reason, new_case=True, add=False)


def _change(
    station: Station,
    case_id: str,
    ids: Sequence[str],
    reason: str,
    *,
    new_case: bool,
    add: bool,
) -> list[LinkOutcome]:
    from bwc.evidence.verify.run import require_proven

    require_id(case_id, "CASE")
    require_reason(reason)
    if not ids:
        raise UsageError("name at least one evidence id")
    station.signer()  # an unknown or wrong key refuses before anything changes
    with station.session(snapshot=True) as s:
        if add:
            require_case(s, case_id, new_case=new_case)
        items = _items(s, ids)
    for item in items:
        # what is logged about it must verify before more is logged on top of it
        require_proven(station, item.sha256)
    out: list[LinkOutcome] = []
    with station.session() as s:
        custody.lock_head(s)  # serialize with other stations' links of the same items
        events = []
        for item in items:
            if add:
                changed = add_link_row(s, station, case_id, item.sha256)
            else:
                row = s.get(CaseLink, (case_id, item.sha256))
                changed = row is not None
                if row is not None:
                    s.delete(row)
                    _clear_retention_case(s, item.sha256, case_id)
            if changed:
                kind = LINKED if add else UNLINKED
                events.append(station.event(kind, item.sha256, case=case_id, reason=reason))
            out.append(LinkOutcome(item.sha256, changed))
        custody.append_events(s, events)
    if any(o.changed for o in out):
        station.checkpoint()
    return out


def _clear_retention_case(session: Session, sha256: str, case_id: str) -> None:
    """The retention row names the case its class was set for (``classify --case``): an
    unlink of that case clears it, as ``retention.replay`` folds the `case-unlinked` event."""
    row = session.get(ItemRetention, sha256)
    if row is not None and row.case_id == case_id:
        row.case_id = None
        session.add(row)
