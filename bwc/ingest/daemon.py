"""`bwc daemon`: the docking-station loop.

Threads: a watchdog observer on each dock root (not recursive) whose handler only sets a
wake-up flag; one scanner that runs at start-up, on every wake-up and every ``rescan_seconds``
(so a camera is noticed within seconds whether or not the file system sends events; a mount
whose walk is slow waits longer, docks.SCAN_DUTY), creates dock sessions and jobs, and
re-queues jobs whose retry time has come; ``workers`` threads that advance jobs
(bwc.ingest.jobs). A heartbeat file (``<home>/daemon.json``) tells `bwc status` what the daemon
sees. SIGTERM/SIGINT: stop taking work, let each worker finish its current step, sign a last
checkpoint, exit 0.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    wait_random_exponential,
)

from bwc.errors import BwcError, StoreError
from bwc.evidence.db import unavailable
from bwc.evidence.models import IngestJob, LogHead
from bwc.evidence.station import Station
from bwc.evidence.timefmt import format_utc
from bwc.fsutil import write_atomic
from bwc.ingest.docks import DockScanner
from bwc.ingest.jobs import ACTIVE_STATES, JobRunner, RunnerConfig, resumable_jobs
from bwc.ingest.probe import MediaProbe
from bwc.ingest.profiles import station_profiles
from bwc.ingest.stage import clean_stale_spool
from bwc.ingest.steps import ledger_lookup

logger = logging.getLogger(__name__)

STATUS_FILE = "daemon.json"
_MAX_UNEXPECTED = 3  # unexpected errors on one file before it is listed as failed


@dataclass
class DaemonState:
    """What the daemon shows (heartbeat file, live view)."""

    started_at: str
    docks: list[str]
    pid: int = field(default_factory=os.getpid)
    heartbeat: str = ""
    sessions: list[dict[str, Any]] = field(default_factory=list)
    # docked mounts that are not being taken (the station's own home, a scan that fails)
    not_served: list[dict[str, str]] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)
    spool_free_mb: int = 0
    spool_full: bool = False
    store_ok: bool = True
    # the catalog could not be used (locked past the wait, PostgreSQL away): since when, why
    catalog_ok: bool = True
    catalog_down_since: str | None = None
    catalog_error: str | None = None
    last_error: str | None = None
    committed: int = 0
    seen_again: int = 0
    failed: int = 0
    stopped: bool = False


class CatalogOutage:
    """The catalog's health as the daemon's threads see it. A thread that finds the catalog
    unavailable opens an outage (logged once, shown by `bwc status`); it is over when every
    thread that failed has since succeeded (a scan that only reads can succeed while writes
    still wait for a lock)."""

    def __init__(self, state: DaemonState, clock_now: Callable[[], datetime]) -> None:
        self.state = state
        self.now = clock_now
        self._lock = threading.Lock()
        self._failing: set[str] = set()

    def failed(self, reason: str) -> None:
        with self._lock:
            self._failing.add(threading.current_thread().name)
            s = self.state
            if s.catalog_ok:
                s.catalog_down_since = format_utc(self.now())
                logger.error("catalog unavailable: %s; files wait in the spool, retrying", reason)
            s.catalog_ok = False
            s.catalog_error = reason
            s.last_error = f"catalog unavailable: {reason}"

    def ok(self) -> None:
        with self._lock:
            self._failing.discard(threading.current_thread().name)
            s = self.state
            if not s.catalog_ok and not self._failing:
                logger.info("catalog available again (unavailable since %s)", s.catalog_down_since)
                s.catalog_ok, s.catalog_down_since, s.catalog_error = True, None, None


class Daemon:
    def __init__(
        self,
        station: Station,
        probe: MediaProbe,
        docks: list[str],
        *,
        on_update: Callable[[DaemonState], None] | None = None,
    ) -> None:
        # A wrong passphrase or a key the catalog does not know stops us before anything
        # is taken (or a spool folder made).
        station.signer()
        self.st = station
        cfg = station.settings.daemon
        self.cfg = cfg
        self.docks = docks
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.queue: queue.Queue[int] = queue.Queue()
        self.queued: set[int] = set()
        self._qlock = threading.Lock()
        self.on_update = on_update or (lambda _s: None)
        profiles = station_profiles(station.settings)
        self.runner = JobRunner(
            station,
            probe,
            profiles,
            ledger_lookup(station.engine),
            RunnerConfig(
                wipe_after_verify=cfg.wipe_after_verify,
                retry_max_seconds=cfg.retry_max_seconds,
                spool_min_free_bytes=cfg.spool_min_free_mb << 20,
            ),
            stop=self.stop,
            on_event=self._on_event,
        )
        self.scanner = DockScanner(
            station,
            docks,
            ignore=station.settings.ignore,
            stable_seconds=cfg.stable_seconds,
            profiles=profiles,
        )
        self.state = DaemonState(started_at=format_utc(station.clock.now()), docks=list(docks))
        self.outage = CatalogOutage(self.state, station.clock.now)
        self._last_checkpoint_size = -1
        self._unexpected: dict[int, int] = {}
        self._last_checkpoint_at = 0.0
        self._last_timestamps_at = time.monotonic()  # the checkpoint asks first

    # ------------------------------------------------------------------ events

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "ingested":
            self.state.committed += 1
        elif kind == "seen-again":
            self.state.seen_again += 1
        elif kind == "failed":
            self.state.failed += 1
            self.state.last_error = f"{data.get('path')}: {data.get('reason')}"
        elif kind == "retry":
            self.state.last_error = str(data.get("reason"))
            if "store" in str(data.get("reason")):
                self.state.store_ok = False

    def _enqueue(self, job_id: int) -> None:
        with self._qlock:
            if job_id in self.queued:
                return
            self.queued.add(job_id)
        self.queue.put(job_id)

    # ------------------------------------------------------------------ threads

    def _worker(self) -> None:
        while not self.stop.is_set():
            try:
                job_id = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._advance(job_id)
            except BwcError as e:
                logger.error("job %d: %s", job_id, e)
                self.state.last_error = str(e)
            except Exception as e:  # one bad file never stops the others
                logger.exception("job %d: unexpected error", job_id)
                self.state.last_error = f"job {job_id}: unexpected error (see the log)"
                self._unexpected[job_id] = self._unexpected.get(job_id, 0) + 1
                if self._unexpected[job_id] >= _MAX_UNEXPECTED:
                    # Retrying forever would hide it: list it as failed, with the reason.
                    why = f"unexpected error: {e.__class__.__name__}: {e}"
                    try:
                        self.runner.give_up(job_id, why)
                    except Exception:  # the catalog went away too: this worker lives on
                        logger.exception("job %d: cannot list it as failed", job_id)
            finally:
                with self._qlock:
                    self.queued.discard(job_id)

    def _advance(self, job_id: int) -> None:
        """Advance a job; while the catalog is unavailable, wait with backoff (capped by
        ``retry_max_seconds``) and try again: the job stays in its last saved state, its
        spool copy where it is, and a commit is one transaction, so nothing is lost and
        nothing is committed twice. Gives up only when the daemon stops (the job resumes on
        the next start)."""

        def waiting(rs: RetryCallState) -> None:
            e = rs.outcome.exception() if rs.outcome else None
            self.outage.failed(unavailable(e) or str(e) if e else "unknown")

        def sleep(seconds: float) -> None:
            self.stop.wait(seconds)  # a SIGTERM ends the wait

        retrying = Retrying(
            retry=retry_if_exception(lambda e: unavailable(e) is not None),
            wait=wait_random_exponential(multiplier=0.5, max=max(0.1, self.cfg.retry_max_seconds)),
            stop=lambda _rs: self.stop.is_set(),
            sleep=sleep,
            before_sleep=waiting,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.runner.advance(job_id)
        except Exception as e:
            why = unavailable(e)
            if why is None:
                raise
            self.outage.failed(why)  # stopping: the job resumes on the next start
            return
        self.outage.ok()

    def _requeue_due(self) -> None:
        now = self.st.clock.now()
        with self.st.session(snapshot=True) as s:
            rows = s.exec(
                select(IngestJob.id, IngestJob.next_try)
                .where(IngestJob.station_id == self.st.station_id)
                .where(col(IngestJob.state).in_(ACTIVE_STATES))
            ).all()
        for job_id, next_try in rows:
            if job_id is not None and (next_try is None or next_try <= now):
                self._enqueue(job_id)

    def _checkpoint_if_due(self, force: bool = False) -> None:
        with self.st.session(snapshot=True) as s:
            head = s.get(LogHead, 1)
            size = head.size if head else 0
        due = time.monotonic() - self._last_checkpoint_at >= self.cfg.checkpoint_seconds
        idle = self.queue.empty() and not self.queued
        if size != self._last_checkpoint_size and (force or due or idle):
            try:
                self.st.checkpoint()
                self._last_checkpoint_size = size
                self._last_checkpoint_at = time.monotonic()
            except (BwcError, OSError) as e:
                if unavailable(e):
                    raise
                logger.error("cannot sign a checkpoint: %s", e)
                self.state.last_error = f"checkpoint: {e}"

    def _timestamps_if_due(self) -> None:
        """Every ``[timestamp] retry_seconds``: fetch the timestamps of checkpoints signed
        while the TSA did not answer. One request at most when it is still down."""
        cfg = self.st.settings.timestamp
        if not cfg.enabled or time.monotonic() - self._last_timestamps_at < cfg.retry_seconds:
            return
        self._last_timestamps_at = time.monotonic()
        retry_timestamps(self.st)

    def _heartbeat(self) -> None:
        s = self.state
        s.heartbeat = format_utc(self.st.clock.now())
        s.sessions = [
            {"session": o.id, "mount": os.fsdecode(o.mount), "device_id": o.device_id}
            for o in self.scanner.sessions.values()
        ]
        s.not_served = self.scanner.not_served()
        try:
            with self.st.session(snapshot=True) as db:
                rows = db.exec(
                    select(IngestJob.state, func.count())
                    .where(IngestJob.station_id == self.st.station_id)
                    .group_by(IngestJob.state)
                ).all()
            s.backlog = {state: int(n) for state, n in rows}
        except BwcError as e:
            why = unavailable(e)
            if why is None:
                raise
            self.outage.failed(why)  # the heartbeat still says so; the backlog as last seen
        spool = self.st.settings.spool_dir
        try:
            import shutil

            s.spool_free_mb = shutil.disk_usage(spool).free >> 20
        except OSError:
            s.spool_free_mb = 0
        s.spool_full = self.runner.spool_full
        write_atomic(
            self.st.settings.home / STATUS_FILE,
            json.dumps(s.__dict__, indent=2).encode("utf-8"),
        )
        self.on_update(s)

    def _check_store(self) -> None:
        try:
            self.st.store.check()
            if not self.state.store_ok:
                logger.info("store reachable again")
            self.state.store_ok = True
        except StoreError as e:
            if self.state.store_ok:
                logger.error("store unreachable: %s", e)
            self.state.store_ok = False
            self.state.last_error = str(e)

    def _start_watch(self) -> Any:
        try:
            from watchdog.events import FileSystemEvent, FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:  # pragma: no cover - watchdog is a dependency
            return None
        wake = self.wake

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                wake.set()  # only a signal: the scanner does the work

        observer = Observer()
        for d in self.docks:
            if os.path.isdir(d):
                try:
                    # the dock root only: a camera appearing wakes the scanner, which walks
                    # it (descriptors, bounded depth); a recursive watch walks every folder of
                    # every camera by recursion (a RecursionError 1,000 levels down) and
                    # spends an inotify watch on each. Rescans catch changes further down.
                    observer.schedule(Handler(), d, recursive=False)
                except OSError as e:
                    logger.warning("cannot watch %s (%s); rescans still find cameras", d, e)
        observer.daemon = True
        observer.start()
        return observer

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> None:
        st = self.st
        clean_stale_spool(st.settings.spool_dir)
        st.signer()  # a wrong passphrase stops us before anything is taken
        with Session(st.engine) as s:
            resumed = resumable_jobs(s, st.station_id)
        for job_id in resumed:
            self._enqueue(job_id)
        if resumed:
            logger.info("resuming %d unfinished files", len(resumed))
        logger.info("watching %s", ", ".join(self.docks) or "(no docks)")
        workers = [
            threading.Thread(target=self._worker, name=f"bwc-worker-{i}", daemon=True)
            for i in range(self.cfg.workers)
        ]
        for w in workers:
            w.start()
        observer = self._start_watch()
        last_store_check = 0.0
        down = 0  # scans in a row that found the catalog unavailable
        try:
            while not self.stop.is_set():
                self.wake.clear()
                pause = self.cfg.rescan_seconds
                try:
                    for job_id in self.scanner.scan(time.time(), time.monotonic()):
                        self._enqueue(job_id)
                    self._requeue_due()
                    if time.monotonic() - last_store_check > 10:
                        self._check_store()
                        last_store_check = time.monotonic()
                    self._checkpoint_if_due()
                    self._timestamps_if_due()
                    self.outage.ok()
                    down = 0
                except Exception as e:
                    why = unavailable(e)
                    if why is not None:
                        # The catalog is away (locked, restarting): keep running, files wait
                        # in the spool; try again with backoff.
                        self.outage.failed(why)
                        down += 1
                        pause = max(pause, self._backoff(down))
                    elif isinstance(e, BwcError | OSError):
                        # The disk failed for a moment: say so, keep docking.
                        logger.error("scan failed: %s", e)
                        self.state.last_error = f"scan: {e}"
                    else:
                        raise
                self._heartbeat_safely()
                self.wake.wait(pause)
                if self.wake.is_set():
                    # let a burst of events settle, then scan once
                    self.stop.wait(0.2)
        finally:
            self.stop.set()
            if observer is not None:
                observer.stop()
            for w in workers:
                w.join()
            try:
                self._checkpoint_if_due(force=True)
            except BwcError as e:
                if unavailable(e) is None:
                    raise
                # the next start signs it; everything appended is in the catalog already
                logger.error("no last checkpoint, the catalog is unavailable: %s", e)
            self.state.stopped = True
            self._heartbeat_safely()
            logger.info("stopped")

    def _backoff(self, failures: int) -> float:
        """Seconds before the next scan after ``failures`` in a row found no catalog."""
        return float(min(self.cfg.retry_max_seconds, 0.5 * 2 ** min(failures, 16)))

    def _heartbeat_safely(self) -> None:
        try:
            self._heartbeat()
        except (BwcError, OSError) as e:
            logger.error("cannot write the heartbeat: %s", e)
            self.state.last_error = f"heartbeat: {e}"


def read_status(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((home / STATUS_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def retry_timestamps(station: Station) -> int | None:
    """Fetch pending checkpoint timestamps (the daemon's periodic retry); never raises for
    a TSA or store that is down, or a bad ca_file: logged. Returns how many are still
    pending (None: not known, the attempt failed before asking)."""
    try:
        res = station.fetch_timestamps()
    except (BwcError, OSError) as e:
        if unavailable(e):
            raise
        logger.error("cannot fetch checkpoint timestamps: %s", e)
        return None
    if res.fetched:
        logger.info("timestamped %d checkpoints", len(res.fetched))
    if res.error:
        logger.warning("%d checkpoints still await a timestamp: %s", res.pending, res.error)
    return res.pending


def heartbeat_age(status: dict[str, Any], now: datetime) -> float | None:
    from bwc.evidence.timefmt import parse_utc

    try:
        return (now - parse_utc(str(status["heartbeat"]))).total_seconds()
    except (KeyError, ValueError):
        return None
