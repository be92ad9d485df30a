"""`bwc ingest`: copy + hash in one pass, sign, store, read back, commit.

Per file: staged (copied to the spool while hashing; source re-checked for change) → signed →
stored → verified (read back from the medium) → committed (item row + custody event in one
transaction). Staging runs on its own thread (``stage.Stager``) a bounded distance ahead, so
the copy of file N+1 overlaps the ffprobe, signing, store and read-back of file N (a small
worker pool); catalog commits are batched on the calling thread. `bwc ingest` starts the
Stager before this module (and SQLAlchemy) is even loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bwc.errors import BwcError, StoreError
from bwc.evidence import custody
from bwc.evidence.fingerprint import Digest
from bwc.evidence.manifest import (
    FLAG_NO_RECORDED_TIME,
    FLAG_NON_UTF8_NAME,
    FLAG_NOT_MEDIA,
    FLAG_UNATTRIBUTED,
    FLAG_ZERO_BYTE,
    Manifest,
    encode_path,
)
from bwc.evidence.models import Assignment, Item
from bwc.evidence.station import Station
from bwc.ingest.describe import Description, LedgerLookup, describe
from bwc.ingest.discover import Candidate, Discovery, discover, display
from bwc.ingest.probe import MediaProbe, MediaSummary
from bwc.ingest.profiles import ID_FILE_NAMES, IdFile, parse_id_file, station_profiles
from bwc.ingest.stage import ProbeNotRun, Staged, Stager

logger = logging.getLogger(__name__)

_BATCH = 64


@dataclass
class FileResult:
    path: str
    status: str  # "ingested", "seen-again", "ignored", "error"
    sha256: str | None = None
    size: int | None = None
    flags: tuple[str, ...] = ()
    reason: str | None = None


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    checkpoint: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def errors(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "error"]


@dataclass(frozen=True)
class Prepared:
    staged: Staged
    manifest: bytes
    signature: bytes
    parsed: Manifest
    version: str | None


@dataclass(frozen=True)
class Attribution:
    """What the operator said on the command line (--officer / --device)."""

    officer_id: str | None
    device_id: str | None


def build_manifest(
    staged: Staged,
    media: dict[str, Any] | None,
    desc: Description,
    station_id: str,
    key_id: str,
    ingested_at: datetime,
    extra_flags: Sequence[str] = (),
) -> Manifest:
    path_text, encoding = encode_path(staged.candidate.rel)
    flags: list[str] = list(extra_flags)
    if encoding != "utf-8":
        flags.append(FLAG_NON_UTF8_NAME)
    if staged.digest.size == 0:
        flags.append(FLAG_ZERO_BYTE)
    elif media is None:
        flags.append(FLAG_NOT_MEDIA)
    if desc.recorded_start is None:
        flags.append(FLAG_NO_RECORDED_TIME)
    if desc.officer_id is None:
        flags.append(FLAG_UNATTRIBUTED)
    return Manifest(
        sha256=staged.digest.sha256,
        size=staged.digest.size,
        path=path_text,
        path_encoding=encoding,
        device_id=desc.device_id,
        officer_id=desc.officer_id,
        recorded_start=desc.recorded_start,
        recorded_end=desc.recorded_end,
        start_source=desc.start_source,
        media=media,
        station_id=station_id,
        ingested_at=ingested_at,
        key_id=key_id,
        flags=tuple(flags),
        device_source=desc.device_source,
        officer_source=desc.officer_source,
        profile=desc.profile,
    )


def read_id_file(root: bytes) -> IdFile | None:
    """The camera's id file (ID.TXT at the mount root), if any; never follows a symlink."""
    for name in ID_FILE_NAMES:
        path = os.path.join(root, os.fsencode(name))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            data = os.read(fd, 64 * 1024)
        finally:
            os.close(fd)
        return parse_id_file(data.decode("utf-8", "replace"))
    return None


def ledger_lookup(engine: Engine) -> LedgerLookup:
    """The officer holding a device at a time, per the checkout ledger (latest start wins)."""

    def lookup(device: str, at: datetime) -> str | None:
        with Session(engine) as s:
            row = s.exec(
                select(Assignment)
                .where(Assignment.device_id == device)
                .where(col(Assignment.start) <= at)
                .where(or_(col(Assignment.end).is_(None), col(Assignment.end) > at))
                .order_by(col(Assignment.start).desc())
                .limit(1)
            ).first()
            return row.officer_id if row else None

    return lookup


