"""Retention classes, legal holds and deletion by policy, carried out on the catalog, the
store and the custody log together. The rules live in :mod:`bwc.evidence.retention` (pure);
this module applies them.

Order of work, so that a crash or a failure never leaves evidence less protected than the
catalog says: the store is changed first (lock extended, hold placed or lifted, object
deleted), then the catalog row and the custody event are written in one transaction, with the
log head locked so that stations sharing a catalog serialize. A deletion re-checks the item
inside that transaction, and deletes only when every fact it rests on is what was signed and
logged: the catalog row against the signed manifest (ingest time, recorded times, ...), the
item's custody events each proven in the latest signed checkpoint, and the catalog's class,
date, case and hold against those events (a catalog row is a cache, never the authority).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bwc.config.limits import require_id
from bwc.errors import BwcError, CatalogError, VerificationError
from bwc.evidence import cases, custody, retention, trust
from bwc.evidence.items import resolve_id
from bwc.evidence.models import Item, ItemRetention, LegalHold
from bwc.evidence.retention import ItemState, Logged
from bwc.evidence.station import Station
from bwc.evidence.timefmt import format_utc
from bwc.evidence.verify import catalog
from bwc.evidence.verify.catalog import verify_log
from bwc.evidence.verify.core import LogTrust, check_record, decoded

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- state


def open_hold(session: Session, sha256: str) -> LegalHold | None:
    return session.exec(
        select(LegalHold).where(LegalHold.sha256 == sha256, col(LegalHold.released_at).is_(None))
    ).first()


def load_state(session: Session, item: Item, station: Station) -> ItemState:
    row = session.get(ItemRetention, item.sha256)
    hold = open_hold(session, item.sha256)
    return _state(item.sha256, item.ingested_at, row, hold, station)


def _state(
    sha: str,
    ingested_at: datetime,
    row: ItemRetention | None,
    hold: LegalHold | None,
    station: Station,
) -> ItemState:
    policy = station.settings.retention
    hold_reason = hold.reason if hold else None
    if row is None:
        return retention.state_of(sha, ingested_at, policy, hold_reason=hold_reason)
    return retention.state_of(
        sha,
        ingested_at,
        policy,
        class_name=row.class_name,
        retain=row.retain_until,
        case_id=row.case_id,
        deleted=row.state == retention.DELETED,
        lock_until=row.lock_until,
        hold_reason=hold_reason,
    )


def logged_state(session: Session, sha256: str) -> Logged:
    events: list[tuple[str, dict[str, Any]]] = []
    for ev in custody.iter_events(session, sha256):
        try:
            dec = custody.decode_leaf(ev.leaf)
        except ValueError:
            continue  # reported by `bwc log verify`
        events.append((dec.kind, dec.details))
    return retention.replay(events)


def _row(session: Session, sha: str, state: ItemState) -> ItemRetention:
    row = session.get(ItemRetention, sha)
    if row is None:
        row = ItemRetention(
            sha256=sha,
            class_name=state.class_name,
            case_id=state.case_id,
            retain_until=state.retain_until,
            lock_until=state.lock_until,
            changed_at=state.ingested_at,
            changed_by="",
        )
    return row


def _same(a: ItemState, b: ItemState) -> bool:
    return (a.class_name, a.retain_until, a.case_id, a.on_hold, a.deleted) == (
        b.class_name,
        b.retain_until,
        b.case_id,
        b.on_hold,
        b.deleted,
    )


def _changed_meanwhile(sha: str) -> CatalogError:
    return CatalogError(
        f"the retention of {sha[:16]} was changed by another station meanwhile",
        hint="run the command again",
    )


# ---------------------------------------------------------------------------- classify


@dataclass(frozen=True)
class Outcome:
    sha256: str
    message: str
    store_enforced: bool
    details: dict[str, Any] = field(default_factory=dict)


def classify(
    station: Station,
    item_id: str,
    class_name: str,
    *,
    case_id: str | None,
    reason: str,
    force: bool,
) -> Outcome:
    """Change an item's retention class (and case link). Longer retention only, unless
    ``force``; the store's lock is extended to match, never shortened."""
    if case_id is not None:
        require_id(case_id, "--case")
    station.signer()  # an unknown or wrong key refuses before anything changes
    policy = station.settings.retention
    now = station.clock.now()
    with station.session() as s:
        item = resolve_id(s, item_id)
        before = load_state(s, item, station)
    require_record(station, item.sha256)  # its ingest time and retention are what was logged
    change = retention.plan_change(
        before, class_name, policy, case_id=case_id, reason=reason, force=force
    )
    sha = item.sha256
    lock: datetime | None = None
    if change.lengthens or (change.new_until is None and before.lock_until is None):
        target = retention.lock_target(change.new_until, now, policy.permanent_lock_years)
        if target is not None:
            lock = station.store.extend_retention(sha, target)
    with station.session() as s:
        custody.lock_head(s)
        item = s.get(Item, sha) or item
        if not _same(load_state(s, item, station), before):
            raise _changed_meanwhile(sha)
        row = _row(s, sha, before)
        row.class_name = change.new_class
        row.case_id = change.case_id
        row.retain_until = change.new_until
        if lock is not None and (row.lock_until is None or lock > row.lock_until):
            row.lock_until = lock
        row.changed_at = now
        row.changed_by = station.actor
        s.add(row)
        details: dict[str, Any] = {
            "from": change.old_class,
            "to": change.new_class,
            "case": change.case_id,
            "reason": reason,
            "forced": force,
            "previous_retain_until": retention.describe_until(change.old_until),
            "retain_until": retention.describe_until(change.new_until),
            "store_lock_until": format_utc(row.lock_until) if row.lock_until else None,
        }
        events = [station.event("retention-changed", sha, **details)]
        if case_id is not None and before.case_id not in (None, case_id):
            events += cases.keep_earlier_link(s, station, sha, before.case_id)
        # --case also links the item to the case (`bwc case link`), logged as such
        if case_id is not None and cases.add_link_row(s, station, case_id, sha):
            events.append(station.event(cases.LINKED, sha, case=case_id, reason=reason))
        custody.append_events(s, events)
    station.checkpoint()
    what = (
        f"{sha[:16]}: class {change.old_class} -> {change.new_class}"
        + (f", case {change.case_id}" if change.case_id else "")
        + f"; kept until {retention.describe_until(change.new_until)}"
    )
    if change.shortens:
        what += " (shortened, forced)"
        if before.lock_until is not None:
            what += (
                f"; the store's Object Lock still keeps it until {format_utc(before.lock_until)}"
            )
    if lock is not None:
        what += f"; Object Lock (COMPLIANCE) until {format_utc(lock)}"
    return Outcome(sha, what, lock is not None, details)


