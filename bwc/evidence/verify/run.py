"""Verification on a station: what `bwc verify`, `bwc show`, `bwc log verify` and `bwc log
proof` do, between opening the catalog and printing. Checks are the core's; this module picks
the way (by id, or everything streamed), remembers the checkpoint it verified, and records
the run in the custody log when asked to (and only when the log itself verifies: appending to
a damaged log would bury the damage under new events and a fresh checkpoint)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from sqlalchemy import ColumnElement, and_, insert, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session

from bwc.config.settings import Settings
from bwc.errors import NoteError, NotFoundError, UsageError, VerificationError
from bwc.evidence import custody, note, orphans, stamps, timestamp, trust
from bwc.evidence.canonical import canonical_json
from bwc.evidence.events import decode_leaf
from bwc.evidence.items import resolve_id
from bwc.evidence.models import Event, Item, verification_run, verification_run_item
from bwc.evidence.station import Station
from bwc.evidence.stores import ReadAhead
from bwc.evidence.timefmt import format_utc
from bwc.evidence.verify import catalog
from bwc.evidence.verify.core import ItemReport, LogReport, event_problems, inclusion_problem
from bwc.fsutil import PRIVATE_DIR, PRIVATE_FILE, make_dir, write_atomic


@dataclass
class Outcome:
    """A run's result, kept small whatever the number of items: counts and the failures
    (every item's result goes to ``on_done`` as it is made, and to the run's report)."""

    total: int = 0
    failed: list[ItemReport] = field(default_factory=list)
    log_problems: list[str] = field(default_factory=list)
    run_id: str | None = None
    # store objects the catalog does not know (verify --all): never deleted, reported
    orphans: list[str] = field(default_factory=list)
    recorded: bool = False
    not_recorded: str | None = None  # why a run asked to be recorded was not

    @property
    def log_ok(self) -> bool:
        return not self.log_problems


class _Run:
    """A verification run being recorded: every item's result written, as it comes, to a
    JSON Lines report in the spool (hashed on the way), later stored with a signed
    statement about it, and logged as one `verification-run` custody event."""

    def __init__(self, station: Station, scope: str, record: bool) -> None:
        self.station = station
        self.scope = scope
        self.id = secrets.token_hex(16)
        self.started = station.clock.now()
        self.out = Outcome(run_id=self.id)
        self.ids: list[str] = []
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self.path = station.settings.spool_dir / "runs" / f"{self.id}.jsonl"
        if record:
            station.signer()  # a wrong passphrase fails before anything is read
            make_dir(self.path.parent, PRIVATE_DIR, parents=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
            os.fchmod(fd, PRIVATE_FILE)  # whatever the umask
            self._file = open(fd, "wb")  # noqa: SIM115 - closed in finish

    def done(self, rep: ItemReport) -> None:
        self.out.total += 1
        if not rep.ok:
            self.out.failed.append(rep)
        if self.scope == "ids":
            self.ids.append(rep.sha256)
        if self._file is not None:
            failed = _failed_lines(rep)
            line = (
                json.dumps(
                    {"sha256": rep.sha256, "ok": rep.ok, "failed": failed},
                    ensure_ascii=False,
                    separators=(",", ":"),
                ).encode("utf-8")
                + b"\n"
            )
            self._file.write(line)
            self._hash.update(line)
            self._size += len(line)

    def finish(self, log_problems: Sequence[str], log_size: int) -> Outcome:
        out = self.out
        out.log_problems = list(log_problems)
        if self._file is None:
            return out
        self._file.close()
        try:
            if not out.total:
                return out
            if not out.log_ok:
                # Appending to a damaged log would bury the damage under new events.
                out.not_recorded = "the custody log fails verification"
                return out
            self._store_and_log(log_size)
            out.recorded = True
            return out
        finally:
            self.path.unlink(missing_ok=True)

    def _store_and_log(self, log_size: int) -> None:
        st = self.station
        signer = st.signer()
        report_sha = self._hash.hexdigest()
        statement = canonical_json(
            {
                "v": 1,
                "what": "bwc verification run",
                "run": self.id,
                "station": st.station_id,
                "actor": st.actor,
                "scope": self.scope,
                "started": format_utc(self.started),
                "finished": format_utc(st.clock.now()),
                "log_size": log_size,
                "items": self.out.total,
                "failed": len(self.out.failed),
                "report_sha256": report_sha,
                "report_size": self._size,
                "key_id": signer.key_id,
            }
        )
        statement_sha = hashlib.sha256(statement).hexdigest()
        spool = self.path.parent
        for ext, data in (("json", statement), ("sig", signer.sign(statement))):
            part = spool / f"{self.id}.{ext}"
            write_atomic(part, data)  # private (0600)
            try:
                st.store.put_record(
                    f"verification/{self.id}.{ext}", part, hashlib.sha256(data).hexdigest()
                )
            finally:
                part.unlink(missing_ok=True)
        st.store.put_record(f"verification/{self.id}.jsonl", self.path, report_sha)
        events = [
            st.event(
                "verification-run",
                None,
                run=self.id,
                scope=self.scope,
                items=self.out.total,
                failed=len(self.out.failed),
                log_size=log_size,
                statement_sha256=statement_sha,
                report_sha256=report_sha,
            ),
            *(
                st.event(
                    "verified",
                    r.sha256,
                    ok=False,
                    run=self.id,
                    failed=_failed_lines(r),
                )
                for r in self.out.failed
            ),
        ]
        with st.session() as s:
            run_event = custody.append_events(s, events)[0]
            s.execute(
                insert(verification_run).values(
                    event_idx=run_event.idx,
                    run_id=self.id,
                    at=events[0].at,
                    actor=st.actor,
                    station_id=st.station_id,
                    scope=self.scope,
                    log_size=log_size,
                    items=self.out.total,
                    failed=len(self.out.failed),
                    statement_sha256=statement_sha,
                )
            )
            named = [{"event_idx": run_event.idx, "sha256": h} for h in sorted(set(self.ids))]
            if named:
                s.execute(insert(verification_run_item), named)
        st.checkpoint()


def _failed_lines(rep: ItemReport) -> list[str]:
    """An item's failed checks as its run's report and its `verified` event list them."""
    return [f"{c.name}: {c.detail}" for c in rep.failures()]


def _chain(*fns: Callable[[ItemReport], None] | None) -> Callable[[ItemReport], None]:
    def call(rep: ItemReport) -> None:
        for fn in fns:
            if fn is not None:
                fn(rep)

    return call


def verify_ids(
    station: Station,
    ids: Sequence[str],
    *,
    record: bool,
    on_done: Callable[[ItemReport], None] | None = None,
) -> Outcome:
    """Items by id, each proven against the latest checkpoint: cost by item."""
    run = _Run(station, "ids", record)
    with station.session(snapshot=True) as s:
        items = [resolve_id(s, i) for i in ids]
        t = catalog.trust_latest(
            s, station.store, trust.load(station.settings.home), station.station_id
        )
        catalog.verify_items(
            s,
            station.store,
            items,
            t,
            workers=station.settings.verify_workers,
            on_done=_chain(run.done, on_done),
        )
        size = custody.log_size(s)
    if t.log.ok and t.latest_note is not None:
        trust.remember(station.settings.home, t.latest_note)
    return run.finish(t.log.problems, size)


def verify_everything(
    station: Station,
    *,
    record: bool,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[ItemReport], None] | None = None,
    ahead: ReadAhead | None = None,
    on_orphan: Callable[[orphans.Orphan], None] | None = None,
) -> Outcome:
    """The whole log streamed, then every item, then the store's objects the catalog does
    not know (a sorted merge): memory flat whatever the catalog's size."""
    run = _Run(station, "all", record)
    found: list[str] = []
    with station.session(snapshot=True) as s:
        log = catalog.verify_all(
            s,
            station.store,
            workers=station.settings.verify_workers,
            station_id=station.station_id,
            on_start=on_start,
            on_done=_chain(run.done, on_done),
            ahead=ahead,
        )
        latest = custody.latest_checkpoint(s)
        for o in orphans.find(station, s, station.settings.orphan_grace_seconds):
            found.append(o.sha256)
            if on_orphan is not None:
                on_orphan(o)
    if log.ok and latest is not None:
        trust.remember(station.settings.home, latest.note)
    out = run.finish(log.problems, log.size)
    out.orphans = found
    return out


