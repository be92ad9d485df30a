"""Docks: finding docked cameras, their dock sessions, and the files that are ready to take.

A dock root is a folder under which cameras appear as mounted sub-folders (one per camera,
named by its USB serial); a dock that is itself a camera mount works too. A file is ready once
its size and mtime have not changed for ``stable_seconds`` — at once if its mtime is already
older than that (a camera docked after its shift has nothing still being written).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from bwc.config import limits
from bwc.errors import BwcError, InputError
from bwc.evidence import custody
from bwc.evidence.db import unavailable
from bwc.evidence.manifest import encode_path
from bwc.evidence.models import DockSession, IngestJob
from bwc.evidence.station import Station
from bwc.ingest import identity, receipts
from bwc.ingest.discover import (
    Candidate,
    Discovery,
    check_not_protected,
    discover,
    display,
    station_paths,
)
from bwc.ingest.profiles import Profile, match_path
from bwc.ingest.receipt import Receipt, log_line
from bwc.ingest.steps import read_id_file

logger = logging.getLogger(__name__)

_CAMERA_MARKERS = (b"DCIM", b"ID.TXT", b"id.txt")


def is_camera_mount(path: bytes) -> bool:
    """A dock path that is itself a camera: a mount point, or a folder holding files or a
    camera's usual markers at its top level."""
    if os.path.ismount(path):
        return True
    try:
        with os.scandir(path) as it:
            for e in it:
                if e.name in _CAMERA_MARKERS:
                    return True
                # a stray hidden file (.DS_Store) in a dock root does not make it a camera
                if not e.name.startswith(b".") and e.is_file(follow_symlinks=False):
                    return True
    except OSError:
        return False
    return False


def list_mounts(dock: bytes) -> list[bytes]:
    """The camera mounts under a dock root (or the dock itself when it is a camera)."""
    if not os.path.isdir(dock):
        return []
    if is_camera_mount(dock):
        return [os.path.realpath(dock)]
    out = []
    try:
        with os.scandir(dock) as it:
            for e in it:
                if e.name.startswith(b".") or not e.is_dir(follow_symlinks=False):
                    continue
                out.append(os.path.realpath(e.path))
    except OSError as e:
        logger.warning("cannot list dock %s: %s", display(dock), e.strerror)
    return sorted(out)


def usb_serial(mount: bytes) -> str | None:
    """The USB serial of the device behind a mount point (sysfs), if it has one. A second,
    trustworthy device identity beside the id in file names or the id file."""
    try:
        st = os.stat(mount)
        with open("/proc/self/mountinfo", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    devno = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}".encode()
    if not any(line.split()[2] == devno for line in lines if len(line.split()) > 4):
        return None
    node = Path("/sys/dev/block") / devno.decode()
    try:
        path = node.resolve()
    except OSError:
        return None
    for parent in [path, *path.parents]:
        serial = parent / "serial"
        if (parent / "idVendor").exists() and serial.is_file():
            try:
                return serial.read_text().strip() or None
            except OSError:
                return None
    return None


@dataclass
class StabilityTracker:
    """Decides when a file is complete. Pure: times are passed in."""

    stable_seconds: float
    _seen: dict[tuple[int, bytes], tuple[int, int, float]] = field(default_factory=dict)

    def ready(
        self, key: tuple[int, bytes], size: int, mtime_ns: int, wall_now: float, mono_now: float
    ) -> bool:
        if wall_now - mtime_ns / 1e9 >= self.stable_seconds:
            self._seen.pop(key, None)
            return True  # untouched for longer than the window already
        prev = self._seen.get(key)
        if prev is None or prev[:2] != (size, mtime_ns):
            self._seen[key] = (size, mtime_ns, mono_now)
            return False
        return mono_now - prev[2] >= self.stable_seconds

    def forget_session(self, session_id: int) -> None:
        for k in [k for k in self._seen if k[0] == session_id]:
            del self._seen[k]


