"""Issue 12, defect 17 (same class): keeping the verified checkpoint in the home on a full
disk. An unchanged checkpoint is not written again (a full disk need not stop a command
that only reads); a write that fails is a HomeError naming the file, not an internal error."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from bwc.errors import HomeError
from bwc.evidence import trust

pytestmark = pytest.mark.unit

NOTE = "example.org/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.org/log sig\n"
NEWER = NOTE.replace("\n3\n", "\n4\n")


def no_space(*_args: object, **_kw: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_an_unchanged_checkpoint_is_not_written_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trust.remember(tmp_path, NOTE)
    assert trust.load(tmp_path) == NOTE
    monkeypatch.setattr(trust, "write_atomic", no_space)
    trust.remember(tmp_path, NOTE)  # nothing to write: no error


def test_a_failed_write_is_a_home_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trust.remember(tmp_path, NOTE)
    monkeypatch.setattr(trust, "write_atomic", no_space)
    with pytest.raises(HomeError) as caught:
        trust.remember(tmp_path, NEWER)
    assert caught.value.exit_code == 4
    text = str(caught.value)
    assert "cannot keep the verified checkpoint" in text and "No space left on device" in text
    assert f"free space on {tmp_path}" in text
    assert trust.load(tmp_path) == NOTE