# ---------------------------------------------------------------------------- holds


def place_hold(station: Station, item_id: str, reason: str) -> Outcome:
    return _hold(station, item_id, reason, place=True)


def release_hold(station: Station, item_id: str, reason: str) -> Outcome:
    return _hold(station, item_id, reason, place=False)


def _hold(station: Station, item_id: str, reason: str, *, place: bool) -> Outcome:
    station.signer()  # an unknown or wrong key refuses before anything changes
    now = station.clock.now()
    with station.session() as s:
        item = resolve_id(s, item_id)
        before = load_state(s, item, station)
    retention.check_hold(before, reason, place=place)
    require_record(station, item.sha256)
    sha = item.sha256
    enforced = station.store.set_legal_hold(sha, place)
    with station.session() as s:
        custody.lock_head(s)
        if not _same(load_state(s, item, station), before):
            raise _changed_meanwhile(sha)
        if place:
            s.add(LegalHold(sha256=sha, reason=reason, placed_at=now, placed_by=station.actor))
        else:
            hold = open_hold(s, sha)
            assert hold is not None  # checked above, under the same lock
            hold.released_at = now
            hold.released_by = station.actor
            hold.release_reason = reason
            s.add(hold)
        kind = "hold-placed" if place else "hold-released"
        store = "object-lock" if enforced else "catalog-only"
        custody.append_events(s, [station.event(kind, sha, reason=reason, store=store)])
    station.checkpoint()
    verb = "placed on legal hold" if place else "released from legal hold"
    where = (
        "in the catalog and the store (Object Lock legal hold)"
        if enforced
        else "in the catalog (the store has no Object Lock)"
    )
    return Outcome(sha, f"{sha[:16]}: {verb} {where}", enforced, {"reason": reason})