@dataclass
class OpenSession:
    id: int
    mount: bytes
    known: dict[bytes, tuple[int | None, int | None]]  # rel -> (size, mtime) of its job
    device_id: str | None = None
    usb_serial: str | None = None
    # monotonic time before which a rescan of this mount is skipped (see SCAN_DUTY)
    next_scan: float = 0.0
    # the highest job id of the session, and the highest its last logged receipt covered:
    # a receipt is due once they differ and no file is still being taken
    last_job: int = 0
    receipt_upto: int = 0
    # when its last receipt was drawn up: a job of the session changed after it (a retried
    # file taken again, a failure acknowledged) makes another due, if it says something new
    receipt_at: datetime | None = None


# A mount's rescan waits this many times as long as its last scan took: a camera of
# thousands of files is walked at most a tenth of the time, leaving the interpreter to the
# workers copying it (a walk is pure Python that holds the GIL); a small camera's scan takes
# milliseconds, so it is rescanned on every pass. A new mount is walked at once.
SCAN_DUTY = 10.0


class DockScanner:
    """Turns what is on the docks into dock sessions and ingest jobs. Runs on one thread."""

    def __init__(
        self,
        station: Station,
        docks: Sequence[str],
        *,
        ignore: Sequence[str],
        stable_seconds: float,
        profiles: Sequence[Profile],
        serial_of: Callable[[bytes], str | None] = usb_serial,
    ) -> None:
        self.st = station
        self.serial_of = serial_of
        self.docks = [os.fsencode(os.path.abspath(d)) for d in docks]
        self.ignore = tuple(ignore)
        self.tracker = StabilityTracker(stable_seconds)
        self.profiles = list(profiles)
        self.sessions: dict[bytes, OpenSession] = {}
        # sessions closed while files were still being taken: their `receipt` is still due
        self.closing: set[int] = set()
        self.receipt_errors: dict[int, str] = {}  # session -> why its receipt failed
        self.protected = station_paths(station.settings)
        # mounts holding (or inside) the home: never taken; mount -> why
        self.refused: dict[bytes, str] = {}
        self.failing: dict[bytes, str] = {}  # mount -> why its last scan failed
        self._resume()

    def _resume(self) -> None:
        """Pick up the dock sessions a previous run left open."""
        with self.st.session() as s:
            rows = list(
                s.exec(
                    select(DockSession)
                    .where(DockSession.station_id == self.st.station_id)
                    .where(col(DockSession.closed_at).is_(None))
                )
            )
            for row in rows:
                assert row.id is not None
                known = {
                    j.rel: (j.size, j.mtime_ns)
                    for j in s.exec(select(IngestJob).where(IngestJob.session_id == row.id))
                }
                self.sessions[row.mount] = OpenSession(
                    row.id,
                    row.mount,
                    known,
                    row.device_id,
                    row.usb_serial,
                    last_job=receipts.last_job(s, row.id),
                    receipt_upto=row.receipt_upto or 0,
                    receipt_at=receipts.drawn_up_at(s, row),
                )
            # sessions closed while files were still being taken: their receipt is still due
            open_ids = {o.id for o in self.sessions.values()}
            for sid in receipts.sessions_in_progress(s, self.st.station_id):
                if sid not in open_ids:
                    self.closing.add(sid)

    # ------------------------------------------------------------------ sessions

    def _open(self, mount: bytes, now: datetime, found: Discovery | None) -> OpenSession:
        """A new dock session for ``mount``, its device known from the start where the id
        file or the file names (``found``, the mount's first walk) say it, so the `docked`
        event, the log line and `bwc status` name the camera."""
        id_file = read_id_file(mount)
        serial = _valid(self.serial_of(mount), mount, "USB serial")
        device = _valid(id_file.device_id if id_file else None, mount, "id file's device id")
        source = "id-file"
        if device is None and found is not None:
            device, source = device_from_names(self.profiles, found.files), "profile"
        wrong: str | None = None
        with self.st.session() as s:
            row = DockSession(
                station_id=self.st.station_id,
                mount=mount,
                device_id=device,
                usb_serial=serial,
                first_seen=now,
                last_seen=now,
            )
            s.add(row)
            s.flush()
            assert row.id is not None
            if serial is not None and device is not None:
                known = identity.remember(
                    s, serial, device, station_id=self.st.station_id, dock_session=row.id, now=now
                )
                wrong = identity.mismatch(serial, known, {source: device})
            extra: dict[str, Any] = {"device_mismatch": wrong} if wrong else {}
            if id_file is not None:
                # camera metadata, recorded with the session it came with (its ids are
                # device_id above, checked); the file itself is also ingested, as every file
                extra["id_file"] = {
                    "path": id_file.name,
                    "sha256": id_file.sha256,
                    "size": id_file.size,
                }
            custody.append_events(
                s,
                [
                    self.st.event(
                        "docked",
                        None,
                        dock_session=row.id,
                        mount=encode_path(mount)[0],
                        device_id=device,
                        usb_serial=serial,
                        **extra,
                    )
                ],
            )
        logger.info("docked: %s (session %d, device %s)", display(mount), row.id, device or "?")
        if wrong:
            logger.warning("%s: %s; its files are flagged device-mismatch", display(mount), wrong)
        sess = OpenSession(row.id, mount, {}, device, serial)
        self.sessions[mount] = sess
        return sess

    def _close(self, sess: OpenSession, now: datetime) -> None:
        """The camera left: the session is closed and its receipt logged with the
        `undocked` event (files still being taken from the spool are named as not safe; a
        `receipt` follows once they are in, see ``receipts_due``)."""
        receipt: Receipt | None = None
        with self.st.session() as s:
            row = s.get(DockSession, sess.id)
            if row is None:  # the catalog lost the row: still say the camera left
                custody.append_events(s, [self.st.event("undocked", None, dock_session=sess.id)])
            else:
                row.closed_at = now
                row.last_seen = now
                receipt = receipts.draw_up(s, row, "undocked")
                receipts.log(s, self.st, row, receipt, "undocked")
        self.tracker.forget_session(sess.id)
        del self.sessions[sess.mount]
        logger.info("undocked: %s (session %d)", display(sess.mount), sess.id)
        if receipt is not None:
            logger.info("%s", log_line(receipt, self.st.settings.tz))
            if not receipt.tally.settled:
                self.closing.add(sess.id)

    def receipts_due(self) -> None:
        """Log a `receipt` for each session whose files are all in (none still being taken)
        since its last receipt: once per such moment, not at every scan (its jobs are read
        only when it has jobs its last receipt did not cover). Sessions closed while files
        were still being taken from the spool are followed too."""
        served = [s for s in self.sessions.values() if s.mount not in self.refused]
        due: list[tuple[int, OpenSession | None]] = [
            (sess.id, sess) for sess in served if sess.last_job > sess.receipt_upto
        ]
        # sessions whose receipt is out of date: a job changed since it was drawn up
        covered = {
            sess.id: sess.receipt_at
            for sess in served
            if sess.last_job <= sess.receipt_upto and sess.receipt_at is not None
        }
        if covered:
            with self.st.session(snapshot=True) as s:
                changed = receipts.changed_since(s, covered)
            due += [(sess.id, sess) for sess in served if sess.id in changed]
        due += [(sid, None) for sid in sorted(self.closing)]
        for sid, sess in due:
            try:
                receipt, looked_at = self._receipt_if_settled(sid, anew=sid in covered)
            except (BwcError, OSError) as e:
                if unavailable(e) is not None:
                    raise  # the daemon waits for the catalog; the receipt is still due
                # a receipt that cannot be drawn up never stops the docking; it is tried
                # again at the next scan (and said once, not at every scan)
                if self.receipt_errors.get(sid) != str(e):
                    logger.error("dock session %d: no receipt: %s", sid, e)
                self.receipt_errors[sid] = str(e)
                continue
            self.receipt_errors.pop(sid, None)
            if sess is not None and looked_at is not None:
                sess.receipt_at = looked_at
            if receipt is None:
                continue
            if sess is not None:
                sess.receipt_upto = receipt.tally.last_job
            self.closing.discard(sid)
            logger.info("%s", log_line(receipt, self.st.settings.tz))

    def _receipt_if_settled(
        self, sid: int, *, anew: bool = False
    ) -> tuple[Receipt | None, datetime | None]:
        """The session's receipt, logged, when none of its files is still being taken; and
        when its jobs were looked at, settled (None: still being taken). ``anew``: a job
        changed since the last receipt; another is logged only if it says something new (a
        file moving on from committed to released does not)."""
        looked_at = self.st.clock.now()  # before reading: a change after it is seen next time
        with self.st.session() as s:
            if receipts.in_progress(s, sid):
                return None, None
            row = s.get(DockSession, sid)
            if row is None:
                self.closing.discard(sid)
                return None, None
            receipt = receipts.draw_up(s, row, "committed")
            if anew and receipts.same_as_logged(s, row, receipt):
                return None, looked_at
            receipts.log(s, self.st, row, receipt, "receipt")
        return receipt, looked_at

    # ------------------------------------------------------------------ scanning

    def scan(self, wall_now: float, mono_now: float) -> list[int]:
        """One pass over every dock: open and close sessions, create jobs for files that are
        ready. Returns the ids of new jobs."""
        now = self.st.clock.now()
        present: set[bytes] = set()
        for dock in self.docks:
            present.update(list_mounts(dock))
        for mount in [m for m in self.sessions if m not in present]:
            self._close(self.sessions[mount], now)
        # a mount that comes back is looked at (and logged) again
        self.refused = {m: why for m, why in self.refused.items() if m in present}
        self.failing = {m: why for m, why in self.failing.items() if m in present}
        new_jobs: list[int] = []
        for mount in sorted(present):
            if mount in self.refused:
                continue
            try:
                check_not_protected(mount, self.protected)
            except InputError as e:
                self._refuse(mount, e)
                continue
            try:
                sess = self.sessions.get(mount)
                found: Discovery | None = None
                if sess is None:
                    started = time.monotonic()
                    found = self._walk(mount)  # once: its names tell the device too
                    sess = self._open(mount, now, found)
                    if found is None:
                        continue  # refused (the station's own files inside), logged
                elif mono_now < sess.next_scan:
                    continue
                else:
                    started = time.monotonic()
                new_jobs.extend(self._scan_session(sess, wall_now, mono_now, now, found))
                sess.next_scan = started + (time.monotonic() - started) * SCAN_DUTY
            except (BwcError, OSError) as e:
                if unavailable(e) is not None:
                    raise  # the catalog is away for every mount: the daemon waits
                # one camera's problem never stops the others (it is tried again next scan)
                self._failing(mount, str(e))
                continue
            self.failing.pop(mount, None)
        self.receipts_due()
        return new_jobs

    def not_served(self) -> list[dict[str, str]]:
        """The mounts docked but not being taken, and why (for `bwc status`)."""
        return [
            {"mount": os.fsdecode(m), "why": why}
            for m, why in sorted((self.refused | self.failing).items())
        ]

    def _failing(self, mount: bytes, why: str) -> None:
        if self.failing.get(mount) != why:  # once, not at every rescan
            logger.error(
                "dock mount %s: %s; the other mounts are still served", display(mount), why
            )
        self.failing[mount] = why

    def _refuse(self, mount: bytes, e: InputError) -> None:
        """The station's own files are never evidence (they would be locked in the store for
        years): the mount is left alone, loudly, and the other mounts are served."""
        self.refused[mount] = str(e)
        logger.error("refusing dock mount %s: %s", display(mount), e)

    def _walk(self, mount: bytes) -> Discovery | None:
        """What is on ``mount``; None when it is refused (logged)."""
        try:
            return discover([os.fsdecode(mount)], self.ignore, self.protected)
        except InputError as e:  # the home (or the store, the spool) found inside the mount
            self._refuse(mount, e)
            return None

    def _scan_session(
        self,
        sess: OpenSession,
        wall_now: float,
        mono_now: float,
        now: datetime,
        found: Discovery | None = None,
    ) -> list[int]:
        if found is None:
            found = self._walk(sess.mount)
            if found is None:
                return []
        rows: list[IngestJob] = []
        # known only once its job is committed: a catalog outage must not make a file look
        # taken (it would never be taken until the daemon restarts)
        taken: dict[bytes, tuple[int | None, int | None]] = {}
        for n in found.not_taken:
            if n.rel in sess.known:
                continue
            taken[n.rel] = (None, None)
            rows.append(
                IngestJob(
                    session_id=sess.id,
                    station_id=self.st.station_id,
                    path=n.path,
                    rel=n.rel,
                    state="ignored" if n.ignored else "failed",
                    reason=n.reason,
                    updated_at=now,
                )
            )
        for cand in found.files:
            # the size and mtime discovery saw through the folder's descriptor (a second
            # look by path could be led elsewhere by a folder swapped for a symlink)
            st_size, st_mtime_ns = cand.size or 0, limits.stored_ns(cand.mtime_ns or 0)
            if sess.known.get(cand.rel) == (st_size, st_mtime_ns):
                continue
            if not self.tracker.ready(
                (sess.id, cand.rel), st_size, st_mtime_ns, wall_now, mono_now
            ):
                continue
            if sess.device_id is None:
                info = match_path(self.profiles, os.fsdecode(cand.rel), None)
                # an id the catalog cannot hold names no session; the file itself is
                # listed as failed, with the reason, when it is signed
                if info and info.device_id and limits.text_problem(info.device_id) is None:
                    sess.device_id = info.device_id
            taken[cand.rel] = (st_size, st_mtime_ns)
            rows.append(
                IngestJob(
                    session_id=sess.id,
                    station_id=self.st.station_id,
                    path=cand.path,
                    rel=cand.rel,
                    size=st_size,
                    mtime_ns=st_mtime_ns,
                    state="discovered",
                    updated_at=now,
                )
            )
        if not rows:
            return []
        with self.st.session() as s:
            s.add_all(rows)
            row = s.get(DockSession, sess.id)
            if row is not None:
                row.last_seen = now
                if row.device_id is None and sess.device_id:
                    row.device_id = sess.device_id
                    if sess.usb_serial is not None:  # no id file: the first file name says
                        identity.remember(
                            s,
                            sess.usb_serial,
                            sess.device_id,
                            station_id=self.st.station_id,
                            dock_session=sess.id,
                            now=now,
                        )
                s.add(row)
            s.flush()
        sess.known.update(taken)
        sess.last_job = max([sess.last_job, *(r.id for r in rows if r.id is not None)])
        for r in rows:
            if r.state == "failed":  # refused at discovery: said in the log like any failure
                logger.error("failed: %s: %s", display(r.rel), r.reason)
        return [r.id for r in rows if r.state == "discovered" and r.id is not None]


def device_from_names(profiles: Sequence[Profile], files: Sequence[Candidate]) -> str | None:
    """The device id the recorder profiles read from most of the names on a camera (the
    first name's among equals), or None when no name carries one. Ids the catalog cannot
    hold are passed over: each file that carries one is listed as failed when signed."""
    counts: Counter[str] = Counter()
    for f in files:
        info = match_path(profiles, os.fsdecode(f.rel), None)
        if info and info.device_id and limits.text_problem(info.device_id) is None:
            counts[info.device_id] += 1
    return counts.most_common(1)[0][0] if counts else None


def _valid(value: str | None, mount: bytes, what: str) -> str | None:
    """``value`` if the catalog can hold it, else None, logged: one camera's bad id file
    (a 200-character device id) must not stop the scan of every other camera. Its files are
    still taken; each that would carry the bad id is listed as failed, with the reason."""
    problem = None if value is None else limits.text_problem(value)
    if problem is None:
        return value
    logger.error("dock mount %s: the %s %s; not used", display(mount), what, problem)
    return None
