"""The crash-safe per-file ingest pipeline of the docking-station daemon.

Each file found on a docked camera is an ``IngestJob`` row that moves through
discovered → staged → signed → stored → verified → committed → released, and every step is
persisted (and what it wrote is fsynced) before the state says it is done. After a crash or
power loss, ``JobRunner.advance`` resumes a job from its last persisted state:

- discovered: (re)copy the source into ``spool/jobs/<id>.part``, hashing in the same pass;
- staged: the spool copy is durable and hashed: probe, describe, sign the manifest;
- signed: write object, manifest and signature to the store (idempotent, content-addressed);
- stored: read the stored object back from the medium and compare;
- verified: one transaction commits the item row, its custody event and the job's new state
  (so an item is committed exactly once; the same bytes again become `seen-again`);
- committed: optionally wipe the source (policy, after the read-back matched), drop the
  spool copy: released.

Store failures keep the job where it is and retry with exponential backoff; nothing is
dropped. The source is never modified unless ``wipe_after_verify`` is set.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from bwc.config import limits
from bwc.errors import BwcError, CatalogError, InputError, StoreError
from bwc.evidence import custody
from bwc.evidence.db import unavailable
from bwc.evidence.fingerprint import hash_fd
from bwc.evidence.manifest import FLAG_DEVICE_MISMATCH, encode_path, parse_manifest
from bwc.evidence.models import DockSession, IngestJob, Item
from bwc.evidence.station import Station
from bwc.fsutil import PRIVATE_DIR, fsync_dir, make_dir
from bwc.ingest import identity, source, steps
from bwc.ingest.describe import Description, LedgerLookup
from bwc.ingest.discover import Candidate, display
from bwc.ingest.probe import MediaProbe
from bwc.ingest.profiles import IdFile, Profile
from bwc.ingest.source import UnsafeSource
from bwc.ingest.stage import SourceChanged, Staged, stage

logger = logging.getLogger(__name__)

ACTIVE_STATES = ("discovered", "staged", "signed", "stored", "verified", "committed")
# acknowledged: a failure a person accepted, with the reason (bwc.ingest.failures)
END_STATES = ("released", "ignored", "failed", "abandoned", "acknowledged")
_BACKOFF_START = 1.0


class RetryLater(Exception):
    """The step could not be done now (store down, source busy, spool full); try again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Abandon(Exception):
    """The source is gone before it was copied; the camera brings it back on the next dock."""


@dataclass
class RunnerConfig:
    wipe_after_verify: bool = False
    retry_max_seconds: float = 300.0
    spool_min_free_bytes: int = 1 << 30