def require_proven(station: Station, sha256: str | None = None) -> None:
    """Before a command acts on what the log says (a hold, a class, an attribution, an
    explanation): the latest checkpoint must verify and extend the previous, the store's
    copy and this station's last verified one; and the item's custody events (``sha256``)
    must each be proven in it. O(log n), whatever the log's age. VerificationError
    otherwise, before anything is changed."""
    with station.session(snapshot=True) as s:
        t = catalog.trust_latest(
            s, station.store, trust.load(station.settings.home), station.station_id
        )
        problems: list[str] = []  # the item's own first, then the log's
        if sha256 is not None and t.log.checkpoint is not None:
            cp = t.log.checkpoint
            for ev in catalog.item_events(s, sha256, t):
                problems.extend(event_problems(ev))
                if ev.index < cp.size:
                    why = inclusion_problem(ev, cp, t.log)
                    if why:
                        problems.append(why)
        problems.extend(t.log.problems)
    if problems:
        what = f"the custody events of {sha256[:16]}" if sha256 else "the custody log"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerificationError(
            f"{what} do not verify, so nothing was changed: {problems[0]}{more}",
            hint="run `bwc log verify` (and `bwc verify ID`) to see all",
        )
    if t.latest_note is not None:
        trust.remember(station.settings.home, t.latest_note)


