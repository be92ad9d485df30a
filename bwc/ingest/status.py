"""A docking station's state for `bwc status`: whether the daemon is alive (its heartbeat
file), its dock sessions, the backlog per ingest state, recent failures, the spool, the store
and the station clock. Reads only; the command line prints it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import col, func, select

from bwc.errors import CatalogError, StoreError
from bwc.evidence import overdue, stamps
from bwc.evidence.db import unavailable
from bwc.evidence.models import DockSession, IngestJob
from bwc.evidence.overdue import Stretch
from bwc.evidence.station import Station
from bwc.evidence.timefmt import format_utc
from bwc.fsutil import tree_bytes
from bwc.ingest.daemon import heartbeat_age, read_status
from bwc.ingest.failures import ACK_STATE, failed_jobs

# acknowledged failures listed by --json (the most recent; all are counted)
_ACKNOWLEDGED_SHOWN = 20


def clock_synchronized() -> bool | None:
    """Whether NTP keeps the station clock synchronized (None: cannot tell here)."""
    if shutil.which("timedatectl") is None:
        return None
    try:
        r = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=3,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    return r.stdout.strip() == "yes"


@dataclass
class StationStatus:
    station_id: str
    daemon_running: bool
    heartbeat_age_seconds: float | None
    docks: list[str]
    sessions: list[dict[str, Any]] = field(default_factory=list)
    # docked mounts the running daemon is not taking, and why
    not_served: list[dict[str, str]] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)
    # every failed file, oldest first: listed until retried or acknowledged (bwc.ingest.failures)
    failed: list[dict[str, Any]] = field(default_factory=list)
    acknowledged_count: int = 0
    acknowledged: list[dict[str, Any]] = field(default_factory=list)
    # checked-out cameras not docked for longer than [daemon] dock_overdue_hours
    overdue: list[dict[str, Any]] = field(default_factory=list)
    spool_used_mb: int = 0
    spool_free_mb: int = 0
    spool_full: bool = False
    last_error: str | None = None
    store: dict[str, Any] = field(default_factory=dict)
    # ok; since and detail when the daemon (or this command) found it unavailable
    catalog: dict[str, Any] = field(default_factory=dict)
    clock_synchronized: bool | None = None
    # checkpoints waiting for their RFC 3161 timestamp (None: no TSA configured)
    timestamps_pending: int | None = None

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def station_status(
    station: Station, clock_check: Callable[[], bool | None] = clock_synchronized
) -> StationStatus:
    settings = station.settings
    hb = read_status(settings.home)
    age = heartbeat_age(hb, station.clock.now()) if hb else None
    running = (
        hb is not None
        and not hb.get("stopped")
        and age is not None
        and age < max(30.0, 5 * settings.daemon.rescan_seconds)
    )
    catalog: dict[str, Any] = {"ok": True, "since": None, "detail": None}
    if hb and running and hb.get("catalog_ok") is False:
        catalog = {
            "ok": False,
            "since": hb.get("catalog_down_since"),
            "detail": hb.get("catalog_error"),
        }
    backlog: dict[str, int] = dict(hb.get("backlog") or {}) if hb else {}
    open_sessions: list[DockSession] = []
    failures: list[IngestJob] = []
    acked: tuple[int, list[IngestJob]] = (0, [])
    late: list[Stretch] = []
    pending: int | None = None
    waiting: tuple[int, str | None] = (0, None)
    try:
        backlog, open_sessions, failures, waiting, acked = _from_catalog(station)
        late = _overdue(station)
        if settings.timestamp.enabled:
            with station.session(snapshot=True) as s:
                pending = stamps.pending_count(s)
    except CatalogError as e:
        why = unavailable(e)
        if why is None:
            raise
        # Said, not fatal: the daemon's heartbeat still tells what it sees.
        catalog = {"ok": False, "since": catalog["since"], "detail": catalog["detail"] or why}
    try:
        station.store.check()
        store_ok, store_msg = True, "reachable"
    except StoreError as e:
        store_ok, store_msg = False, str(e)
    if store_ok and waiting[0]:
        # A store can answer the check (a listing) and still take no writes: a full Ceph
        # cluster blocks every write and answers every read.
        n, why = waiting
        store_ok = False
        store_msg = (
            f"answers, but {n} file{'s' if n != 1 else ''} wait{'s' if n == 1 else ''} "
            f"to be stored: {why}"
        )
    spool = settings.spool_dir
    spool_used = tree_bytes(spool)
    spool_free = shutil.disk_usage(spool if spool.exists() else settings.home).free
    return StationStatus(
        station_id=station.station_id,
        daemon_running=running,
        heartbeat_age_seconds=age,
        docks=list(hb["docks"]) if hb else list(settings.daemon.docks),
        sessions=[
            {
                "session": x.id,
                "mount": os.fsdecode(x.mount),
                "device_id": x.device_id,
                "usb_serial": x.usb_serial,
                "first_seen": format_utc(x.first_seen),
            }
            for x in open_sessions
        ],
        not_served=list(hb.get("not_served") or []) if hb and running else [],
        backlog=backlog,
        failed=[_job(j) for j in failures],
        acknowledged_count=acked[0],
        acknowledged=[_job(j) for j in acked[1]],
        overdue=[
            {
                "device_id": x.device_id,
                "officer_id": x.officer_id,
                "since": format_utc(x.since),
                "since_checkout": x.since_checkout,
                "hours": round(x.hours, 1),
            }
            for x in late
        ],
        spool_used_mb=spool_used >> 20,
        spool_free_mb=spool_free >> 20,
        spool_full=bool(hb and hb.get("spool_full")),
        last_error=hb.get("last_error") if hb else None,
        store={"url": station.store.url, "ok": store_ok, "detail": store_msg},
        catalog=catalog,
        clock_synchronized=clock_check(),
        timestamps_pending=pending,
    )


def _overdue(station: Station) -> list[Stretch]:
    """The cameras checked out now and not docked for longer than the limit (the station's
    clock; docks at every station of the catalog count)."""
    now = station.clock.now()
    limit = timedelta(hours=station.settings.daemon.dock_overdue_hours)
    with station.session(snapshot=True) as s:
        checkouts, docks = overdue.read(s, start=now, end=now, limit=limit)
    return overdue.overdue_now(checkouts, docks, now=now, limit=limit)


def _job(j: IngestJob) -> dict[str, Any]:
    """A failed (or acknowledged) file as status shows it: ``at`` is when it failed (or was
    acknowledged); ``job`` is the id `bwc retry`/`bwc ack` accept."""
    return {
        "path": os.fsdecode(j.rel),
        "job": j.id,
        "session": j.session_id,
        "reason": j.reason,
        "at": format_utc(j.updated_at),
    }


def _from_catalog(
    station: Station,
) -> tuple[
    dict[str, int],
    list[DockSession],
    list[IngestJob],
    tuple[int, str | None],
    tuple[int, list[IngestJob]],
]:
    """Backlog per state, open dock sessions, every failure, the jobs waiting to retry a
    store step (how many, the latest reason), and the acknowledged failures (how many, the
    latest): one read-only snapshot (it never waits for the write lock a long command or
    the daemon holds)."""
    with station.session(snapshot=True) as s:
        backlog = {
            state: int(n)
            for state, n in s.exec(
                select(IngestJob.state, func.count())
                .where(IngestJob.station_id == station.station_id)
                .group_by(col(IngestJob.state))
            ).all()
        }
        open_sessions = list(
            s.exec(
                select(DockSession)
                .where(DockSession.station_id == station.station_id)
                .where(col(DockSession.closed_at).is_(None))
            )
        )
        # all of them: a failure stays listed until a person retries or acknowledges it
        failures = failed_jobs(s, station.station_id)
        acked = list(
            s.exec(
                select(IngestJob)
                .where(IngestJob.station_id == station.station_id)
                .where(IngestJob.state == ACK_STATE)
                .order_by(col(IngestJob.updated_at).desc(), col(IngestJob.id).desc())
                .limit(_ACKNOWLEDGED_SHOWN)
            )
        )
        # the store steps (jobs.py): signed -> stored (upload), stored -> verified (read-back)
        store_wait = (
            select(IngestJob)
            .where(IngestJob.station_id == station.station_id)
            .where(col(IngestJob.state).in_(("signed", "stored")))
            .where(col(IngestJob.next_try).is_not(None))
            # the reason a retry saved (jobs.py: "store: ..." or "read-back: ...")
            .where(
                col(IngestJob.reason).startswith("store:")
                | col(IngestJob.reason).startswith("read-back:")
            )
        )
        latest = s.exec(store_wait.order_by(col(IngestJob.updated_at).desc()).limit(1)).first()
        n_waiting = int(s.exec(select(func.count()).select_from(store_wait.subquery())).one())
    n_acked = backlog.get(ACK_STATE, 0)
    return (
        backlog,
        open_sessions,
        failures,
        (n_waiting, latest.reason if latest else None),
        (n_acked, acked),
    )