# ---------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class Applied:
    decision: retention.Decision
    # deleted, extended, kept, would-delete, would-extend, refused, failed, unverified (the
    # catalog's facts are not what was signed and logged: not deleted)
    status: str
    detail: str = ""


@dataclass
class ApplyReport:
    now: datetime
    dry_run: bool
    store_locks: bool
    entries: list[Applied] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries if e.status == status)

    @property
    def failures(self) -> list[Applied]:
        return [e for e in self.entries if e.status in ("refused", "failed", UNVERIFIED)]

    @property
    def unverified(self) -> list[Applied]:
        return [e for e in self.entries if e.status == UNVERIFIED]


UNVERIFIED = "unverified"


@dataclass(frozen=True)
class _Trusted:
    """The latest signed checkpoint, checked once per run; each item's events are proven in
    it from the catalog's tiles read in the session at hand."""

    log: LogTrust
    size: int


def record_problems(s: Session, item: Item, state: ItemState, trusted: _Trusted) -> list[str]:
    """Why the facts a deletion of ``item`` rests on cannot be trusted (empty: they can).
    The verification core's checks without the store (the catalog row against the signed
    manifest: ingest and recorded times, station, device...; the item's events proven in
    the signed log), then the catalog's retention (class, date, case, hold, deletion)
    against those proven events."""
    t = catalog.Trust(trusted.log, custody.tree(s, trusted.size))
    events = catalog.item_events(s, item.sha256, t)
    rep = check_record(
        item.sha256,
        item.manifest,
        item.signature,
        key_id=item.key_id,
        events=events,
        log=trusted.log,
        row=item,
    )
    # the item's events and the log first: a failure there explains the others
    first = ("custody", "log")
    failures = sorted(rep.failures(), key=lambda c: c.name not in first)
    out = [f"{c.name}: {c.detail}" for c in failures]
    logged = retention.replay(
        (d.kind, d.details) for d in decoded(events) if d.item_sha256 == item.sha256
    )
    why = retention.differs_from_log(state, logged)
    if why:
        out.append(f"retention: the catalog differs from the custody log ({why})")
    return out


def require_record(station: Station, sha256: str) -> None:
    """Before a retention change (class, hold): what it is computed from (the ingest time,
    the class, date, case and hold) must be what was signed and logged, or a tampered row
    would be written into the log as fact (a class counted from a false ingest time).
    ``require_proven``'s checks and more; VerificationError before anything is changed."""
    with station.session(snapshot=True) as s:
        t = catalog.trust_latest(s, station.store, trust.load(station.settings.home))
        item = s.get(Item, sha256)
        if item is None:
            raise CatalogError(f"item {sha256[:16]} vanished from the catalog")
        trusted = _Trusted(t.log, t.tree.size if t.tree is not None else 0)
        problems = record_problems(s, item, load_state(s, item, station), trusted)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerificationError(
            f"{sha256[:16]}: the catalog does not match what was signed and logged, so "
            f"nothing was changed: {problems[0]}{more}",
            hint=f"run `bwc verify {sha256[:16]}` and `bwc log verify` to see all",
        )
    if t.latest_note is not None:
        trust.remember(station.settings.home, t.latest_note)