@dataclass(frozen=True)
class RunSeen:
    """A verification run that covered an item (`bwc show`)."""

    run_id: str
    at: datetime
    actor: str
    station_id: str
    scope: str
    ok: bool  # the item passed (a failure is also a `verified` event in its chain)


def verification_history(session: Session, sha256: str, events: Sequence[Event]) -> list[RunSeen]:
    """The runs that checked an item: every run by id that named it, every run of all
    items that started after it was ingested; failed where its chain has a failure of that
    run."""
    ingested = next((e.idx for e in events if e.kind == "ingested"), None)
    failed_runs = set()
    for e in events:
        if e.kind == "verified":
            with contextlib.suppress(ValueError):
                details = decode_leaf(e.leaf).details
                if details.get("ok") is False and isinstance(details.get("run"), str):
                    failed_runs.add(details["run"])
    runs, named = verification_run.c, verification_run_item.c
    by_id = sa_select(named.event_idx).where(named.sha256 == sha256)
    cond: ColumnElement[bool] = runs.event_idx.in_(by_id)
    if ingested is not None:
        cond = or_(cond, and_(runs.scope == "all", runs.log_size > ingested))
    rows = session.execute(sa_select(verification_run).where(cond).order_by(runs.event_idx))
    return [
        RunSeen(r.run_id, r.at, r.actor, r.station_id, r.scope, r.run_id not in failed_runs)
        for r in rows
    ]


