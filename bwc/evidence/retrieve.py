"""Reading footage out through bwc (`bwc get ID --out FILE`): the stored bytes copied to a
file, re-hashed on the way, and the file put in place only when its SHA-256 and size are
the item's; the copy is a `viewed` custody event (``what``: get, ``file``: the output's
name), recorded before the file appears, so no copy leaves without a trace.

The output is written as a temp file beside it, fsynced, checked, then linked in under its
name (never replacing a file already there): a crash or a mismatch leaves no file with the
evidence's name and the wrong bytes.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from bwc.errors import BwcError, InputError, UsageError, VerificationError
from bwc.evidence import access
from bwc.evidence.copyout import copy_object
from bwc.evidence.items import resolve_id
from bwc.evidence.models import ItemRetention
from bwc.evidence.retention import DELETED
from bwc.evidence.station import Station
from bwc.fsutil import PRIVATE_FILE, fsync_dir


@dataclass(frozen=True)
class Retrieved:
    sha256: str
    size: int
    path: Path
    recorded: bool


def get(station: Station, item_id: str, out: Path, *, record: bool) -> Retrieved:
    if record:
        access.prepare(station)
    with station.session(snapshot=True) as s:
        item = resolve_id(s, item_id)
        row = s.get(ItemRetention, item.sha256)
    if row is not None and row.state == DELETED:
        raise UsageError(f"item {item.sha256[:16]} was deleted by retention policy")
    if out.exists() or out.is_symlink():
        raise UsageError(f"{out} already exists", hint="give a new file name; nothing was written")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent} is not a folder", hint="nothing was written")
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    try:
        size, digest = _copy(station, item.sha256, tmp)
        if size != item.size or not hmac.compare_digest(digest, item.sha256):
            raise VerificationError(
                f"the stored object of {item.sha256[:16]} does not match its id "
                f"(read {size} bytes hashing to {digest[:16]}…): nothing was written",
                hint=f"run `bwc verify {item.sha256[:16]}`",
            )
        if record:
            access.record_views(station, [item.sha256], "get", file=out.name)
        try:
            os.link(tmp, out)  # never replaces: a file that appeared meanwhile stays
        except FileExistsError as e:
            raise UsageError(f"{out} already exists", hint="nothing was written") from e
        fsync_dir(out.parent)
    except OSError as e:
        raise InputError(
            f"cannot write {out}: {e.strerror or e}", hint="nothing was written"
        ) from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return Retrieved(item.sha256, size, out, record)


def _copy(station: Station, sha256: str, tmp: Path) -> tuple[int, str]:
    """The stored object into ``tmp`` (fsynced), hashed in the same pass."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with open(fd, "wb") as dst:
        got = copy_object(station.store.open_object, sha256, dst)
        if isinstance(got, BwcError):
            raise got  # the store's own error (the part written is removed with tmp)
        dst.flush()
        os.fsync(dst.fileno())
    return got.size, got.sha256
