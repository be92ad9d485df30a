"""Staging: copy a source file into the spool, hashing it in the same pass.

``stage`` copies one file; ``Stager`` copies a list of files on its own thread, a bounded
amount ahead of the rest of the pipeline, and starts each file's media probe as its copy
begins. Standard library only (no catalog, no store): `bwc ingest` starts staging while the
catalog code is still loading, and nothing staged counts for anything until the pipeline has
stored, read back and committed it. The spool is removed when the Stager is closed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bwc.errors import BwcError, InputError, StoreError
from bwc.evidence.fingerprint import Cancelled, Digest, WriteFailed, copy_and_hash
from bwc.fsutil import PRIVATE_DIR, fsync_dir, make_dir
from bwc.ingest.discover import Candidate, display
from bwc.ingest.source import open_source, opened, restat

if TYPE_CHECKING:
    from bwc.ingest.probe import MediaProbe, MediaSummary

logger = logging.getLogger(__name__)

_MAX_RESTAGE = 3


# A source file's identity and state: device, inode, size, mtime and ctime (ns). Equal
# before and after a read, the read saw one unchanged file: a file renamed over the path has
# another inode, and a write (even one that sets the mtime back) moves the ctime.
SourceId = tuple[int, int, int, int, int]


def source_id(st: os.stat_result) -> SourceId:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class Staged:
    candidate: Candidate
    spool: Path
    digest: Digest
    attempts: int = 1
    mtime_ns: int = 0  # the source's mtime when copied
    source: SourceId | None = None  # the source's identity, the same all through the copy


@dataclass(frozen=True)
class Probed:
    """A media probe of a source path, with the path's identity before it started and after
    it ended."""

    media: MediaSummary | None
    before: SourceId | None
    after: SourceId | None

    def describes(self, staged: Staged) -> bool:
        """Whether the probe read the very file that was copied and hashed: the source had
        one identity from before the probe started to after it ended, and that is the one it
        had all through the copy. Otherwise its summary may be another file's."""
        return self.before is not None and self.before == self.after == staged.source


class SourceChanged(InputError):
    pass


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return source_id(a) == source_id(b)


