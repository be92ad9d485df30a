"""A case as a whole: what `bwc case show` shows, and classifying, holding or releasing all
of a case's items in one command with :mod:`bwc.evidence.lifecycle`'s per-item functions.

All or nothing where it can be: every item is checked first (its link and its record are
what was logged, the change is allowed), and nothing is changed when one fails; a failure
while changing (the store refusing, another station racing) stops there, naming the item
and how many were already changed (each of those is logged, and stays so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select

from bwc.errors import BwcError, NotFoundError, UsageError, VerificationError
from bwc.evidence import lifecycle, retention, trust
from bwc.evidence.cases import known_case, linked_items, logged_links, require_reason
from bwc.evidence.custody import iter_events
from bwc.evidence.models import CaseOfficer, EnforcementCase, Item
from bwc.evidence.station import Station
from bwc.evidence.verify import catalog
from bwc.evidence.verify.run import verification_history


@dataclass(frozen=True)
class CaseItem:
    item: Item
    class_name: str
    classified: bool
    on_hold: bool
    deleted: bool
    verified: bool | None  # None: never verified (last run) / not checked
    verified_at: datetime | None  # the last run's time (None: checked now, or never)
    failures: list[str]
    link_problems: list[str]  # the link to this case is not what the log says


@dataclass
class CaseView:
    case_id: str
    case: EnforcementCase | None  # None: not among the imported cases
    officers: list[str]
    items: list[CaseItem]
    fresh: bool  # verification state checked now (else: the last recorded run)
    log_problems: list[str] = field(default_factory=list)

    @property
    def link_problems(self) -> list[str]:
        return [f"{i.item.sha256[:16]}: {p}" for i in self.items for p in i.link_problems]


def view(station: Station, case_id: str, *, fresh: bool) -> CaseView:
    """A case and its items; ``fresh``: each item verified now (objects re-hashed),
    otherwise as the last recorded verification run left it."""
    with station.session(snapshot=True) as s:
        case = known_case(s, case_id)
        shas = linked_items(s, case_id)
        if case is None and not shas:
            raise NotFoundError(
                f"no case {case_id!r}: not imported, and no item is linked to it",
                hint="see `bwc audit import cases` and `bwc case link`",
            )
        officers = list(
            s.exec(
                select(CaseOfficer.officer_id)
                .where(CaseOfficer.case_id == case_id)
                .order_by(col(CaseOfficer.officer_id))
            )
        )
        items = [i for i in (s.get(Item, sha) for sha in shas) if i is not None]
        items.sort(key=lambda i: (i.recorded_start is None, i.recorded_start, i.sha256))
        reports: dict[str, tuple[bool, list[str]]] = {}
        log_problems: list[str] = []
        if fresh and items:
            t = catalog.trust_latest(
                s, station.store, trust.load(station.settings.home), station.station_id
            )
            log_problems = list(t.log.problems)
            for rep in catalog.verify_items(
                s, station.store, items, t, workers=station.settings.verify_workers
            ):
                reports[rep.sha256] = (rep.ok, [f"{c.name}: {c.detail}" for c in rep.failures()])
        out: list[CaseItem] = []
        for item in items:
            state = lifecycle.load_state(s, item, station)
            logged, problems = logged_links(s, item.sha256)
            if case_id not in logged:
                problems.append(
                    f"linked to {case_id!r} in the catalog, but no `case-linked` custody event "
                    "records it (linked outside bwc, or unlinked)"
                )
            ok: bool | None
            at: datetime | None = None
            failures: list[str] = []
            if fresh:
                ok, failures = reports[item.sha256]
            else:
                runs = verification_history(s, item.sha256, list(iter_events(s, item.sha256)))
                ok, at = (runs[-1].ok, runs[-1].at) if runs else (None, None)
            out.append(
                CaseItem(
                    item,
                    state.class_name,
                    state.classified,
                    state.on_hold,
                    state.deleted,
                    ok,
                    at,
                    failures,
                    problems,
                )
            )
    return CaseView(case_id, case, officers, out, fresh, log_problems)


# ---------------------------------------------------------------------------- the whole case


@dataclass(frozen=True)
class ItemDone:
    sha256: str
    status: str  # changed, already, deleted (deleted by policy: nothing to do)
    message: str


def _case_items(station: Station, case_id: str) -> list[Item]:
    """The case's items, each link checked against the log first: a whole-case change
    rests on which items are the case's."""
    with station.session(snapshot=True) as s:
        shas = linked_items(s, case_id)
        if not shas:
            raise NotFoundError(
                f"no item is linked to case {case_id!r}", hint="see `bwc case link`"
            )
        items = []
        for sha in shas:
            logged, problems = logged_links(s, sha)
            if case_id not in logged or problems:
                why = problems[0] if problems else "no `case-linked` custody event records it"
                raise VerificationError(
                    f"{sha[:16]}: its link to case {case_id!r} is not what the custody log "
                    f"says ({why}), so nothing was changed",
                    hint=f"run `bwc verify {sha[:16]}` and `bwc case show {case_id}`",
                )
            item = s.get(Item, sha)
            if item is not None:
                items.append(item)
    return items


