"""The stagers: every file comes out, in order, with the right digest or a reason; staging stays
a bounded distance ahead; closing stops the copying (thread or child process) and removes the
spool."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from bwc.ingest.discover import Candidate
from bwc.ingest.probe import MediaSummary
from bwc.ingest.stage import ForkedStager, Stager

KINDS = [Stager, ForkedStager]


def _cand(root: Path, name: str) -> Candidate:
    return Candidate(os.fsencode(root / name), os.fsencode(name), os.fsencode(root))


def _files(root: Path, sizes: list[int]) -> list[Candidate]:
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for n, size in enumerate(sizes):
        name = f"clip{n:03d}.mp4"
        (root / name).write_bytes(
            hashlib.sha256(name.encode()).digest() * (size // 32) + b"x" * (size % 32)
        )
        out.append(_cand(root, name))
    return out


class FakeProbe:
    def __init__(self) -> None:
        self.seen: list[Path] = []
        self.lock = threading.Lock()

    def probe(self, path: Path) -> MediaSummary | None:
        with self.lock:
            self.seen.append(path)
        # a source is probed through its open descriptor (/proc/<pid>/fd/<n>), never by path
        name = os.path.basename(os.readlink(path)) if path.parts[1] == "proc" else path.name
        return {"probed": name}  # type: ignore[return-value]


@pytest.mark.parametrize("kind", KINDS)
def test_every_file_in_order_with_its_digest(tmp_path: Path, kind: type[Stager]) -> None:
    sizes = [0, 1, 5000, (4 << 20) + 3, 70_000]
    files = _files(tmp_path / "src", sizes)
    missing = _cand(tmp_path / "src", "gone.mp4")
    files.insert(2, missing)
    probe = FakeProbe()
    with kind(files, tmp_path / "spool", probe) as st:
        results = list(st)
        spool = st.spool
        for r in results:
            if r.staged is not None:
                assert r.staged.spool.parent == spool
                data = (tmp_path / "src" / os.fsdecode(r.candidate.rel)).read_bytes()
                assert r.staged.spool.read_bytes() == data
                assert r.staged.digest.sha256 == hashlib.sha256(data).hexdigest()
                assert r.staged.digest.size == len(data)
                assert r.probed is not None
                assert r.probed.result().media == {"probed": os.fsdecode(r.candidate.rel)}
    assert [r.candidate for r in results] == files
    assert [r.index for r in results] == list(range(len(files)))
    bad = results[2]
    assert bad.staged is None and bad.error and "cannot open" in bad.error
    assert not spool.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_staging_stays_a_bounded_distance_ahead(tmp_path: Path, kind: type[Stager]) -> None:
    files = _files(tmp_path / "src", [10_000] * 6)
    with kind(files, tmp_path / "spool", ahead_files=2, ahead_bytes=1 << 30) as st:
        time.sleep(0.5)
        assert len(list(st.spool.iterdir())) <= 2
        it = iter(st)
        first = next(it)
        assert first.staged is not None
        first.staged.spool.unlink()  # the consumer moves each file on
        time.sleep(0.5)
        assert len(list(st.spool.iterdir())) <= 2
        rest = list(it)
    assert len(rest) == 5 and all(r.staged for r in rest)


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_bound_once_a_file_waits(tmp_path: Path, kind: type[Stager]) -> None:
    files = _files(tmp_path / "src", [50_000] * 4)
    with kind(files, tmp_path / "spool", ahead_files=8, ahead_bytes=1) as st:
        time.sleep(0.5)
        assert len(list(st.spool.iterdir())) == 1  # one waits; the bytes bound holds the rest
        assert len(list(st)) == 4


@pytest.mark.parametrize("kind", KINDS)
def test_close_without_consuming_stops_and_cleans(tmp_path: Path, kind: type[Stager]) -> None:
    files = _files(tmp_path / "src", [(4 << 20) + 1] * 5)
    st = kind(files, tmp_path / "spool")
    time.sleep(0.2)
    st.close()
    st.close()  # twice is harmless
    assert not st.spool.exists()
    if isinstance(st, ForkedStager):
        with pytest.raises(ChildProcessError):
            os.waitpid(st._pid, os.WNOHANG)  # reaped: no zombie left


def test_forked_child_sees_what_the_parent_patched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child is a fork: it runs the same code and state as the parent (so a test's fault
    injection reaches it), and an unreadable file is reported, not fatal."""
    files = _files(tmp_path / "src", [100, 200])
    real_open = os.open
    bad = files[0].rel  # opened by name under its folder's descriptor

    def fake_open(path: object, flags: int, mode: int = 0o777, *, dir_fd: object = None) -> int:
        if path == bad and dir_fd is not None:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, mode, dir_fd=dir_fd)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", fake_open)
    with ForkedStager(files, tmp_path / "spool") as st:
        results = list(st)
    assert results[0].error and "Permission denied" in results[0].error
    assert results[1].staged is not None


def test_a_spool_that_cannot_be_written_is_named_not_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from bwc.errors import StoreError
    from bwc.ingest.stage import stage

    (cand,) = _files(tmp_path / "src", [(4 << 20) + 10])

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    spool = tmp_path / "spool"
    spool.mkdir()
    with pytest.raises(StoreError, match=r"cannot write the spool copy .* No space left"):
        stage(cand, spool)
    assert list(spool.iterdir()) == []  # the partial copy is removed
    assert (tmp_path / "src" / "clip000.mp4").stat().st_size == (4 << 20) + 10


@pytest.mark.parametrize("failing", ["the copy", "its folder"])
def test_a_spool_copy_that_cannot_be_synced_is_named_not_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """A durable staging whose fsync fails (the copy's, or its folder's) is the spool's
    fault: a StoreError (the daemon retries), never "cannot read" the camera's file."""
    import errno

    from bwc.errors import StoreError
    from bwc.ingest.stage import stage

    (cand,) = _files(tmp_path / "src", [5000])
    spool = tmp_path / "spool"
    spool.mkdir()
    calls = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == (1 if failing == "the copy" else 2):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(StoreError, match=r"cannot write the spool copy .* Input/output error"):
        stage(cand, spool, dest=spool / "1.part", durable=True)
    assert list(spool.iterdir()) == []  # the copy is removed


@pytest.mark.parametrize("kind", KINDS)
def test_probes_resolve_even_when_staging_ends_first(tmp_path: Path, kind: type[Stager]) -> None:
    """A child that stages and probes everything before the constructor has returned (tiny
    files) still resolves every probe: a consumer must never wait on a probe forever."""
    files = _files(tmp_path / "src", [10] * 5)
    for _ in range(5):
        with kind(files, tmp_path / "spool", FakeProbe()) as st:
            time.sleep(0.2)
            for r in st:
                assert r.probed is not None
                assert r.probed.result(timeout=10).media == {"probed": os.fsdecode(r.candidate.rel)}