def stage(
    candidate: Candidate,
    spool_dir: Path,
    *,
    dest: Path | None = None,
    durable: bool = False,
    cancel: threading.Event | None = None,
) -> Staged:
    """Copy a source file into the spool, hashing it in the same pass. The source is opened
    read-only through its folders' descriptors (``source.open_source``: no symlink followed,
    nothing but a regular file read) and never modified; if it changes while copied
    (size, mtime or identity), it is copied again. ``dest``: a fixed spool file name
    (overwritten); ``durable``: fsync it, and its folder, before returning; ``cancel``: when
    set, the copy stops (``Cancelled``) and its spool file is removed. The copy is written
    with direct I/O where the file system has it: a local store keeps it by a rename, and an
    S3 upload reads it from the medium (``RangeReader``), so it need not sit in the page
    cache."""
    for attempt in range(1, _MAX_RESTAGE + 1):
        try:
            # through the folders' descriptors, never by path: a folder swapped for a
            # symlink, or a FIFO swapped in, since discovery is refused here (UnsafeSource)
            src = open_source(candidate.root, candidate.rel, candidate.parent)
        except OSError as e:
            raise InputError(f"cannot open {display(candidate.path)}: {e.strerror}") from e
        spool = dest or spool_dir / f"{uuid.uuid4().hex}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if dest else os.O_EXCL)
        try:
            src_fd, before = src.fd, src.stat
            out_fd = os.open(spool, flags, 0o600)
            try:
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(src_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
                digest = copy_and_hash(src_fd, out_fd, cancel=cancel)
                if durable:
                    try:
                        os.fsync(out_fd)
                    except OSError as e:  # the spool's fault, not the source's
                        raise WriteFailed(e) from e
            finally:
                os.close(out_fd)
            after = os.fstat(src_fd)
            try:
                # looked up again from the root (through real folders only): a camera
                # removed (or a folder moved away) during the copy is seen, not just the
                # file its descriptors still reach
                now = restat(candidate.root, candidate.rel)
            except (OSError, InputError) as e:
                raise SourceChanged(f"{display(candidate.path)} vanished during copy") from e
            if _same(before, after) and _same(before, now) and digest.size == before.st_size:
                if durable:
                    # the copy's name too: a job saved as `staged` must find it after a
                    # power cut (fsyncing the file does not make its folder entry durable)
                    try:
                        fsync_dir(spool.parent)
                    except OSError as e:  # the spool's fault, not the source's
                        raise WriteFailed(e) from e
                return Staged(
                    candidate, spool, digest, attempt, before.st_mtime_ns, source_id(before)
                )
            logger.info("source changed during copy, copying again: %s", display(candidate.path))
        except WriteFailed as e:
            spool.unlink(missing_ok=True)
            raise StoreError(
                f"cannot write the spool copy of {display(candidate.path)} in {spool.parent}: {e}",
                hint="check the free space and permissions of the bwc home",
            ) from e
        except OSError as e:
            spool.unlink(missing_ok=True)
            raise InputError(f"cannot read {display(candidate.path)}: {e.strerror}") from e
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        finally:
            src.close()
        spool.unlink(missing_ok=True)
    raise SourceChanged(
        f"{display(candidate.path)} kept changing while being copied",
        hint="wait until the device has finished writing, then ingest again",
    )


@dataclass
class StageResult:
    """One file from a stager: staged, or the reason it could not be."""

    index: int  # in the list of files given to the stager
    candidate: Candidate
    staged: Staged | None = None
    error: str | None = None
    probed: Future[Probed] | None = None  # set as the consumer takes it


class Stager:
    """Copies ``files`` into a fresh spool folder under ``spool_root``, in order, ahead of the
    consumer, which iterates over the results as they are done; each file's media probe runs
    beside its copy (``probers`` at a time).

    Staging runs at most ``ahead_files`` files and, once a file waits, ``ahead_bytes`` bytes
    ahead of the consumer, so the spool stays bounded. ``close`` stops it and removes the
    spool. This class stages on a thread; ``ForkedStager`` in a child process."""

    def __init__(
        self,
        files: Sequence[Candidate],
        spool_root: Path,
        probe: MediaProbe | None = None,
        *,
        ahead_files: int = 8,
        ahead_bytes: int = 512 << 20,
        probers: int = 1,
    ) -> None:
        self.spool = spool_root / f"ingest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        make_dir(self.spool, PRIVATE_DIR, parents=True)
        self._files = list(files)
        self._ahead_files = max(1, ahead_files)
        self._ahead_bytes = ahead_bytes
        self._ready: queue.SimpleQueue[StageResult | BaseException | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._probers_count = max(1, probers)
        self._probers: ThreadPoolExecutor | None = None  # the probes' threads (this class)
        self._probed: list[Future[Probed] | None] = [None] * len(self._files)
        self._closed = False
        self._probe = probe
        try:
            self._start()  # before any thread of ours exists (ForkedStager forks here)
            self._start_probes()
        except BaseException:  # Ctrl-C included: no child, thread or spool left behind
            self.close()
            raise

    # -- the producer (overridden by ForkedStager)
    def _start(self) -> None:
        self._room = threading.Condition()
        self._waiting = (0, 0)  # files, bytes staged and not yet taken by the consumer
        self._thread = threading.Thread(target=self._run, name="bwc-stage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for n, cand in enumerate(self._files):
                with self._room:
                    while not self._stop.is_set() and _full(
                        *self._waiting, self._ahead_files, self._ahead_bytes
                    ):
                        self._room.wait()
                if self._stop.is_set():
                    return
                try:
                    staged = stage(cand, self.spool, cancel=self._stop)
                except BwcError as e:
                    self._ready.put(StageResult(n, cand, error=str(e)))
                    continue
                with self._room:
                    files, size = self._waiting
                    self._waiting = (files + 1, size + staged.digest.size)
                self._ready.put(StageResult(n, cand, staged=staged))
        except Cancelled:
            return
        except BaseException as e:  # handed to the consumer, which raises it
            self._ready.put(e)
        finally:
            self._ready.put(None)

    def _taken(self, size: int) -> None:
        with self._room:
            files, waiting = self._waiting
            self._waiting = (files - 1, waiting - size)
            self._room.notify()

    def _stop_producer(self) -> None:
        self._stop.set()
        if not hasattr(self, "_thread"):
            return  # never started
        with self._room:
            self._room.notify_all()
        self._thread.join()

    # -- the consumer
    def _start_probes(self) -> None:
        # ffprobe costs ~0.06 s of CPU a file, mostly its own start-up. One at a time (by
        # default), from the start and ahead of the copies: they use the CPU that the copy,
        # waiting on the disk, leaves idle, and are done before the pipeline needs them.
        if self._probe is None:
            return
        pool = ThreadPoolExecutor(self._probers_count, thread_name_prefix="bwc-probe")
        self._probers = pool
        for n, cand in enumerate(self._files):
            self._probed[n] = pool.submit(probe_source, self._probe, cand)

    def __iter__(self) -> Iterator[StageResult]:
        while (item := self._ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            item.probed = self._probed[item.index]
            if item.staged is not None:
                self._taken(item.staged.digest.size)
            elif item.probed is not None:
                item.probed.cancel()
            yield item

    def close(self) -> None:
        """Stop staging (a copy under way stops at its next buffer), then remove the spool."""
        if self._closed:
            return
        self._closed = True
        self._stop_producer()
        if self._probers is not None:
            self._probers.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.spool, ignore_errors=True)

    def __enter__(self) -> Stager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _yield_cpu(niceness: int) -> None:
    """Lower this thread's CPU priority (on Linux, a thread's own; the processes it starts
    inherit it). The copy and the probes run ahead of the pipeline and can wait; what the
    pipeline does next (loading, opening the store, uploading, reading back) cannot."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + niceness)


def _full(files: int, size: int, max_files: int, max_bytes: int) -> bool:
    return files >= max_files or (files > 0 and size >= max_bytes)


class ProbeNotRun(Exception):
    """The staging child ended before it probed this file (the pipeline probes it itself)."""


def probe_source(probe: MediaProbe, cand: Candidate) -> Probed:
    """Probe a source beside its copy, opened the way the copy opens it (no symlink followed,
    a regular file only): ffprobe is given this process's descriptor (``/proc/<pid>/fd/<n>``
    opens that very file again), never the path, which could lead elsewhere by now. The
    file's identity before and after the probe says whether it is the one that was copied.
    ProbeNotRun when it cannot be opened (the copy says why; the staged copy is probed)."""
    try:
        with opened(cand.root, cand.rel, cand.parent) as src:
            before = source_id(os.fstat(src.fd))
            media = probe.probe(Path(f"/proc/{os.getpid()}/fd/{src.fd}"))
            return Probed(media, before, source_id(os.fstat(src.fd)))
    except (OSError, InputError) as e:
        raise ProbeNotRun(str(e)) from e


class ForkedStager(Stager):
    """A Stager whose copying and probing run in a forked child process, so that they neither
    wait for nor slow the parent's interpreter: `bwc ingest` forks it before loading the
    catalog code (~0.5 s of pure Python that holds the GIL, which would starve a copy or a
    probe on a thread of this process), and the copy runs at disk speed meanwhile. Fork before
    starting any thread. The child only copies into the spool, runs ffprobe and reports on a
    pipe (one JSON line a result); it never touches the catalog or the store, and dies with the
    pipe if the parent does."""

    def _start(self) -> None:
        # the child probes; its results arrive through these (made before the reader starts,
        # which may see the child's last line before this constructor returns)
        if self._probe is not None:
            self._probed = [Future() for _ in self._files]
        results_r, results_w = os.pipe()
        credits_r, credits_w = os.pipe()
        # Ctrl-C is held back until the child is known (its pid saved, its reader started),
        # so that close() can always stop it; it is raised as soon as this returns.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            for fd in (results_r, results_w, credits_r, credits_w):
                os.close(fd)
            raise
        if pid == 0:  # the child: stage, report, exit without running any parent code
            code = 1
            try:
                os.close(results_r)
                os.close(credits_w)
                # Ctrl-C reaches the whole process group: the parent handles it (and stops
                # this child); the child must not die first and look like a staging failure.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
                _yield_cpu(5)
                _child_stage(
                    self._files,
                    self.spool,
                    results_w,
                    credits_r,
                    self._ahead_files,
                    self._ahead_bytes,
                    self._probe,
                )
                code = 0
            finally:
                os._exit(code)
        try:
            os.close(results_w)
            os.close(credits_r)
            self._pid = pid
            self._credits = credits_w
            self._reader = threading.Thread(
                target=self._read_results, args=(results_r,), name="bwc-stage-reader", daemon=True
            )
            self._reader.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _start_probes(self) -> None:
        pass  # the child probes (see _start)

    def _read_results(self, fd: int) -> None:
        try:
            with os.fdopen(fd, "rb") as f:
                for line in f:
                    msg = json.loads(line)
                    if "fatal" in msg:
                        self._ready.put(InputError(f"staging failed: {msg['fatal']}"))
                        return
                    n = int(msg["n"])
                    if "media" in msg:
                        fut = self._probed[n]
                        if fut is not None and fut.set_running_or_notify_cancel():
                            fut.set_result(
                                Probed(msg["media"], _id_of(msg["before"]), _id_of(msg["after"]))
                            )
                        continue
                    cand = self._files[n]
                    if "error" in msg:
                        self._ready.put(StageResult(n, cand, error=str(msg["error"])))
                        continue
                    staged = Staged(
                        cand,
                        Path(msg["spool"]),
                        Digest(str(msg["sha256"]), int(msg["size"])),
                        int(msg["attempts"]),
                        int(msg["mtime_ns"]),
                        _id_of(msg["source"]),
                    )
                    self._ready.put(StageResult(n, cand, staged=staged))
        except BaseException as e:
            self._ready.put(e)
        finally:
            for fut in self._probed:
                if fut is not None and not fut.done() and fut.set_running_or_notify_cancel():
                    fut.set_exception(ProbeNotRun())
            self._ready.put(None)

    def _taken(self, size: int) -> None:
        if self._closed:  # the descriptor is closed (its number may be reused)
            return
        with contextlib.suppress(OSError):  # the child has finished: no one reads
            os.write(self._credits, b"%d\n" % size)

    def _stop_producer(self) -> None:
        # The child only ever writes into the spool, which is removed next: stop it now.
        os.close(self._credits)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)
        self._reader.join()


def _child_stage(
    files: Sequence[Candidate],
    spool: Path,
    results: int,
    credits: int,
    max_files: int,
    max_bytes: int,
    probe: MediaProbe | None,
) -> None:
    """The forked child's work: stage each file, and probe each on a thread beside, one JSON
    line a result on ``results``."""
    credit_lines = os.fdopen(credits, "rb")
    out = os.fdopen(results, "wb", buffering=0)
    lock = threading.Lock()
    stop = threading.Event()

    def send(msg: dict[str, object]) -> None:
        with lock:  # one whole line at a time (a media summary can be longer than PIPE_BUF)
            out.write(json.dumps(msg).encode() + b"\n")

    def probe_all() -> None:
        assert probe is not None
        try:
            for n, cand in enumerate(files):
                if stop.is_set():
                    return
                try:
                    p = probe_source(probe, cand)
                except ProbeNotRun:
                    continue  # the parent probes the staged copy
                send({"n": n, "media": p.media, "before": p.before, "after": p.after})
        except OSError:
            return  # the parent is gone: the pipe is closed

    prober = threading.Thread(target=probe_all, name="bwc-probe", daemon=True)
    if probe is not None:
        prober.start()
    waiting: deque[int] = deque()
    try:
        for n, cand in enumerate(files):
            while _full(len(waiting), sum(waiting), max_files, max_bytes):
                line = credit_lines.readline()
                if not line:
                    return  # the parent is gone or stopping
                waiting.popleft()
            try:
                staged = stage(cand, spool)
            except BwcError as e:
                send({"n": n, "error": str(e)})
                continue
            waiting.append(staged.digest.size)
            send(
                {
                    "n": n,
                    "spool": str(staged.spool),
                    "sha256": staged.digest.sha256,
                    "size": staged.digest.size,
                    "attempts": staged.attempts,
                    "mtime_ns": staged.mtime_ns,
                    "source": staged.source,
                }
            )
        if probe is not None:
            prober.join()  # every probe reported before the child exits
    except BaseException as e:  # reported to the parent, which stops with an error
        stop.set()
        with contextlib.suppress(OSError):
            send({"fatal": f"{type(e).__name__}: {e}"})
        raise


def _id_of(value: object) -> SourceId | None:
    """A SourceId back from its JSON list (None stays None)."""
    if not isinstance(value, list) or len(value) != 5:
        return None
    dev, ino, size, mtime_ns, ctime_ns = (int(v) for v in value)
    return (dev, ino, size, mtime_ns, ctime_ns)


def clean_stale_spool(spool_dir: Path) -> None:
    """Remove spool folders of `bwc ingest` runs whose process is gone."""
    if not spool_dir.is_dir():
        return
    for d in spool_dir.glob("ingest-*"):
        try:
            pid = int(d.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            continue
