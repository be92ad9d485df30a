"""Finding the files to ingest under the given paths, without ever losing one silently.

Walks with bytes names so names that are not valid UTF-8 survive exactly, through folder
descriptors (``openat``), never by path, iteratively and to a bounded depth. Symlinks are never
followed (nor into folders at all, so there are no loops); every path that is not taken is
returned with its reason. The station's own home, store and spool are refused outright.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from bwc.errors import InputError
from bwc.ingest.source import FileId, file_id, open_dir

if TYPE_CHECKING:
    from bwc.config.settings import Settings


@dataclass(frozen=True)
class Candidate:
    path: bytes  # absolute source path
    rel: bytes  # path relative to the root it was found under (the original relative path)
    root: bytes  # the real path of the folder ``rel`` is under
    # as listed: the identity of the file's folder (its open must find the same folder), its
    # size and mtime (None: not known, e.g. a daemon job after a restart)
    parent: FileId | None = None
    size: int | None = None
    mtime_ns: int | None = None


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


# A camera's files are 2-4 folders deep; an archive a dozen. Each level open during the walk
# holds a descriptor, so the depth is bounded well below the descriptor limit; a deeper
# folder is listed as an error, the rest is taken.
MAX_DEPTH = 64
# Linux's PATH_MAX, terminating NUL included: a longer path cannot be named to any tool
# (nor to `bwc verify` of an export), so it is listed, not taken.
PATH_MAX = 4096


@dataclass(frozen=True)
class Protected:
    """A path of the station's own (home, store, spool, keys, catalog) that must never be
    ingested, nor any folder holding it."""

    what: str
    path: bytes  # real path
    id: FileId | None  # None: not there (yet)


def protect(named: Iterable[tuple[str, str | Path]]) -> list[Protected]:
    out = []
    for what, p in named:
        real = os.path.realpath(os.fsencode(p))
        try:
            fid: FileId | None = file_id(os.stat(real))
        except OSError:
            fid = None
        out.append(Protected(what, real, fid))
    return out


def _refuse(path: bytes, prot: Protected, how: str, at: bytes | None = None) -> InputError:
    """``how``: "is", "is inside" or "contains"; ``at``: where it was found (else where it
    is configured)."""
    return InputError(
        f"{display(path)} {how} the station's {prot.what} ({display(at or prot.path)}); "
        "nothing was ingested",
        hint="ingest only camera folders, never bwc's own home, store or spool",
    )


def station_paths(settings: Settings) -> list[Protected]:
    """What of the station's own may never be ingested: its home, key folder, spool, local
    store and SQLite catalog (wherever the settings put them)."""
    named: list[tuple[str, str | Path]] = [
        ("home", settings.home),
        ("key folder", settings.keys_dir),
        ("spool", settings.spool_dir),
    ]
    store = urlparse(settings.store)
    if store.scheme == "file":
        named.append(("local store", unquote(store.path)))
    if settings.catalog.startswith("sqlite:///"):
        db = settings.catalog.removeprefix("sqlite:///").split("?", 1)[0]
        if db and db != ":memory:":
            named.append(("catalog", db))
    return protect(named)


def check_not_protected(path: bytes, protected: Sequence[Protected]) -> None:
    """InputError when ``path`` (a real path) is, is inside, or contains a protected path."""
    for prot in protected:
        if _within(path, prot.path):
            raise _refuse(path, prot, "is" if path == prot.path else "is inside")
        if _within(prot.path, path):
            raise _refuse(path, prot, "contains")


def discover(
    paths: Iterable[str | Path],
    ignore: Sequence[str],
    protected: Sequence[Protected] = (),
) -> Discovery:
    """Expand files and folders (recursively) into candidates. Missing paths, and paths that
    are or hold a ``protected`` one, are an input error up front, before anything is
    stored."""
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
        real = os.path.realpath(raw)
        check_not_protected(real, protected)
        if any(file_id(st) == prot.id for prot in protected):  # a bind mount or hard link
            raise _refuse(raw, next(p for p in protected if p.id == file_id(st)), "is")
        if stat.S_ISDIR(st.st_mode):
            roots.append((real, None))
        else:
            roots.append((raw, os.path.basename(raw)))

    out = Discovery(files=[], not_taken=[])
    seen: set[bytes] = set()
    ids = {p.id: p for p in protected if p.id is not None}
    for root, single in roots:
        if single is not None:
            _single(root, single, ignore, out, seen)
            continue
        _walk(root, ignore, out, seen, ids)
    return out


def _single(
    raw: bytes, name: bytes, ignore: Sequence[str], out: Discovery, seen: set[bytes]
) -> None:
    """A file named on the command line: taken under its own name, from its real folder."""
    folder = os.path.realpath(os.path.dirname(raw))
    try:
        fd = open_dir(folder)
    except OSError as e:
        out.not_taken.append(NotTaken(raw, name, f"cannot open its folder: {e.strerror}", False))
        return
    try:
        _consider(fd, raw, name, name, folder, folder, ignore, out, seen)
    finally:
        os.close(fd)


@dataclass
class _Level:
    fd: int
    rel: bytes  # b"" for the root
    names: list[bytes]
    next: int = 0


def _walk(
    root: bytes,
    ignore: Sequence[str],
    out: Discovery,
    seen: set[bytes],
    protected: dict[FileId, Protected],
) -> None:
    """Walk ``root`` depth-first, in name order, with one open descriptor per level (never by
    path: a folder swapped for a symlink during the walk is not followed), iteratively (no
    recursion limit), at most MAX_DEPTH levels deep."""
    visited: set[FileId] = set()

    def enter(fd: int, rel: bytes, path: bytes) -> _Level | None:
        try:
            key = file_id(os.fstat(fd))
            if key in protected:
                raise _refuse(root, protected[key], "is" if path == root else "contains", path)
            if key in visited:  # bind mounts can loop even without symlinks
                out.not_taken.append(NotTaken(path, rel, "folder loop, visited already", False))
                os.close(fd)
                return None
            visited.add(key)
            with os.scandir(fd) as it:
                names = sorted(os.fsencode(e.name) for e in it)
        except OSError as e:
            os.close(fd)
            out.not_taken.append(
                NotTaken(path, rel or b".", f"cannot list folder: {e.strerror}", False)
            )
            return None
        except BaseException:
            os.close(fd)
            raise
        return _Level(fd, rel, names)

    try:
        root_fd = open_dir(root)
    except OSError as e:
        out.not_taken.append(NotTaken(root, b".", f"cannot list folder: {e.strerror}", False))
        return
    first = enter(root_fd, b"", root)
    stack = [first] if first is not None else []
    try:
        while stack:
            level = stack[-1]
            if level.next >= len(level.names):
                os.close(stack.pop().fd)
                continue
            name = level.names[level.next]
            level.next += 1
            rel = os.path.join(level.rel, name) if level.rel else name
            path = os.path.join(root, rel)
            pat = is_ignored(rel, ignore)
            if pat is not None:
                out.not_taken.append(NotTaken(path, rel, f"ignored by pattern {pat!r}", True))
                continue
            try:
                st = os.stat(name, dir_fd=level.fd, follow_symlinks=False)
            except OSError as e:
                out.not_taken.append(NotTaken(path, rel, f"cannot stat: {e.strerror}", False))
                continue
            if not stat.S_ISDIR(st.st_mode):
                _consider(level.fd, path, name, rel, root, root, ignore, out, seen, st)
                continue
            if file_id(st) in protected:
                raise _refuse(root, protected[file_id(st)], "contains", path)
            if len(stack) > MAX_DEPTH:
                out.not_taken.append(
                    NotTaken(
                        path,
                        rel,
                        f"folder nested deeper than {MAX_DEPTH} levels; not walked (copy its "
                        "files out to a shallower folder to ingest them)",
                        False,
                    )
                )
                continue
            if len(path) >= PATH_MAX:
                out.not_taken.append(_too_long(path, rel))
                continue
            try:
                fd = open_dir(name, level.fd)
            except OSError as e:
                out.not_taken.append(
                    NotTaken(path, rel, f"cannot open folder: {e.strerror}", False)
                )
                continue
            child = enter(fd, rel, path)
            if child is not None:
                stack.append(child)
    finally:
        for level in stack:
            os.close(level.fd)


def _too_long(path: bytes, rel: bytes) -> NotTaken:
    return NotTaken(
        path,
        rel,
        f"path longer than {PATH_MAX - 1} bytes; not taken (copy it to a shorter path)",
        False,
    )


def _consider(
    dir_fd: int,
    path: bytes,
    name: bytes,
    rel: bytes,
    root: bytes,
    real_root: bytes,
    ignore: Sequence[str],
    out: Discovery,
    seen: set[bytes],
    st: os.stat_result | None = None,
) -> None:
    pat = is_ignored(rel, ignore)
    if pat is not None:
        out.not_taken.append(NotTaken(path, rel, f"ignored by pattern {pat!r}", True))
        return
    try:
        if st is None:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        parent = file_id(os.fstat(dir_fd))
    except OSError as e:
        out.not_taken.append(NotTaken(path, rel, f"cannot stat: {e.strerror}", False))
        return
    if stat.S_ISLNK(st.st_mode):
        out.not_taken.append(_symlink(path, rel, real_root))
        return
    if not stat.S_ISREG(st.st_mode):
        out.not_taken.append(
            NotTaken(path, rel, "not a regular file (device, FIFO or socket)", False)
        )
        return
    if len(path) >= PATH_MAX:
        out.not_taken.append(_too_long(path, rel))
        return
    if path in seen:
        return
    seen.add(path)
    out.files.append(
        Candidate(
            path=path,
            rel=rel,
            root=root,
            parent=parent,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
        )
    )


def _symlink(path: bytes, rel: bytes, real_root: bytes) -> NotTaken:
    """A symlink is never followed; where it points only decides the reason given."""
    target = os.path.realpath(path)
    if not os.path.exists(target):
        try:
            to = display(os.readlink(path))
        except OSError:
            to = "?"
        return NotTaken(path, rel, f"symlink to nothing ({to})", False)
    if not _within(target, real_root):
        return NotTaken(
            path,
            rel,
            f"symlink points outside the ingested folder (to {display(target)}); not followed",
            False,
        )
    return NotTaken(
        path,
        rel,
        f"symlink to {display(os.path.relpath(target, real_root))} inside the folder; the "
        "target is taken under its own name",
        True,
    )
