"""`bwc ingest`: copy + hash in one pass, sign, store, read back, commit.

Per file: staged (copied to the spool while hashing; source re-checked for change) → signed →
stored → verified (read back from the medium) → committed (item row + custody event in one
transaction). Staging runs on its own thread (``stage.Stager``) a bounded distance ahead, so
the copy of file N+1 overlaps the ffprobe, signing, store and read-back of file N (a small
worker pool); catalog commits are batched on the calling thread. `bwc ingest` starts the
Stager before this module (and SQLAlchemy) is even loaded.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from bwc.errors import BwcError, StoreError
from bwc.evidence import custody
from bwc.evidence.fingerprint import Digest
from bwc.evidence.manifest import (
    Manifest,
    encode_path,
)
from bwc.evidence.models import Item
from bwc.evidence.station import Station
from bwc.ingest import steps
from bwc.ingest.discover import Candidate, Discovery, discover, display, station_paths
from bwc.ingest.probe import MediaProbe, MediaSummary
from bwc.ingest.profiles import IdFile, station_profiles
from bwc.ingest.stage import Probed, ProbeNotRun, Staged, Stager

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
    meta_stored: bool  # the store's manifest is this one (not another ingest's)


@dataclass(frozen=True)
class Attribution:
    """What the operator said on the command line (--officer / --device)."""

    officer_id: str | None
    device_id: str | None


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
        self.ledger = steps.ledger_lookup(station.engine)
        self._id_files: dict[bytes, IdFile | None] = {}

    def _id_file(self, root: bytes) -> IdFile | None:
        if root not in self._id_files:
            self._id_files[root] = steps.read_id_file(root)
        return self._id_files[root]

    # -- worker side: everything after the copy, for one file
    def _prepare(self, staged: Staged, probed: Future[Probed] | None) -> Prepared:
        st = self.station
        # ffprobe ran on the source path beside the copy (it costs ~0.1 s a file, so it must
        # not wait for the copy). Its summary is signed only if the source kept one identity
        # from before the probe to after the copy (a file renamed over the path between the
        # two would otherwise be described in the manifest of the other's bytes); else the
        # staged copy, the bytes that were hashed, is probed.
        media: MediaSummary | None
        try:
            if probed is None:
                raise ProbeNotRun
            result = probed.result()
            if not result.describes(staged):
                logger.info("source changed around its probe, probing the copy: %s", staged.spool)
                raise ProbeNotRun
            media = result.media
        except (ProbeNotRun, CancelledError):
            media = self.probe.probe(staged.spool)
        sha, size = staged.digest.sha256, staged.digest.size
        signed = steps.sign(
            st,
            sha256=sha,
            size=size,
            rel=staged.candidate.rel,
            media=media,
            profiles=self.profiles,
            id_file=self._id_file(staged.candidate.root),
            ledger=self.ledger,
            officer=self.attribution.officer_id,
            device=self.attribution.device_id,
        )
        version, meta_stored = steps.store_verified(st.store, sha, size, staged.spool, signed)
        return Prepared(
            staged, signed.manifest, signed.signature, signed.parsed, version, meta_stored
        )

    # -- calling thread
    def run(self, paths: Sequence[str | Path]) -> IngestReport:
        """Discover ``paths`` and ingest every file found."""
        settings = self.station.settings
        found = discover(paths, settings.ignore, station_paths(settings))
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
        heal: dict[str, FileResult] = {}  # items whose stored manifest may not be theirs
        with st.session() as s:
            # First the log's lock: another ingest of the same bytes that commits meanwhile
            # is then seen below (its item), never met as a duplicate row at the insert.
            custody.lock_head(s)
            events: list[custody.NewEvent] = []
            committed: set[str] = set()
            for cand, prep, digest in batch:
                rel_text, _enc = encode_path(cand.rel)
                if prep is not None and not steps.committed(s, prep.parsed.sha256):
                    m = prep.parsed
                    s.add(steps.item_row(m, prep.manifest, prep.signature, prep.version))
                    committed.add(m.sha256)
                    events.append(steps.ingested_event(st, m, prep.manifest))
                    r = FileResult(display(cand.path), "ingested", m.sha256, m.size, tuple(m.flags))
                    results.append(r)
                    if not prep.meta_stored:
                        heal[m.sha256] = r
                else:
                    if prep is not None:
                        # Another ingest committed these bytes after this one began: its
                        # item stands, this is a sighting (its own manifest is dropped).
                        digest = prep.staged.digest
                    assert digest is not None
                    exists = digest.sha256 in committed or steps.committed(s, digest.sha256)
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
                    r = FileResult(display(cand.path), "seen-again", digest.sha256, digest.size)
                    results.append(r)
                    heal.setdefault(digest.sha256, r)
            custody.append_events(s, events)
        batch.clear()
        for sha, r in heal.items():
            try:
                steps.heal_meta(st, sha)
            except StoreError as e:
                r.status = "error"
                r.reason = (
                    f"recorded, but the store's manifest of {sha[:12]} could not be put right "
                    f"({e}); run `bwc ingest` again to repair it"
                )
        for r in results:
            report.results.append(r)
            self.progress(r)