def _unverified(d: retention.Decision, problems: list[str]) -> Applied:
    return Applied(d, UNVERIFIED, "; ".join(problems) + "; not deleted")


def candidates(session: Session, station: Station, now: datetime) -> list[ItemState]:
    """Items that may be due for deletion or a lock extension at ``now`` (a superset;
    :func:`retention.decide` picks exactly)."""
    policy = station.settings.retention
    holds = {
        h.sha256: h
        for h in session.exec(select(LegalHold).where(col(LegalHold.released_at).is_(None)))
    }
    out: list[ItemState] = []
    soon = now + retention.RENEW_WITHIN
    rows = session.exec(
        select(ItemRetention, Item.ingested_at)
        .join(Item, col(Item.sha256) == col(ItemRetention.sha256))
        .where(ItemRetention.state == retention.ACTIVE)
        .where(
            (col(ItemRetention.retain_until) <= now)
            | (
                col(ItemRetention.retain_until).is_(None)
                & (col(ItemRetention.lock_until).is_(None) | (col(ItemRetention.lock_until) < soon))
            )
        )
        .order_by(col(ItemRetention.sha256))
    )
    for row, ingested_at in rows:
        out.append(_state(row.sha256, ingested_at, row, holds.get(row.sha256), station))
    classified = select(ItemRetention.sha256)
    unclassified = session.exec(
        select(Item.sha256, Item.ingested_at)
        .where(col(Item.sha256).not_in(classified))
        .where(col(Item.ingested_at) <= retention.due_before(policy, now))
        .order_by(col(Item.sha256))
    )
    for sha, ingested_at in unclassified:
        out.append(_state(sha, ingested_at, None, holds.get(sha), station))
    return out


def apply(station: Station, *, dry_run: bool) -> ApplyReport:
    """Delete items past retention and not on hold (store first, every version; the catalog
    row stays, marked deleted-by-policy, with a custody event), extend the Object Lock of
    permanent items that need it. ``dry_run``: list what would happen and change nothing."""
    if not dry_run:
        station.signer()  # an unknown or wrong key refuses before anything is deleted
    now = station.clock.now()
    policy = station.settings.retention
    store_locks = station.store.describe().object_lock
    report = ApplyReport(now, dry_run, store_locks)
    checked: dict[str, list[str]] = {}
    with station.session(snapshot=True) as s:
        log = verify_log(s, station.store, station_id=station.station_id)
        report.log_problems = list(log.problems)
        states = candidates(s, station, now)
        decisions = retention.decide(states, now, policy, store_locks=store_locks)
        t = catalog.trust_latest(s, station.store, trust.load(station.settings.home))
        trusted = _Trusted(t.log, t.tree.size if t.tree is not None else 0)
        if dry_run:  # what a real run would refuse, listed as such
            by_sha = {st.sha256: st for st in states}
            for d in decisions:
                item = s.get(Item, d.sha256)
                if d.action == retention.DELETE and item is not None:
                    checked[d.sha256] = record_problems(s, item, by_sha[d.sha256], trusted)
    if log.problems and not dry_run and any(d.action != retention.KEEP for d in decisions):
        raise VerificationError(
            "the custody log fails verification, so `retention apply` changes nothing: "
            + log.problems[0],
            hint="run `bwc log verify`; `bwc retention apply --dry-run` still lists what is due",
        )
    changed = False
    for d in decisions:
        if d.action == retention.KEEP:
            report.entries.append(Applied(d, "kept"))
        elif checked.get(d.sha256):
            report.entries.append(_unverified(d, checked[d.sha256]))
        elif dry_run:
            report.entries.append(Applied(d, f"would-{d.action.split('-')[0]}"))
        else:
            try:
                entry = (
                    _delete_one(station, d, now, trusted)
                    if d.action == retention.DELETE
                    else _extend_one(station, d, now)
                )
            except BwcError as e:
                logger.warning("retention apply: %s: %s", d.sha256, e)
                entry = Applied(d, "failed", str(e))
            report.entries.append(entry)
            changed = changed or entry.status in ("deleted", "extended")
    if changed:
        station.checkpoint()
    return report