def verify_log(
    station: Station, *, since_last: bool = False, record: bool = False
) -> tuple[LogReport, int]:
    """The whole log, streamed (`bwc log verify`); ``since_last``: only what was appended
    after the last recorded full check (`--since last`); ``record``: a check that passes is
    logged (`log-verified`, with the size and root it verified), for the next `--since
    last` to start from. Returns the report and the size it started from."""
    if record:
        station.signer()
    with station.session(snapshot=True) as s:
        since = catalog.last_full_check(s) if since_last else None
        rep = catalog.verify_log(s, station.store, station_id=station.station_id, since=since)
        stamped = stamps.verify_stored(
            s,
            station.store,
            configured_roots(station.settings),
            from_size=since.size if since else 0,
        )
        rep.problems.extend(stamped.problems)
        rep.timestamps = stamped.checked
        latest = custody.latest_checkpoint(s)
    if rep.ok and latest is not None:
        trust.remember(station.settings.home, latest.note)
    if record and rep.ok:
        with station.session() as s:
            (ev,) = custody.append_events(
                s,
                [
                    station.event(
                        "log-verified",
                        None,
                        size=rep.size,
                        root=base64.b64encode(rep.root).decode("ascii"),
                        checkpoints=rep.checkpoints,
                        since=since.size if since else 0,
                    )
                ],
            )
            head = custody.lock_head(s)
            head.verified_idx = ev.idx
            s.add(head)
        station.checkpoint()
    return rep, since.size if since else 0


def configured_roots(settings: Settings | None) -> bytes | None:
    """``[timestamp] ca_file``'s roots when one is set (with or without a TSA URL: a station
    that stopped timestamping still checks its old tokens)."""
    if settings is None or not settings.timestamp.ca_file:
        return None
    return timestamp.load_roots(settings.tsa_ca_file)


def verify_store_copy(url: str, settings: Settings | None, pinned: Sequence[str] = ()) -> LogReport:
    """The log's published copy in the store at ``url``, with no catalog (`bwc log verify
    --from-store`). ``pinned``: note verifier keys (`name+hash+key`, as `bwc keys list`
    prints them) that must have signed the store's checkpoint."""
    from bwc.evidence.stores import open_store
    from bwc.evidence.verify.published import verify_published

    try:
        verifiers = [note.parse_verifier_key(k) for k in pinned]
    except NoteError as e:
        raise UsageError(f"--key: {e}", hint="give a key as `bwc keys list` prints it") from e
    return verify_published(
        open_store(url, settings), pinned=verifiers, tsa_roots=configured_roots(settings)
    )


@dataclass
class Shown:
    item: Item
    events: list[Event]
    report: ItemReport
    verifications: list[RunSeen]


def show(station: Station, item_id: str) -> Shown:
    """An item, its chain of custody, the runs that verified it, and every check now."""
    with station.session(snapshot=True) as s:
        item = resolve_id(s, item_id)
        events = list(custody.iter_events(s, item.sha256))
        history = verification_history(s, item.sha256, events)
        t = catalog.trust_latest(
            s, station.store, trust.load(station.settings.home), station.station_id
        )
        (rep,) = catalog.verify_items(s, station.store, [item], t, workers=1)
    return Shown(item, events, rep, history)


@dataclass
class EventProof:
    index: int
    kind: str
    leaf: bytes
    proof: list[bytes] | None  # None: not yet covered by the checkpoint


@dataclass
class ItemProofs:
    sha256: str
    checkpoint: str
    tree_size: int
    events: list[EventProof] = field(default_factory=list)


def item_proofs(station: Station, item_id: str) -> ItemProofs:
    """Inclusion proofs of an item's events in the latest signed checkpoint (`bwc log
    proof`), cut from the catalog's tiles: O(log n) each."""
    with station.session(snapshot=True) as s:
        item = resolve_id(s, item_id)
        cp = custody.latest_checkpoint(s)
        if cp is None:
            raise NotFoundError("the log has no checkpoint", hint="run `bwc log checkpoint`")
        tree = custody.tree(s, cp.size)
        out = ItemProofs(item.sha256, cp.note, cp.size)
        for ev in custody.iter_events(s, item.sha256):
            proof = tree.inclusion_proof(ev.idx) if ev.idx < cp.size else None
            out.events.append(EventProof(ev.idx, ev.kind, ev.leaf, proof))
    return out
