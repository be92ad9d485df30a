"""The newest checkpoint this station has verified, kept in its home (``trusted-checkpoint``):
what a transparency-log client keeps so that a later checkpoint must prove it extends it.
A shared catalog rolled back or forked behind this station's back then fails verification
here, even where every other copy was changed too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from bwc.errors import HomeError, NoteError
from bwc.evidence import note
from bwc.fsutil import write_atomic

NAME = "trusted-checkpoint"


def load(home: Path) -> str | None:
    try:
        return (home / NAME).read_text("utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _size(text: str | None) -> int:
    if text is None:
        return -1
    try:
        return note.unverified_checkpoint(text).size
    except NoteError:
        return -1


def remember(home: Path, text: str) -> None:
    """Keep ``text`` (a checkpoint just verified) unless a larger one is already kept."""
    if not home.is_dir():
        return
    if load(home) == text:
        return  # already kept: nothing to write (a full disk need not stop a read)
    lock = home / f".{NAME}.lock"
    try:
        # created private (the umask may be 0): no window in which others could open it
        with open(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                kept = load(home)
                if text != kept and _size(text) >= _size(kept):
                    write_atomic(home / NAME, text.encode("utf-8"), mode=0o600)
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(f, fcntl.LOCK_UN)
    except OSError as e:
        # the checkpoint stays unremembered: a later rollback would go unseen, so stop
        raise HomeError(
            f"cannot keep the verified checkpoint in {home / NAME}: {e.strerror or e}",
            hint=f"free space on {home} (or make it writable) and run the command again",
        ) from e
    with contextlib.suppress(OSError):
        os.chmod(lock, 0o600)