def _failed_at(e: BwcError, sha: str, done: int, total: int) -> BwcError:
    """``e`` again, saying which item it stopped at and how many were changed before it."""
    before = (
        f"{done} of {total} items were changed before it (each logged)"
        if done
        else "nothing was changed"
    )
    return type(e)(f"{sha[:16]}: {e.message}; {before}", hint=e.hint)


def classify(
    station: Station, case_id: str, class_name: str, reason: str, *, force: bool
) -> list[ItemDone]:
    """Give every item of the case retention class ``class_name`` (lengthening only, unless
    ``force``); items already of that class are left as they are."""
    require_reason(reason)
    station.signer()
    items = _case_items(station, case_id)
    policy = station.settings.retention
    cls = policy.get(class_name)
    if cls is None:
        raise UsageError(
            f"unknown retention class {class_name!r}",
            hint="known classes: " + ", ".join(c.name for c in policy.classes),
        )
    todo: list[Item] = []
    out: list[ItemDone] = []
    for item in items:  # every item checked before any is changed
        with station.session(snapshot=True) as s:
            state = lifecycle.load_state(s, item, station)
        if state.deleted:
            out.append(ItemDone(item.sha256, "deleted", "deleted by retention policy"))
            continue
        until = retention.retain_until(cls, state.ingested_at)
        if state.class_name == cls.name and state.retain_until == until:
            out.append(ItemDone(item.sha256, "already", f"already of class {cls.name}"))
            continue
        try:
            retention.plan_change(state, cls.name, policy, case_id=None, reason=reason, force=force)
            lifecycle.require_record(station, item.sha256)
        except BwcError as e:
            raise _failed_at(e, item.sha256, 0, len(items)) from e
        todo.append(item)
    for n, item in enumerate(todo):
        try:
            res = lifecycle.classify(
                station,
                item.sha256,
                cls.name,
                case_id=None,
                reason=f"case {case_id}: {reason}",
                force=force,
            )
        except BwcError as e:
            raise _failed_at(e, item.sha256, n, len(todo)) from e
        out.append(ItemDone(item.sha256, "changed", res.message))
    return out


def hold(station: Station, case_id: str, reason: str, *, place: bool) -> list[ItemDone]:
    """Place (or release) a legal hold on every item of the case; items already held (or
    not held) are left as they are."""
    require_reason(reason)
    station.signer()
    items = _case_items(station, case_id)
    todo: list[Item] = []
    out: list[ItemDone] = []
    for item in items:
        with station.session(snapshot=True) as s:
            state = lifecycle.load_state(s, item, station)
        if state.deleted:
            out.append(ItemDone(item.sha256, "deleted", "deleted by retention policy"))
            continue
        if state.on_hold == place:
            what = "already on legal hold" if place else "not on legal hold"
            out.append(ItemDone(item.sha256, "already", what))
            continue
        try:
            lifecycle.require_record(station, item.sha256)
        except BwcError as e:
            raise _failed_at(e, item.sha256, 0, len(items)) from e
        todo.append(item)
    for n, item in enumerate(todo):
        why = f"case {case_id}: {reason}"
        try:
            res = (
                lifecycle.place_hold(station, item.sha256, why)
                if place
                else lifecycle.release_hold(station, item.sha256, why)
            )
        except BwcError as e:
            raise _failed_at(e, item.sha256, n, len(todo)) from e
        out.append(ItemDone(item.sha256, "changed", res.message))
    return out
