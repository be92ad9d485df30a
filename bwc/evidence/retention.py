"""Retention classes and legal holds: pure logic over values.

Nothing here reads a clock, the catalog or a store: callers pass ``now`` and the state of
each item, and get back dates, decisions and reasons. The rules (DESIGN.md): footage is kept
at least 6 months from its ingest; evidence, obstruction, major and mass incidents are kept
permanently; a class change may only lengthen retention unless forced (with a reason); an item
on legal hold is never deleted; a store's Object Lock is only ever extended, never shortened.

A date of ``None`` means *permanent* (later than any date).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bwc.config.settings import RetentionClass, RetentionSettings
from bwc.errors import UsageError
from bwc.evidence.timefmt import ensure_utc, format_utc, parse_utc

ACTIVE = "active"
DELETED = "deleted-by-policy"
PERMANENT = "permanent"  # how a permanent date is written in custody event details
RENEW_WITHIN = timedelta(days=365)  # extend a permanent item's lock when less is left


def add_months(t: datetime, months: int) -> datetime:
    """``t`` plus whole calendar months. A day the target month lacks (31 August + 6 months)
    rounds *up* to the first of the next month: retention never comes out short."""
    t = ensure_utc(t)
    total = t.month - 1 + months
    year, month = t.year + total // 12, total % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if t.day <= last:
        return t.replace(year=year, month=month)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return t.replace(year=year, month=month, day=1)


def retain_until(cls: RetentionClass, since: datetime) -> datetime | None:
    """The date until which an item of ``cls`` ingested at ``since`` is kept (None: forever)."""
    if cls.permanent:
        return None
    return add_months(since, cls.months) + timedelta(days=cls.days)


def is_later(a: datetime | None, b: datetime | None) -> bool:
    """Is ``a`` strictly later than ``b``? (None is permanent, later than any date.)"""
    if a is None:
        return b is not None
    return b is not None and a > b


def describe_until(until: datetime | None) -> str:
    return PERMANENT if until is None else format_utc(until)


def parse_until(text: Any) -> datetime | None:
    """The inverse of :func:`describe_until` (for logged details); ValueError when malformed."""
    if text == PERMANENT:
        return None
    if not isinstance(text, str):
        raise ValueError(f"not a retention date: {text!r}")
    return parse_utc(text)


def lock_target(until: datetime | None, now: datetime, lock_years: int) -> datetime | None:
    """The Object Lock date a store should hold for an item kept ``until``: the date itself,
    or for permanent items ``lock_years`` ahead of ``now``. None when no lock is needed (the
    date is already past: S3 refuses retention dates in the past). Whole seconds, rounded
    up: a lock never ends before the date it stands for."""
    target = add_months(now, 12 * lock_years) if until is None else until
    if target <= now:
        return None
    if target.microsecond:
        target = target.replace(microsecond=0) + timedelta(seconds=1)
    return target


@dataclass(frozen=True)
class ItemState:
    """Where one item stands: its class (explicit, or the default for unclassified items),
    its retention date, case link, hold and deletion, and the Object Lock date last applied."""

    sha256: str
    ingested_at: datetime
    class_name: str
    retain_until: datetime | None
    case_id: str | None = None
    on_hold: bool = False
    deleted: bool = False
    classified: bool = False  # False: never classified, follows the default class
    lock_until: datetime | None = None  # the store's lock as last set by bwc (None: unknown)
    hold_reason: str | None = None


def state_of(
    sha256: str,
    ingested_at: datetime,
    policy: RetentionSettings,
    *,
    class_name: str | None = None,
    retain: datetime | None = None,
    case_id: str | None = None,
    deleted: bool = False,
    lock_until: datetime | None = None,
    hold_reason: str | None = None,
) -> ItemState:
    """An item's state from its catalog values; ``class_name`` None: never classified, so it
    follows the configured default class, counted from its ingest."""
    if class_name is None:
        cls = policy.default_class
        return ItemState(
            sha256,
            ingested_at,
            cls.name,
            retain_until(cls, ingested_at),
            on_hold=hold_reason is not None,
            deleted=deleted,
            lock_until=lock_until,
            hold_reason=hold_reason,
        )
    return ItemState(
        sha256,
        ingested_at,
        class_name,
        retain,
        case_id=case_id,
        on_hold=hold_reason is not None,
        deleted=deleted,
        classified=True,
        lock_until=lock_until,
        hold_reason=hold_reason,
    )


@dataclass(frozen=True)
class ClassChange:
    sha256: str
    old_class: str
    new_class: str
    old_until: datetime | None
    new_until: datetime | None
    case_id: str | None
    forced: bool

    @property
    def shortens(self) -> bool:
        return is_later(self.old_until, self.new_until)

    @property
    def lengthens(self) -> bool:
        return is_later(self.new_until, self.old_until)


def plan_change(
    state: ItemState,
    new_class: str,
    policy: RetentionSettings,
    *,
    case_id: str | None,
    reason: str,
    force: bool,
) -> ClassChange:
    """Check a class change against the rules; raise UsageError naming what is wrong."""
    if not reason.strip():
        raise UsageError("a reason is required", hint='pass --reason "…"')
    if state.deleted:
        raise UsageError(f"item {state.sha256[:16]} was deleted by retention policy")
    cls = policy.get(new_class)
    if cls is None:
        raise UsageError(
            f"unknown retention class {new_class!r}",
            hint="known classes: " + ", ".join(c.name for c in policy.classes),
        )
    new_until = retain_until(cls, state.ingested_at)
    change = ClassChange(
        state.sha256,
        state.class_name,
        cls.name,
        state.retain_until,
        new_until,
        case_id if case_id is not None else state.case_id,
        force,
    )
    if change.shortens and not force:
        raise UsageError(
            f"class {cls.name} would shorten the retention of {state.sha256[:16]} from "
            f"{describe_until(state.retain_until)} to {describe_until(new_until)}",
            hint="a class can only lengthen retention; pass --force with a reason to shorten it",
        )
    unchanged = not change.shortens and not change.lengthens
    if unchanged and change.old_class == change.new_class and change.case_id == state.case_id:
        raise UsageError(
            f"item {state.sha256[:16]} is already of class {cls.name}"
            + (f" linked to case {state.case_id}" if state.case_id else "")
        )
    return change


def check_hold(state: ItemState, reason: str, *, place: bool) -> None:
    if not reason.strip():
        raise UsageError("a reason is required", hint='pass --reason "…"')
    if state.deleted:
        raise UsageError(f"item {state.sha256[:16]} was deleted by retention policy")
    if place and state.on_hold:
        raise UsageError(
            f"item {state.sha256[:16]} is already on legal hold ({state.hold_reason})",
            hint="release it first to change the hold",
        )
    if not place and not state.on_hold:
        raise UsageError(f"item {state.sha256[:16]} is not on legal hold")


# ---------------------------------------------------------------------------- apply

DELETE = "delete"
KEEP = "keep"  # past its date but kept: on hold, or its store still locks it
EXTEND = "extend-lock"  # permanent item whose Object Lock must be extended


@dataclass(frozen=True)
class Decision:
    sha256: str
    action: str
    class_name: str
    retain_until: datetime | None
    reason: str
    lock_until: datetime | None = None  # for EXTEND: the new lock date


def decide(
    states: Iterable[ItemState], now: datetime, policy: RetentionSettings, *, store_locks: bool
) -> list[Decision]:
    """What `bwc retention apply` does with each item at ``now``: delete those past their
    date and not on hold; list those past their date but held; extend the Object Lock of
    permanent items when less than a year of it is left. Items not yet due are not listed."""
    out: list[Decision] = []
    for st in states:
        if st.deleted:
            continue
        if st.retain_until is None:
            if store_locks and (st.lock_until is None or st.lock_until - now < RENEW_WITHIN):
                target = lock_target(None, now, policy.permanent_lock_years)
                out.append(
                    Decision(
                        st.sha256,
                        EXTEND,
                        st.class_name,
                        None,
                        f"permanent class {st.class_name}: Object Lock "
                        + (
                            f"ends {format_utc(st.lock_until)}"
                            if st.lock_until
                            else "not yet set by bwc"
                        )
                        + f", extend to {describe_until(target)}",
                        target,
                    )
                )
            continue
        if st.retain_until > now:
            continue
        past = _days(now - st.retain_until)
        why = f"class {st.class_name}: retained until {format_utc(st.retain_until)} ({past} ago)"
        if st.on_hold:
            out.append(
                Decision(
                    st.sha256,
                    KEEP,
                    st.class_name,
                    st.retain_until,
                    f"{why}, but on legal hold ({st.hold_reason})",
                )
            )
        else:
            out.append(
                Decision(
                    st.sha256,
                    DELETE,
                    st.class_name,
                    st.retain_until,
                    f"{why}, not on hold",
                )
            )
    return out


def _days(d: timedelta) -> str:
    if d.days >= 1:
        return f"{d.days} day{'s' if d.days != 1 else ''}"
    hours = int(d.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours else "just now"


def due_before(policy: RetentionSettings, now: datetime) -> datetime:
    """A bound on ingest times for the catalog query of unclassified items: one ingested
    after it cannot be due at ``now`` under the default class (months count as 28 days
    here, so the bound only ever includes more, and :func:`decide` checks exactly)."""
    cls = policy.default_class
    if cls.permanent:
        return now
    return now - timedelta(days=28 * cls.months + cls.days)


# ---------------------------------------------------------------------------- the log


@dataclass(frozen=True)
class Logged:
    """An item's retention as its custody events tell it."""

    class_name: str | None = None  # None: never classified
    retain_until: datetime | None = None
    case_id: str | None = None
    on_hold: bool = False
    deleted: bool = False


