"""Finding the files to ingest under the given paths, without ever losing one silently.

Walks with bytes paths so names that are not valid UTF-8 survive exactly. Symlinks are never
followed out of the root they were found under (nor into folders at all, so there are no
loops); every path that is not taken is returned with its reason.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bwc.errors import InputError


@dataclass(frozen=True)
class Candidate:
    path: bytes  # absolute source path
    rel: bytes  # path relative to the root it was found under (the original relative path)
    root: bytes


@dataclass(frozen=True)
class NotTaken:
    path: bytes
    rel: bytes
    reason: str
    ignored: bool  # True: a configured ignore pattern (counted, fine); False: an error


@dataclass
class Discovery:
    files: list[Candidate]
    not_taken: list[NotTaken]

    @property
    def ignored(self) -> list[NotTaken]:
        return [n for n in self.not_taken if n.ignored]

    @property
    def errors(self) -> list[NotTaken]:
        return [n for n in self.not_taken if not n.ignored]


def display(path: bytes) -> str:
    """A printable form of a bytes path (invalid UTF-8 bytes shown as \\xNN)."""
    return path.decode("utf-8", "backslashreplace")


def is_ignored(rel: bytes, patterns: Sequence[str]) -> str | None:
    for part in rel.split(b"/"):
        name = os.fsdecode(part)
        for pat in patterns:
            if fnmatch.fnmatchcase(name, pat):
                return pat
    return None


def _within(path: bytes, root: bytes) -> bool:
    return path == root or path.startswith(root.rstrip(b"/") + b"/")


def discover(paths: Iterable[str | Path], ignore: Sequence[str]) -> Discovery:
    """Expand files and folders (recursively) into candidates. Missing paths are an input
    error up front, before anything is stored."""
    roots: list[tuple[bytes, bytes | None]] = []
    for p in paths:
        raw = os.fsencode(os.path.abspath(os.fsencode(p)))
        try:
            # The path the user named is followed even if it is a symlink (a dock mount is
            # often reached through one); links *inside* it are never followed out.
            st = os.stat(raw)
        except FileNotFoundError as e:
            raise InputError(
                f"no such file or folder: {display(raw)}", hint="check the path"
            ) from e
        except PermissionError as e:
            raise InputError(f"cannot read {display(raw)}: permission denied") from e
        if stat.S_ISDIR(st.st_mode):
            roots.append((os.path.realpath(raw), None))
        else:
            roots.append((os.path.dirname(raw), os.path.basename(raw)))

    out = Discovery(files=[], not_taken=[])
    seen: set[bytes] = set()
    for root, single in roots:
        real_root = os.path.realpath(root)
        if single is not None:
            _consider(os.path.join(root, single), single, root, real_root, ignore, out, seen)
            continue
        _walk(root, root, real_root, ignore, out, seen, set())
    return out


def _walk(
    folder: bytes,
    root: bytes,
    real_root: bytes,
    ignore: Sequence[str],
    out: Discovery,
    seen: set[bytes],
    visited: set[tuple[int, int]],
) -> None:
    try:
        st = os.stat(folder, follow_symlinks=False)
        key = (st.st_dev, st.st_ino)
        if key in visited:  # bind mounts can loop even without symlinks
            out.not_taken.append(
                NotTaken(
                    folder, os.path.relpath(folder, root), "folder loop, visited already", False
                )
            )
            return
        visited.add(key)
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        rel = os.path.relpath(folder, root)
        out.not_taken.append(NotTaken(folder, rel, f"cannot list folder: {e.strerror}", False))
        return
    for entry in entries:
        path = entry.path
        rel = os.path.relpath(path, root)
        pat = is_ignored(rel, ignore)
        if pat is not None:
            out.not_taken.append(NotTaken(path, rel, f"ignored by pattern {pat!r}", True))
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            _walk(path, root, real_root, ignore, out, seen, visited)
        else:
            _consider(path, rel, root, real_root, ignore, out, seen)


def _consider(
    path: bytes,
    rel: bytes,
    root: bytes,
    real_root: bytes,
    ignore: Sequence[str],
    out: Discovery,
    seen: set[bytes],
) -> None:
    pat = is_ignored(rel, ignore)
    if pat is not None:
        out.not_taken.append(NotTaken(path, rel, f"ignored by pattern {pat!r}", True))
        return
    try:
        st = os.lstat(path)
    except OSError as e:
        out.not_taken.append(NotTaken(path, rel, f"cannot stat: {e.strerror}", False))
        return
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        if not os.path.exists(target):
            out.not_taken.append(
                NotTaken(path, rel, f"symlink to nothing ({display(os.readlink(path))})", False)
            )
        elif not _within(target, real_root):
            out.not_taken.append(
                NotTaken(
                    path,
                    rel,
                    f"symlink points outside the ingested folder (to {display(target)}); "
                    "not followed",
                    False,
                )
            )
        else:
            out.not_taken.append(
                NotTaken(
                    path,
                    rel,
                    f"symlink to {display(os.path.relpath(target, real_root))} inside the "
                    "folder; the target is taken under its own name",
                    True,
                )
            )
        return
    if not stat.S_ISREG(st.st_mode):
        out.not_taken.append(
            NotTaken(path, rel, "not a regular file (device, FIFO or socket)", False)
        )
        return
    if path in seen:
        return
    seen.add(path)
    out.files.append(Candidate(path=path, rel=rel, root=root))
