"""discover(): which files are taken, which are not and why; never a silent drop."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bwc.config.settings import _DEFAULT_IGNORE
from bwc.errors import InputError
from bwc.ingest.discover import MAX_DEPTH, Candidate, discover, display, is_ignored, protect

pytestmark = pytest.mark.unit

IGNORE = list(_DEFAULT_IGNORE)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rels(files: list[Candidate]) -> list[bytes]:
    return [c.rel for c in files]


def by_rel(not_taken: list[Any]) -> dict[bytes, Any]:
    return {n.rel: n for n in not_taken}


@pytest.fixture
def no_hang() -> Iterator[None]:
    def _alarm(_signum: int, _frame: Any) -> None:
        raise TimeoutError("discover did not finish (loop followed?)")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------- ignore patterns


def test_ignore_patterns_are_counted_and_listed(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    touch(root / "DCIM" / "CLIP0001.MP4")
    touch(root / "GPS.csv")
    touch(root / "System Volume Information" / "IndexerVolumeGuid")
    touch(root / "System Volume Information" / "WPSettings.dat")
    touch(root / "$RECYCLE.BIN" / "S-1-5" / "desktop.ini")
    touch(root / "DCIM" / "._CLIP0001.MP4")
    touch(root / "DCIM" / "Thumbs.db")
    touch(root / ".DS_Store")
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"DCIM/CLIP0001.MP4", b"GPS.csv"]
    ignored = by_rel(d.ignored)
    # An ignored folder is one entry (its contents are not walked), each file is one entry.
    assert set(ignored) == {
        b"System Volume Information",
        b"$RECYCLE.BIN",
        b"DCIM/._CLIP0001.MP4",
        b"DCIM/Thumbs.db",
        b".DS_Store",
    }
    assert all(n.ignored for n in d.ignored)
    assert "'._*'" in ignored[b"DCIM/._CLIP0001.MP4"].reason
    assert "System Volume Information" in ignored[b"System Volume Information"].reason
    assert d.errors == []


def test_everything_found_is_accounted_for(tmp_path: Path) -> None:
    """Invariant 2: every regular file under the root is either a candidate or inside a listed
    not-taken entry."""
    root = tmp_path / "cam"
    names = ["a.MP4", "b/c.JPG", "b/Thumbs.db", "._x", "System Volume Information/y", "d/e/f"]
    for n in names:
        touch(root / n)
    d = discover([root], IGNORE)
    taken = {c.rel for c in d.files}
    listed = {n.rel for n in d.not_taken}
    for n in names:
        rel = n.encode()
        assert rel in taken or any(rel == x or rel.startswith(x + b"/") for x in listed), n


def test_no_patterns_takes_everything(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    touch(root / "Thumbs.db")
    touch(root / "System Volume Information" / "x")
    d = discover([root], [])
    assert rels(d.files) == [b"System Volume Information/x", b"Thumbs.db"]
    assert d.not_taken == []


def test_patterns_match_whole_components_case_sensitively(tmp_path: Path) -> None:
    assert is_ignored(b"DCIM/Thumbs.db", ["Thumbs.db"]) == "Thumbs.db"
    assert is_ignored(b"DCIM/thumbs.db", ["Thumbs.db"]) is None
    assert is_ignored(b"MyThumbs.db", ["Thumbs.db"]) is None
    assert is_ignored(b"a/._b/c", ["._*"]) == "._*"
    assert is_ignored(b"a/b._c", ["._*"]) is None
    assert is_ignored(b"\xff/._x", ["._*"]) == "._*"


def test_single_ignored_file_argument_is_listed(tmp_path: Path) -> None:
    f = touch(tmp_path / "cam" / "Thumbs.db")
    d = discover([f], IGNORE)
    assert d.files == []
    assert [n.rel for n in d.ignored] == [b"Thumbs.db"]


# ---------------------------------------------------------------------------- order, arguments


def test_sorted_deterministic_order(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    for n in ["b.MP4", "a/z.MP4", "B.MP4", "a.MP4", "a/b/c.MP4", "A/y.MP4", "_.MP4", "a/a.MP4"]:
        touch(root / n)
    first = discover([root], IGNORE)
    # depth first, entries of each folder sorted by their bytes
    assert rels(first.files) == [
        b"A/y.MP4",
        b"B.MP4",
        b"_.MP4",
        b"a/a.MP4",
        b"a/b/c.MP4",
        b"a/z.MP4",
        b"a.MP4",
        b"b.MP4",
    ]
    again = discover([root], IGNORE)
    assert again == first


def test_single_file_argument(tmp_path: Path) -> None:
    f = touch(tmp_path / "cam" / "DCIM" / "CLIP.MP4")
    touch(tmp_path / "cam" / "DCIM" / "OTHER.MP4")
    d = discover([f], IGNORE)
    [c] = d.files
    assert (c.path, c.rel, c.root) == (os.fsencode(f), b"CLIP.MP4", os.fsencode(f.parent))
    st = f.stat()
    assert (c.size, c.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert c.parent == (f.parent.stat().st_dev, f.parent.stat().st_ino)
    assert d.not_taken == []


def test_relative_arguments_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path / "cam" / "x" / "CLIP.MP4")
    monkeypatch.chdir(tmp_path)
    d = discover(["cam/x/../x/"], IGNORE)
    assert [c.path for c in d.files] == [os.fsencode(tmp_path / "cam" / "x" / "CLIP.MP4")]
    assert rels(d.files) == [b"CLIP.MP4"]
    assert os.path.isabs(d.files[0].root)


def test_same_file_named_twice_is_one_candidate(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    f = touch(root / "CLIP.MP4")
    d = discover([root, f, root], IGNORE)
    assert rels(d.files) == [b"CLIP.MP4"]


def test_several_roots_keep_their_own_relative_paths(tmp_path: Path) -> None:
    touch(tmp_path / "cam1" / "DCIM" / "A.MP4")
    touch(tmp_path / "cam2" / "DCIM" / "A.MP4")
    d = discover([tmp_path / "cam2", tmp_path / "cam1"], IGNORE)
    assert rels(d.files) == [b"DCIM/A.MP4", b"DCIM/A.MP4"]
    assert [c.root for c in d.files] == [
        os.fsencode(tmp_path / "cam2"),
        os.fsencode(tmp_path / "cam1"),
    ]


def test_missing_path_is_an_input_error_up_front(tmp_path: Path) -> None:
    touch(tmp_path / "cam" / "A.MP4")
    with pytest.raises(InputError, match="no such file or folder") as info:
        discover([tmp_path / "cam", tmp_path / "gone"], IGNORE)
    assert info.value.exit_code == 6
    assert "gone" in str(info.value)


def test_non_utf8_names_survive_as_bytes(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path / "cam")
    os.makedirs(root + b"/\xe6\x89\xa7\xff")
    with open(root + b"/\xe6\x89\xa7\xff/\x80.MP4", "wb") as f:
        f.write(b"x")
    d = discover([os.fsdecode(root)], IGNORE)
    assert rels(d.files) == [b"\xe6\x89\xa7\xff/\x80.MP4"]
    assert d.files[0].path == root + b"/\xe6\x89\xa7\xff/\x80.MP4"
    assert display(d.files[0].rel) == "执\\xff/\\x80.MP4"


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "cam").mkdir()
    d = discover([tmp_path / "cam"], IGNORE)
    assert d.files == []
    assert d.not_taken == []


def test_fifo_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    touch(root / "A.MP4")
    os.mkfifo(root / "pipe")
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"A.MP4"]
    [err] = d.errors
    assert err.rel == b"pipe"
    assert "not a regular file" in err.reason


def test_unlistable_folder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cam"
    touch(root / "A.MP4")
    touch(root / "locked" / "B.MP4")
    real_scandir = os.scandir
    locked = (root / "locked").stat().st_ino

    def fake_scandir(fd: Any) -> Any:  # the walk lists folders by descriptor
        if os.fstat(fd).st_ino == locked:
            raise PermissionError(13, "Permission denied")
        return real_scandir(fd)

    monkeypatch.setattr("bwc.ingest.discover.os.scandir", fake_scandir)
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"A.MP4"]
    [err] = d.errors
    assert err.rel == b"locked"
    assert "cannot list folder" in err.reason
    assert "Permission denied" in err.reason


# ---------------------------------------------------------------------------- symlinks


def test_symlink_to_file_inside_is_listed_not_taken_twice(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    touch(root / "DCIM" / "A.MP4")
    os.symlink("DCIM/A.MP4", root / "LINK.MP4")
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"DCIM/A.MP4"]
    [link] = d.not_taken
    assert link.rel == b"LINK.MP4"
    assert link.ignored  # not an error: the target itself is taken
    assert "DCIM/A.MP4" in link.reason


@pytest.mark.parametrize("kind", ["file", "folder", "relative", "chain"])
def test_symlink_out_of_the_root_is_an_error(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "cam"
    touch(root / "A.MP4")
    secret = touch(tmp_path / "outside" / "secret.txt")
    if kind == "file":
        os.symlink(secret, root / "evil")
    elif kind == "folder":
        os.symlink(secret.parent, root / "evil")
    elif kind == "relative":
        os.symlink("../outside/secret.txt", root / "evil")
    else:  # a link inside the root pointing to a link that points out
        os.symlink(secret, root / "hop")
        os.symlink("hop", root / "evil")
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"A.MP4"]
    errors = by_rel(d.errors)
    assert b"evil" in errors
    assert "outside" in errors[b"evil"].reason
    assert os.fsencode(secret) not in [c.path for c in d.files]


def test_symlink_given_as_the_argument_is_not_followed_out(tmp_path: Path) -> None:
    secret = touch(tmp_path / "outside" / "secret.txt")
    (tmp_path / "cam").mkdir()
    os.symlink(secret, tmp_path / "cam" / "evil")
    d = discover([tmp_path / "cam" / "evil"], IGNORE)
    assert d.files == []
    assert [n.rel for n in d.errors] == [b"evil"]


@pytest.mark.parametrize("target", [".", "..", "../..", "ROOT"])
def test_folder_loops_are_not_followed(tmp_path: Path, no_hang: None, target: str) -> None:
    root = tmp_path / "cam"
    touch(root / "DCIM" / "100MEDIA" / "A.MP4")
    os.symlink(root if target == "ROOT" else target, root / "DCIM" / "100MEDIA" / "loop")
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"DCIM/100MEDIA/A.MP4"]
    [loop] = d.not_taken
    assert loop.rel == b"DCIM/100MEDIA/loop"
    assert "symlink" in loop.reason


def test_symlink_to_folder_inside_is_not_walked(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    touch(root / "DCIM" / "A.MP4")
    os.symlink("DCIM", root / "ALIAS")
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"DCIM/A.MP4"]
    assert [n.rel for n in d.not_taken] == [b"ALIAS"]


def test_root_itself_reached_through_a_symlink(tmp_path: Path) -> None:
    """The dock path may itself be a symlink (e.g. /media/by-serial/X -> /media/sdb1): the
    real folder is walked, and links inside pointing into it count as inside."""
    real = tmp_path / "mnt" / "sdb1"
    touch(real / "A.MP4")
    os.symlink("A.MP4", real / "LINK")
    (tmp_path / "by-serial").mkdir()
    os.symlink(real, tmp_path / "by-serial" / "CAM7")
    d = discover([str(tmp_path / "by-serial" / "CAM7") + "/"], IGNORE)
    assert rels(d.files) == [b"A.MP4"]
    assert d.errors == []


def test_dangling_symlink_is_an_error(tmp_path: Path) -> None:
    """A link to nothing takes nothing: it must be an error, not 'taken under its own name'."""
    root = tmp_path / "cam"
    touch(root / "A.MP4")
    os.symlink("GONE.MP4", root / "DANGLING.MP4")
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"A.MP4"]
    assert [n.rel for n in d.errors] == [b"DANGLING.MP4"]


# ---------------------------------------------------------------------------- issue 12


def test_a_path_longer_than_path_max_is_listed_not_taken(tmp_path: Path) -> None:
    """Within the depth bound but past PATH_MAX: listed with its reason, the rest taken."""
    root = tmp_path / "cam"
    touch(root / "A.MP4")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(25):  # 25 x 201 bytes: past 4096 well within the depth bound
        os.mkdir("n" * 200, dir_fd=fd)
        nxt = os.open("n" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(os.open("B.MP4", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"A.MP4"]
    [err] = d.errors
    assert "longer than 4095 bytes" in err.reason
    assert len(err.path) >= 4096


def test_the_walk_is_bounded_in_depth_not_by_recursion(tmp_path: Path) -> None:
    root = tmp_path / "cam"
    touch(root / "A.MP4")
    deep = root
    for _ in range(MAX_DEPTH + 5):
        deep = deep / "d"
    touch(deep / "B.MP4")
    touch(root / "d" / "C.MP4")
    d = discover([root], IGNORE)
    assert rels(d.files) == [b"A.MP4", b"d/C.MP4"]
    [err] = d.errors
    assert err.rel == b"/".join([b"d"] * (MAX_DEPTH + 1))
    assert f"deeper than {MAX_DEPTH} levels" in err.reason


def test_candidates_carry_what_the_walk_saw(tmp_path: Path) -> None:
    f = touch(tmp_path / "cam" / "DCIM" / "A.MP4", b"abc")
    [c] = discover([tmp_path / "cam"], IGNORE).files
    st, parent = f.stat(), f.parent.stat()
    assert (c.size, c.mtime_ns, c.parent) == (3, st.st_mtime_ns, (parent.st_dev, parent.st_ino))


@pytest.mark.parametrize("named", ["home", "inside", "holding"])
def test_protected_paths_are_refused_every_way(tmp_path: Path, named: str) -> None:
    home = tmp_path / "station" / ".bwc"
    touch(home / "keys" / "k.pem")
    touch(tmp_path / "station" / "CLIP.MP4")
    prot = protect([("home", home)])
    target = {"home": home, "inside": home / "keys" / "k.pem", "holding": tmp_path}[named]
    with pytest.raises(InputError, match="the station's home"):
        discover([target], IGNORE, prot)


def test_a_protected_folder_reached_another_way_is_refused(tmp_path: Path) -> None:
    """The same folder under another name (here a symlinked home; a bind mount alike) is
    known by its identity during the walk."""
    home = tmp_path / "real-home"
    touch(home / "bwc.toml")
    cam = tmp_path / "cam"
    touch(cam / "A.MP4")
    prot = protect([("home", home)])
    os.rename(home, cam / "inner")  # the home moved under the camera after it was resolved
    with pytest.raises(InputError, match="contains the station's home"):
        discover([cam], IGNORE, prot)