def _delete_one(
    station: Station, d: retention.Decision, now: datetime, trusted: _Trusted
) -> Applied:
    policy = station.settings.retention
    with station.session() as s:
        custody.lock_head(s)  # serialize with holds and classifications from other stations
        item = s.get(Item, d.sha256)
        if item is None:
            return Applied(d, "refused", "the catalog row is gone")
        state = load_state(s, item, station)
        again = retention.decide([state], now, policy, store_locks=False)
        if not again or again[0].action != retention.DELETE:
            return Applied(d, "refused", "changed since it was planned; not deleted")
        # checked here, under the log's lock, so nothing changes between check and delete
        problems = record_problems(s, item, state, trusted)
        if problems:
            return _unverified(d, problems)
        versions = station.store.delete_item(d.sha256)  # StoreError: rolled back, reported
        row = _row(s, d.sha256, state)
        row.state = retention.DELETED
        row.deleted_at = now
        row.changed_at = now
        row.changed_by = station.actor
        s.add(row)
        custody.append_events(
            s,
            [
                station.event(
                    "deleted-by-policy",
                    d.sha256,
                    **{
                        "class": state.class_name,
                        "retain_until": retention.describe_until(state.retain_until),
                        "reason": d.reason,
                        "versions_deleted": versions,
                    },
                )
            ],
        )
    logger.info("deleted by policy: %s (%s)", d.sha256, d.reason)
    return Applied(d, "deleted", f"{versions} stored object version(s) deleted")


def _extend_one(station: Station, d: retention.Decision, now: datetime) -> Applied:
    assert d.lock_until is not None
    until = station.store.extend_retention(d.sha256, d.lock_until)
    if until is None:
        return Applied(d, "refused", "the store has no Object Lock")
    with station.session() as s:
        custody.lock_head(s)
        item = s.get(Item, d.sha256)
        if item is None:
            return Applied(d, "refused", "the catalog row is gone")
        state = load_state(s, item, station)
        row = _row(s, d.sha256, state)
        row.lock_until = until
        s.add(row)
        custody.append_events(
            s,
            [
                station.event(
                    "retention-changed",
                    d.sha256,
                    **{
                        "from": state.class_name,
                        "to": state.class_name,
                        "case": state.case_id,
                        "reason": "Object Lock of permanent footage extended",
                        "forced": False,
                        "previous_retain_until": retention.PERMANENT,
                        "retain_until": retention.describe_until(state.retain_until),
                        "store_lock_until": format_utc(until),
                    },
                )
            ],
        )
    return Applied(d, "extended", f"Object Lock until {format_utc(until)}")


# ---------------------------------------------------------------------------- show


def status(station: Station, item_id: str) -> dict[str, Any]:
    """An item's retention as the catalog, the custody log and the store see it."""
    with station.session() as s:
        item = resolve_id(s, item_id)
        state = load_state(s, item, station)
        hold = open_hold(s, item.sha256)
        logged = logged_state(s, item.sha256)
        row = s.get(ItemRetention, item.sha256)
    lock, store_hold = (None, False) if state.deleted else station.store.protection(item.sha256)
    return {
        "sha256": item.sha256,
        "class": state.class_name,
        "classified": state.classified,
        "case": state.case_id,
        "retain_until": retention.describe_until(state.retain_until),
        "state": retention.DELETED if state.deleted else retention.ACTIVE,
        "deleted_at": format_utc(row.deleted_at) if row and row.deleted_at else None,
        "legal_hold": (
            {
                "reason": hold.reason,
                "placed_at": format_utc(hold.placed_at),
                "placed_by": hold.placed_by,
            }
            if hold
            else None
        ),
        "store_lock_until": format_utc(lock) if lock else None,
        "store_legal_hold": store_hold,
        "matches_log": retention.differs_from_log(state, logged) is None,
    }
