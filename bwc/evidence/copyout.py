"""A stored object copied into a file while it is hashed: one read of every byte (`bwc
export` into a bundle, `bwc get` out to a file). A thread reads ahead a few chunks (memory
stays flat whatever the size) and another hashes, while the caller's thread writes: hashlib
and file writes both release the GIL, so on two cores the store's reads, the hash and the
writes overlap (measured on a 1 GB export: the copy went from hash + write to about the
larger of the two)."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from typing import BinaryIO, Protocol

from bwc.errors import BwcError, StoreError
from bwc.evidence.fingerprint import Digest

CHUNK = 1 << 20  # 1 MiB: large enough for the disk, small enough to keep memory flat
_AHEAD = 8  # chunks read (and hashed) ahead of the writer


class Sink(Protocol):
    """Where a copy goes: a file, or a zip member being written."""

    def write(self, data: bytes, /) -> object: ...


def copy_object(
    open_object: Callable[[str], BinaryIO],
    sha256: str,
    dst: Sink,
    step: Callable[[int], None] | None = None,
) -> Digest | BwcError:
    """Copy the object ``sha256`` into ``dst`` and return the digest of what was read, or
    the store's error when it could not be read whole (what was written is then a part of
    it: the caller removes it). An error writing ``dst`` is raised (OSError). ``step`` is
    told each chunk's size (progress). The caller flushes and fsyncs ``dst``."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()

    def put(x: bytes | BaseException | None) -> None:
        while not stop.is_set():
            try:
                chunks.put(x, timeout=0.1)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            with open_object(sha256) as src:
                while not stop.is_set() and (chunk := src.read(CHUNK)):
                    put(chunk)
        except Exception as e:  # handed to the caller's thread: never lost, never hangs it
            put(e)
            return
        put(None)

    h = hashlib.sha256()
    size = 0
    failed: BaseException | None = None
    to_hash: queue.Queue[bytes | None] = queue.Queue(maxsize=_AHEAD)

    def digest() -> None:
        while (c := to_hash.get()) is not None:
            h.update(c)

    reader = threading.Thread(target=read, name="bwc-copy-read", daemon=True)
    hasher = threading.Thread(target=digest, name="bwc-copy-hash", daemon=True)
    reader.start()
    hasher.start()
    try:
        while (x := chunks.get()) is not None:
            if isinstance(x, BaseException):
                failed = x
                break
            to_hash.put(x)
            dst.write(x)
            size += len(x)
            if step is not None:
                step(len(x))
    finally:
        stop.set()
        to_hash.put(None)  # the hasher drains what it was given, then stops
        hasher.join()
        reader.join()
    if isinstance(failed, BwcError):
        return failed
    if isinstance(failed, OSError):
        return StoreError(f"cannot read stored object: {failed.strerror or failed}")
    if failed is not None:
        raise failed
    return Digest(h.hexdigest(), size)
