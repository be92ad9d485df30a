"""fsutil.tree_bytes: what ``bwc status`` counts of the spool while the daemon writes there."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bwc import fsutil


def test_counts_regular_files_in_every_folder(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "a.part").write_bytes(b"x" * 10)
    (tmp_path / "jobs" / "3.part").write_bytes(b"y" * 32)
    (tmp_path / "link").symlink_to(tmp_path / "a.part")  # a link is not bytes of the spool
    assert fsutil.tree_bytes(tmp_path) == 42


def test_a_missing_root_holds_nothing(tmp_path: Path) -> None:
    assert fsutil.tree_bytes(tmp_path / "gone") == 0


def test_a_file_gone_between_listing_and_look_counts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon renames or removes ``spool/jobs/<id>.part`` at any moment: ``bwc status``
    once failed with an internal error on such a file (CI, stop 22)."""
    (tmp_path / "kept.part").write_bytes(b"k" * 7)
    real_walk = os.walk

    def walk_listing_a_vanished_file(root: Path) -> Iterator[tuple[str, list[str], list[str]]]:
        for folder, dirs, files in real_walk(root):
            yield folder, dirs, [*files, "3.part"]  # listed, then gone before the look

    monkeypatch.setattr(os, "walk", walk_listing_a_vanished_file)
    assert fsutil.tree_bytes(tmp_path) == 7


def test_counting_while_files_come_and_go_never_fails(tmp_path: Path) -> None:
    """The race itself: another thread makes, renames and removes spool files (as the
    daemon's workers do) while the tree is counted again and again. The old count (rglob,
    is_file, stat) failed here a few times in 300 rounds."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (tmp_path / "kept").write_bytes(b"k" * 5)
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            part, done = jobs / f"{i % 50}.part", jobs / f"{i % 50}.done"
            part.write_bytes(b"x")
            part.rename(done)
            done.unlink()
            i += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        counts = [fsutil.tree_bytes(tmp_path) for _ in range(500)]
    finally:
        stop.set()
        worker.join()
    assert min(counts) >= 5 and max(counts) <= 5 + 50