class JobRunner:
    def __init__(
        self,
        station: Station,
        probe: MediaProbe,
        profiles: list[Profile],
        ledger: LedgerLookup,
        config: RunnerConfig,
        *,
        stop: threading.Event | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.st = station
        self.probe = probe
        self.profiles = profiles
        self.ledger = ledger
        self.config = config
        self.stop = stop or threading.Event()
        self.on_event = on_event or (lambda _k, _d: None)
        self.spool = station.settings.spool_dir / "jobs"
        make_dir(self.spool, PRIVATE_DIR, parents=True)
        self._id_files: dict[bytes, IdFile | None] = {}
        self._lock = threading.Lock()
        self.spool_full = False

    # ------------------------------------------------------------------ persistence

    def spool_path(self, job_id: int) -> Path:
        return self.spool / f"{job_id}.part"

    def _load(self, job_id: int) -> tuple[IngestJob, DockSession]:
        with Session(self.st.engine, expire_on_commit=False) as s:
            job = s.get(IngestJob, job_id)
            if job is None:
                raise BwcError(f"ingest job {job_id} does not exist")
            sess = s.get(DockSession, job.session_id)
            if sess is None:
                raise CatalogError(
                    f"ingest job {job_id} belongs to dock session {job.session_id}, which is "
                    "not in the catalog",
                    hint="the catalog was changed outside bwc; restore it from a backup",
                )
            return job, sess

    def _save(self, job: IngestJob, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(job, k, v)
        job.updated_at = self.st.clock.now()
        with self.st.session() as s:
            s.merge(job)

    # ------------------------------------------------------------------ driver

    def advance(self, job_id: int) -> str:
        """Run a job's steps until it ends, must wait (retry later), or the daemon stops.
        Returns the state it is left in."""
        job, sess = self._load(job_id)
        steps: dict[str, Callable[[IngestJob, DockSession], None]] = {
            "discovered": self._stage,
            "staged": self._sign,
            "signed": self._store,
            "stored": self._verify,
            "verified": self._commit,
            "committed": self._release,
        }
        while job.state in steps and not self.stop.is_set():
            now = self.st.clock.now()
            if job.next_try is not None and job.next_try > now:
                return job.state
            before = job.state
            try:
                steps[job.state](job, sess)
            except RetryLater as e:
                delay = min(
                    self.config.retry_max_seconds, _BACKOFF_START * 2 ** min(job.attempts, 20)
                )
                logger.warning("retry in %.0fs: %s: %s", delay, display(job.rel), e.reason)
                self._save(
                    job,
                    attempts=job.attempts + 1,
                    reason=e.reason,
                    next_try=now + timedelta(seconds=delay),
                )
                self.on_event("retry", {"job": job.id, "reason": e.reason})
                return job.state
            except Abandon as e:
                self._drop_spool_copy(job_id)
                self._save(job, state="abandoned", reason=str(e), next_try=None)
                logger.info("abandoned: %s: %s", display(job.rel), e)
                return job.state
            except BwcError as e:
                if unavailable(e):
                    # The catalog is away for a moment: the job stays in its last saved
                    # state (a commit is one transaction) and the daemon tries it again.
                    raise
                self._fail(job, str(e))
                return job.state
            except OSError as e:
                self._fail(job, f"I/O error: {e.strerror or e}")
                return job.state
            if job.state == before:  # a step must move the job on; guard against loops
                raise AssertionError(f"job {job.id} did not leave state {before}")
        return job.state

    def give_up(self, job_id: int, reason: str) -> None:
        job, _sess = self._load(job_id)
        if job.state not in END_STATES:
            self._fail(job, reason)

    def _fail(self, job: IngestJob, reason: str) -> None:
        logger.error("failed: %s: %s", display(job.rel), reason)
        self._save(job, state="failed", reason=reason, next_try=None)
        self.on_event("failed", {"job": job.id, "path": display(job.rel), "reason": reason})

    # ------------------------------------------------------------------ steps

    def _stage(self, job: IngestJob, sess: DockSession) -> None:
        free = shutil.disk_usage(self.spool).free
        if free < self.config.spool_min_free_bytes:
            if not self.spool_full:
                logger.error(
                    "spool nearly full (%d MB free): not taking new files until space is freed",
                    free >> 20,
                )
            self.spool_full = True
            raise RetryLater(f"spool nearly full ({free >> 20} MB free)")
        self.spool_full = False
        cand = Candidate(path=job.path, rel=job.rel, root=sess.mount)
        try:
            staged: Staged = stage(
                cand,
                self.spool,
                dest=self.spool_path(_id(job)),
                durable=True,
            )
        except SourceChanged as e:
            raise RetryLater(str(e)) from e
        except StoreError as e:  # the spool could not be written (full disk?): try again later
            raise RetryLater(str(e)) from e
        except UnsafeSource:
            raise  # a symlink, FIFO or device where a file was: listed as failed, with why
        except InputError as e:
            if not os.path.isdir(sess.mount) or not source.lexists(sess.mount, job.rel):
                raise Abandon(
                    "the camera was removed (or the file deleted) before the file was copied; "
                    "it is taken again when the camera is docked again"
                ) from e
            raise RetryLater(str(e)) from e
        self._save(
            job,
            state="staged",
            sha256=staged.digest.sha256,
            size=staged.digest.size,
            mtime_ns=limits.stored_ns(staged.mtime_ns),
            reason=None,
            next_try=None,
            attempts=0,
        )

    def _id_file(self, mount: bytes) -> IdFile | None:
        with self._lock:
            if mount not in self._id_files:
                self._id_files[mount] = steps.read_id_file(mount)
            return self._id_files[mount]

    def _sign(self, job: IngestJob, sess: DockSession) -> None:
        sha, size = _staged(job)
        with Session(self.st.engine) as s:
            known = s.get(Item, sha) is not None
            serial = sess.usb_serial
            seen_as = identity.first_seen_as(s, serial) if serial is not None else None
            twin = s.exec(
                select(IngestJob.id)
                .where(IngestJob.station_id == self.st.station_id)
                .where(IngestJob.sha256 == sha)
                .where(col(IngestJob.id) < job.id)
                .where(col(IngestJob.state).in_(("staged", "signed", "stored", "verified")))
                .limit(1)
            ).first()
        if twin is not None and not known:
            # The same bytes are on their way in through an earlier job: let it finish, then
            # this one is a sighting. (Two manifests for one object must never race.)
            raise RetryLater(f"identical file is being ingested (job {twin})")
        if known:
            # The same bytes are already evidence: no second item, a sighting.
            self._save(job, state="verified", outcome="seen-again")
            return
        spool = self.spool_path(_id(job))
        id_file = self._id_file(sess.mount)

        def mismatch(desc: Description) -> list[str]:
            if serial is None or seen_as is None:
                return []
            claims = {"id-file": id_file.device_id if id_file else None}
            if desc.device_source is not None:
                claims[desc.device_source] = desc.device_id
            wrong = identity.mismatch(serial, seen_as, claims)
            if not wrong:
                return []
            logger.warning("%s: %s: flagged %s", display(job.path), wrong, FLAG_DEVICE_MISMATCH)
            return [FLAG_DEVICE_MISMATCH]

        signed = steps.sign(
            self.st,
            sha256=sha,
            size=size,
            rel=job.rel,
            media=self.probe.probe(spool) if size else None,
            profiles=self.profiles,
            id_file=id_file,
            ledger=self.ledger,
            flags_for=mismatch,
            # a name without a device id (a zero-byte file, a GPS log): its camera's
            session_device=sess.device_id,
        )
        self._save(job, state="signed", manifest=signed.manifest, signature=signed.signature)

    def _store(self, job: IngestJob, sess: DockSession) -> None:
        sha, _size = _staged(job)
        try:
            version = steps.put_object(self.st.store, sha, self.spool_path(_id(job)))
        except StoreError as e:
            raise RetryLater(f"store: {e}") from e
        except OSError as e:
            if e.errno == errno.ENOENT and not self.spool_path(_id(job)).exists():
                # The spool copy is gone and the store does not have the object either:
                # copy from the source again.
                self._save(job, state="discovered", reason="spool copy lost; copying again")
                return
            raise RetryLater(f"store: {e.strerror or e}") from e
        self._save(job, state="stored", store_version=version)

    def _verify(self, job: IngestJob, sess: DockSession) -> None:
        """Read the stored object back; then store its manifest and signature beside it."""
        sha, size = _staged(job)
        manifest, signature = _signed(job)
        try:
            steps.read_back(self.st.store, sha, size)
        except steps.ReadBackMismatch as e:
            logger.error("%s: storing it again from the camera", e)
            self.on_event("read-back-mismatch", {"job": job.id, "sha256": sha})
            # Nothing written is trusted: the file is copied from the camera again.
            self.spool_path(_id(job)).unlink(missing_ok=True)
            self._save(
                job,
                state="discovered",
                attempts=job.attempts + 1,
                reason="stored copy did not match on read-back",
            )
            return
        except (StoreError, OSError) as e:
            raise RetryLater(f"read-back: {e}") from e
        try:
            # False (another ingest's manifest is there): the commit decides whose is the
            # item, and the release puts the item's in place (_heal_store_meta).
            steps.put_meta(self.st.store, sha, manifest, signature)
        except StoreError as e:
            raise RetryLater(f"store: {e}") from e
        self._save(job, state="verified", outcome="ingested")

    def _commit(self, job: IngestJob, sess: DockSession) -> None:
        sha, _size = _staged(job)
        rel_text = encode_path(job.rel)[0]
        with self.st.session() as s:
            # The log's lock first: an item committed meanwhile by another ingest of the same
            # bytes (another station, `bwc ingest`) is then seen below, never met at insert.
            custody.lock_head(s)
            row = s.get(IngestJob, job.id)
            if row is None:
                raise CatalogError(f"ingest job {job.id} vanished from the catalog")
            if row.state != "verified":  # another worker got here first
                job.state = row.state
                return
            exists = s.get(Item, sha) is not None
            extra = {"dock_session": sess.id, "device_id_seen": sess.device_id}
            if exists or job.manifest is None:
                outcome = "seen-again"
                ev = self.st.event("seen-again", sha, path=rel_text, **extra)
            else:
                outcome = "ingested"
                manifest, signature = _signed(job)
                m = parse_manifest(manifest)
                s.add(steps.item_row(m, manifest, signature, job.store_version))
                ev = steps.ingested_event(self.st, m, manifest, dock_session=sess.id)
            custody.append_events(s, [ev])
            row.state = "committed"
            row.outcome = outcome
            row.updated_at = self.st.clock.now()
            s.add(row)
        job.state, job.outcome = "committed", outcome
        logger.info("%s: %s %s", outcome, sha[:16], display(job.rel))
        self.on_event(outcome, {"job": job.id, "sha256": sha, "path": display(job.rel)})

    def _release(self, job: IngestJob, sess: DockSession) -> None:
        self._heal_store_meta(job)
        if self.config.wipe_after_verify and job.outcome in ("ingested", "seen-again"):
            self._wipe_source(job, sess)
        self._drop_spool_copy(_id(job))
        self._save(job, state="released")

    def _drop_spool_copy(self, job_id: int) -> None:
        """Remove a job's spool copy for good before the job is saved as ended: the unlink
        (or the rename into the store) made durable, or a power cut brings the copy back,
        and nothing would ever remove it again."""
        self.spool_path(job_id).unlink(missing_ok=True)
        fsync_dir(self.spool)

    def _heal_store_meta(self, job: IngestJob) -> None:
        """The store's manifest and signature must be the committed item's, whichever
        ingest committed it (see ``steps.heal_meta``): the one stored may be another's that
        lost the race to commit, or be missing or damaged."""
        if job.outcome not in ("ingested", "seen-again") or job.sha256 is None:
            return
        try:
            steps.heal_meta(self.st, job.sha256)
        except StoreError as e:
            raise RetryLater(f"store: {e}") from e

    def _wipe_source(self, job: IngestJob, sess: DockSession) -> None:
        """Delete the camera's copy: only the file we copied (same size and mtime), only after
        the stored object was read back and matched, and logged."""
        sha, _size = _staged(job)
        # the file is looked at and unlinked in the folder reached through real folders
        # only: a folder swapped for a symlink never leads the wipe outside the camera
        try:
            dir_fd, name = source.open_parent(sess.mount, job.rel)
        except (OSError, InputError) as e:
            logger.warning("not wiping %s: its folder cannot be opened: %s", display(job.rel), e)
            return
        try:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                return
            if not stat.S_ISREG(st.st_mode) or (st.st_size, limits.stored_ns(st.st_mtime_ns)) != (
                job.size,
                job.mtime_ns,
            ):
                logger.warning("not wiping %s: it changed after it was copied", display(job.rel))
                return
            # Size and mtime do not prove it is the file that was copied (another renamed
            # over it, its mtime kept, has both): only its bytes do. Wiping is opt-in and
            # rare; a second read of the file is the price of never deleting footage that
            # is not stored. The name must still be that very file when it is unlinked.
            try:
                fd = os.open(
                    name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd
                )
            except OSError as e:
                logger.warning("not wiping %s: cannot read it again: %s", display(job.rel), e)
                return
            try:
                opened = os.fstat(fd)
                again = hash_fd(fd) if stat.S_ISREG(opened.st_mode) else None
            finally:
                os.close(fd)
            if again is None or again.sha256 != sha:
                logger.warning(
                    "not wiping %s: it is not the file that was stored", display(job.rel)
                )
                return
            try:
                now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                return
            if (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
                logger.warning("not wiping %s: it changed after it was copied", display(job.rel))
                return
            back = self.st.store.read_back(sha)
            if back.sha256 != sha:
                raise StoreError(f"not wiping {display(job.rel)}: stored copy does not match")
            try:
                os.unlink(name, dir_fd=dir_fd)
            except OSError as e:
                logger.warning("cannot wipe %s: %s", display(job.rel), e.strerror)
                return
        finally:
            os.close(dir_fd)
        with self.st.session() as s:
            custody.append_events(
                s, [self.st.event("source-wiped", sha, path=encode_path(job.rel)[0])]
            )


def _id(job: IngestJob) -> int:
    if job.id is None:
        raise CatalogError("an ingest job without an id")
    return job.id


def _broken(job: IngestJob, what: str) -> CatalogError:
    return CatalogError(
        f"ingest job {job.id} is in state {job.state} but has no {what}",
        hint="the catalog was changed outside bwc; the file is taken again when the camera "
        "is docked again",
    )


def _staged(job: IngestJob) -> tuple[str, int]:
    """The staged copy's digest and size, which every state from `staged` on must have."""
    if job.sha256 is None or job.size is None:
        raise _broken(job, "digest")
    return job.sha256, job.size


def _signed(job: IngestJob) -> tuple[bytes, bytes]:
    if job.manifest is None or job.signature is None:
        raise _broken(job, "signed manifest")
    return job.manifest, job.signature


def resumable_jobs(session: Session, station_id: str) -> list[int]:
    """Jobs of this station that are not finished, oldest first (resumed after a restart)."""
    rows = session.exec(
        select(IngestJob.id)
        .where(IngestJob.station_id == station_id)
        .where(col(IngestJob.state).in_(ACTIVE_STATES))
        .order_by(col(IngestJob.id))
    )
    return [r for r in rows if r is not None]


def due(job_next_try: datetime | None, now: datetime) -> bool:
    return job_next_try is None or job_next_try <= now
