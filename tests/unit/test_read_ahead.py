"""`bwc verify --all` on a local store re-hashes objects while the catalog code loads
(``LocalStore.object_ids`` + ``ReadAhead``): each object is still read exactly once, by
``read_back``, and what it reads is what the checks see."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from pathlib import Path

import pytest

from bwc.evidence.fingerprint import Digest
from bwc.evidence.stores import ReadAhead
from bwc.evidence.stores.local import LocalStore

pytestmark = pytest.mark.unit


def _put(store: LocalStore, tmp_path: Path, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    staged = tmp_path / f"{sha}.part"
    staged.write_bytes(data)
    store.put_object(sha, staged)
    store.put_meta(sha, "manifest.json", b"{}")
    return sha


def test_object_ids_lists_objects_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    assert store.object_ids() == []  # no store folder (the check that reads says so)
    (tmp_path / "store" / "objects").mkdir(parents=True)
    assert store.object_ids() == []
    shas = [_put(store, tmp_path, bytes([i]) * 100) for i in range(5)]
    (tmp_path / "store" / "objects" / "zz").mkdir()  # not an object folder's content
    (tmp_path / "store" / "objects" / shas[0][:2] / "notes.txt").write_text("x")
    assert store.object_ids() == sorted(shas)


def test_read_ahead_gives_each_read_back_once(tmp_path: Path) -> None:
    (tmp_path / "store" / "objects").mkdir(parents=True)
    store = LocalStore(tmp_path / "store")
    datas = [bytes([i]) * (1000 + i) for i in range(6)]
    shas = [_put(store, tmp_path, d) for d in datas]
    ahead = ReadAhead(store, store.object_ids(), workers=2)
    try:
        for sha, data in zip(shas, datas, strict=True):
            started = ahead.take(sha)
            assert started is not None
            assert started.result() == Digest(sha, len(data))
            assert ahead.take(sha) is None  # taken once
        assert ahead.take("0" * 64) is None
    finally:
        ahead.close()


def test_verify_all_reads_each_object_once_ahead(
    bwc, home: Path, camera: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    assert bwc("ingest", str(camera)).code == 0
    reads: Counter[str] = Counter()
    threads: set[str] = set()
    real = LocalStore.read_back

    def counted(self: LocalStore, sha256: str) -> Digest:
        reads[sha256] += 1
        threads.add(threading.current_thread().name.split("_")[0])
        return real(self, sha256)

    monkeypatch.setattr(LocalStore, "read_back", counted)
    r = bwc("verify", "--all", "--no-record")
    assert r.code == 0, r.err
    assert reads and set(reads.values()) == {1}
    assert threads == {"bwc-read-ahead"}