def item_row(m: Manifest, manifest: bytes, signature: bytes, version: str | None) -> Item:
    """The catalog row of a new item: an index over its signed manifest."""
    return Item(
        sha256=m.sha256,
        size=m.size,
        manifest=manifest,
        signature=signature,
        key_id=m.key_id,
        station_id=m.station_id,
        original_path=m.path,
        device_id=m.device_id,
        officer_id=m.officer_id,
        recorded_start=m.recorded_start,
        recorded_end=m.recorded_end,
        ingested_at=m.ingested_at,
        flags=",".join(m.flags),
        store_version=version,
    )


def ingested_event(st: Station, m: Manifest, manifest: bytes, **extra: object) -> custody.NewEvent:
    """The `ingested` custody event; it logs the manifest's hash, so a manifest re-signed
    later (even with the station's own key) no longer matches the log."""
    return st.event(
        "ingested",
        m.sha256,
        path=m.path,
        size=m.size,
        device_id=m.device_id,
        officer_id=m.officer_id,
        key_id=m.key_id,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        store=st.store.url,
        **extra,
    )


class Ingester:
    """Runs the per-file steps for one `bwc ingest` invocation."""

    def __init__(
        self,
        station: Station,
        probe: MediaProbe,
        attribution: Attribution,
        *,
        workers: int | None = None,
        progress: Callable[[FileResult], None] | None = None,
    ) -> None:
        self.station = station
        self.probe = probe
        self.attribution = attribution
        self.workers = max(1, station.store.in_flight if workers is None else workers)
        self.progress = progress or (lambda _r: None)
        self.profiles = station_profiles(station.settings)
        self.ledger = ledger_lookup(station.engine)
        self._id_files: dict[bytes, IdFile | None] = {}

    def _id_file(self, root: bytes) -> IdFile | None:
        if root not in self._id_files:
            self._id_files[root] = read_id_file(root)
        return self._id_files[root]

    # -- worker side: everything after the copy, for one file
    def _prepare(self, staged: Staged, probed: Future[MediaSummary | None] | None) -> Prepared:
        st = self.station
        # ffprobe ran on the source while it was being copied (it costs ~0.1 s a file, so it
        # must not run after the copy). If the source changed and was copied again, the
        # earlier probe may describe other bytes: probe the staged copy instead.
        try:
            if probed is None or staged.attempts != 1:
                raise ProbeNotRun
            media = probed.result()
        except (ProbeNotRun, CancelledError):
            media = self.probe.probe(staged.spool)
        if staged.digest.size == 0:
            media = None
        signer = st.signer()
        desc = describe(
            os.fsdecode(staged.candidate.rel),
            profiles=self.profiles,
            id_file=self._id_file(staged.candidate.root),
            media=media,
            operator_officer=self.attribution.officer_id,
            operator_device=self.attribution.device_id,
            ledger=self.ledger,
        )
        m = build_manifest(staged, media, desc, st.station_id, signer.key_id, st.clock.now())
        data = m.canonical()
        sig = signer.sign(data)
        sha = staged.digest.sha256
        version = st.store.put_object(sha, staged.spool)
        back = st.store.read_back(sha)
        if back.sha256 != sha or back.size != staged.digest.size:
            raise StoreError(
                f"read-back of {sha[:12]} does not match: stored object has sha256 "
                f"{back.sha256[:12]}, size {back.size}",
                hint="check the storage medium; the source was left untouched",
            )
        st.store.put_meta(sha, "manifest.json", data)
        st.store.put_meta(sha, "manifest.sig", sig)
        return Prepared(staged, data, sig, m, version)

    # -- calling thread
    def run(self, paths: Sequence[str | Path]) -> IngestReport:
        """Discover ``paths`` and ingest every file found."""
        found = discover(paths, self.station.settings.ignore)
        with Stager(found.files, self.station.settings.spool_dir, self.probe) as stager:
            return self.run_staged(found, stager)

    def run_staged(self, found: Discovery, stager: Stager) -> IngestReport:
        """Ingest what ``stager`` (already started on ``found.files``) stages. Nothing is
        stored before the store and the signing key have been checked."""
        st = self.station
        st.store.check()
        st.signer()  # a wrong passphrase fails before anything is stored
        report = IngestReport()
        for n in found.not_taken:
            r = FileResult(
                path=display(n.path),
                status="ignored" if n.ignored else "error",
                reason=n.reason,
            )
            report.results.append(r)
            self.progress(r)
        self._run_files(stager, report)
        if report.count("ingested") or report.count("seen-again"):
            report.checkpoint = st.checkpoint()
        return report

    def _run_files(self, stager: Stager, report: IngestReport) -> None:
        pending: deque[tuple[Candidate, Future[Prepared] | None, Digest | None]] = deque()
        in_run: set[str] = set()
        batch: list[tuple[Candidate, Prepared | None, Digest | None]] = []
        with ThreadPoolExecutor(self.workers, thread_name_prefix="bwc-ingest") as pool:
            for res in stager:
                cand, staged = res.candidate, res.staged
                if staged is None:
                    self._error(report, cand, res.error or "not staged")
                    continue
                sha = staged.digest.sha256
                if sha in in_run or self._known(sha):
                    if res.probed is not None:
                        res.probed.cancel()
                    staged.spool.unlink(missing_ok=True)
                    pending.append((cand, None, staged.digest))
                else:
                    in_run.add(sha)
                    pending.append((cand, pool.submit(self._prepare, staged, res.probed), None))
                # Keep the pool fed but bounded: at most workers+1 files in its hands.
                while len(pending) > self.workers + 1 or (pending and pending[0][1] is None):
                    self._collect(pending.popleft(), batch, report)
                    if len(batch) >= _BATCH:
                        self._commit(batch, report)
            while pending:
                self._collect(pending.popleft(), batch, report)
            self._commit(batch, report)

    def _known(self, sha: str) -> bool:
        with Session(self.station.engine) as s:
            return s.get(Item, sha) is not None

    def _collect(
        self,
        entry: tuple[Candidate, Future[Prepared] | None, Digest | None],
        batch: list[tuple[Candidate, Prepared | None, Digest | None]],
        report: IngestReport,
    ) -> None:
        cand, fut, digest = entry
        if fut is None:
            batch.append((cand, None, digest))
            return
        try:
            batch.append((cand, fut.result(), None))
        except BwcError as e:
            self._error(report, cand, str(e))
        except OSError as e:
            self._error(report, cand, f"I/O error: {e.strerror or e}")

    def _error(self, report: IngestReport, cand: Candidate, reason: str) -> None:
        logger.info("not ingested: %s: %s", display(cand.path), reason)
        r = FileResult(path=display(cand.path), status="error", reason=reason)
        report.results.append(r)
        self.progress(r)

    def _commit(
        self,
        batch: list[tuple[Candidate, Prepared | None, Digest | None]],
        report: IngestReport,
    ) -> None:
        if not batch:
            return
        st = self.station
        results: list[FileResult] = []
        with st.session() as s:
            events: list[custody.NewEvent] = []
            committed: set[str] = set()
            for cand, prep, digest in batch:
                rel_text, _enc = encode_path(cand.rel)
                if prep is not None:
                    m = prep.parsed
                    s.add(item_row(m, prep.manifest, prep.signature, prep.version))
                    committed.add(m.sha256)
                    events.append(ingested_event(st, m, prep.manifest))
                    results.append(
                        FileResult(display(cand.path), "ingested", m.sha256, m.size, tuple(m.flags))
                    )
                else:
                    assert digest is not None
                    exists = (
                        digest.sha256 in committed
                        or s.exec(
                            select(col(Item.sha256)).where(Item.sha256 == digest.sha256)
                        ).first()
                    )
                    if not exists:
                        # The first copy of these bytes in this run failed: nothing to point at.
                        results.append(
                            FileResult(
                                display(cand.path),
                                "error",
                                digest.sha256,
                                digest.size,
                                reason="an identical file earlier in this run was not ingested",
                            )
                        )
                        continue
                    events.append(
                        st.event(
                            "seen-again",
                            digest.sha256,
                            path=rel_text,
                            device_id=self.attribution.device_id,
                            officer_id=self.attribution.officer_id,
                        )
                    )
                    results.append(
                        FileResult(display(cand.path), "seen-again", digest.sha256, digest.size)
                    )
            custody.append_events(s, events)
        batch.clear()
        for r in results:
            report.results.append(r)
            self.progress(r)