def replay(events: Iterable[tuple[str, dict[str, Any]]]) -> Logged:
    """Fold an item's custody events (kind, details), oldest first, into its logged state."""
    cls: str | None = None
    until: datetime | None = None
    case: str | None = None
    hold = False
    deleted = False
    for kind, d in events:
        if kind == "retention-changed":
            if isinstance(d.get("to"), str):
                cls = d["to"]
            if "retain_until" in d:
                until = parse_until(d["retain_until"])
            case = d.get("case") if isinstance(d.get("case"), str) else case
        elif kind == "case-unlinked" and d.get("case") == case:
            case = None  # `bwc case unlink` of the case the class was set for
        elif kind == "hold-placed":
            hold = True
        elif kind == "hold-released":
            hold = False
        elif kind == "deleted-by-policy":
            deleted = True  # the record keeps the class and date it was deleted under
            if isinstance(d.get("class"), str):
                cls = d["class"]
            if "retain_until" in d:
                until = parse_until(d["retain_until"])
    return Logged(cls, until, case, hold, deleted)


def differs_from_log(state: ItemState, logged: Logged) -> str | None:
    """Why the catalog's retention of an item disagrees with its custody log, or None.
    `retention apply` deletes nothing whose catalog rows were changed outside bwc."""
    problems: list[str] = []
    if state.classified != (logged.class_name is not None):
        problems.append(
            f"catalog class {state.class_name if state.classified else '(default)'}, "
            f"logged {logged.class_name or '(default)'}"
        )
    elif state.classified:
        if state.class_name != logged.class_name:
            problems.append(f"catalog class {state.class_name}, logged {logged.class_name}")
        if state.retain_until != logged.retain_until:
            problems.append(
                f"catalog keeps it until {describe_until(state.retain_until)}, "
                f"logged {describe_until(logged.retain_until)}"
            )
        if state.case_id != logged.case_id:
            problems.append(f"catalog case {state.case_id or '-'}, logged {logged.case_id or '-'}")
    if state.on_hold != logged.on_hold:
        problems.append(
            "the log says it is on legal hold" if logged.on_hold else "hold not in the log"
        )
    if state.deleted != logged.deleted:
        problems.append("deletion state differs from the log")
    return "; ".join(problems) or None
