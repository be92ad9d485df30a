"""Bad input gets a clear error, never a traceback, and never damages stored data
(DESIGN.md invariants 2 and 8).

Every failing case checks the exit code (bwc/errors.py), exactly one ``bwc: error:`` line on
stderr (the last one) without a traceback, and that the catalog rows and store objects are
exactly what they were before (or, where other files are still ingested, that only those
were added).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bwc.evidence.manifest import decode_path
from tests.conftest import Result

pytestmark = pytest.mark.integration

TABLES = ("item", "event", "checkpoint")
Runner = Callable[..., Result]


# ---------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, int] | None
    objects: frozenset[tuple[str, int]]

    def items(self) -> int:
        assert self.rows is not None
        return self.rows["item"]


def snapshot(home: Path) -> Snapshot:
    """Row counts of the catalog tables and the files (with sizes) in the local store."""
    db = home / "catalog.sqlite"
    rows: dict[str, int] | None = None
    if db.exists():
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        finally:
            con.close()
    objects_dir = home / "store" / "objects"
    objects = frozenset(
        (str(p.relative_to(objects_dir)), p.stat().st_size)
        for p in (objects_dir.rglob("*") if objects_dir.is_dir() else [])
        if p.is_file()
    )
    return Snapshot(rows, objects)


def item_shas(home: Path) -> set[str]:
    con = sqlite3.connect(f"file:{home / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        return {r[0] for r in con.execute("SELECT sha256 FROM item")}
    finally:
        con.close()


def event_kinds(home: Path, sha: str) -> list[str]:
    con = sqlite3.connect(f"file:{home / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        return [
            r[0]
            for r in con.execute(
                "SELECT kind FROM event WHERE item_sha256 = ? ORDER BY idx", (sha,)
            )
        ]
    finally:
        con.close()


def assert_clean_error(r: Result, code: int, *needles: str, only_line: bool = False) -> str:
    """Exit ``code``; exactly one ``bwc: error:`` line, the last on stderr, containing every
    needle; no traceback anywhere. ``only_line``: stderr holds nothing else."""
    assert r.code == code, f"exit {r.code}, expected {code}\nout: {r.out}\nerr: {r.err}"
    assert "Traceback" not in r.err, r.err
    assert "Traceback" not in r.out, r.out
    lines = r.err.splitlines()
    errors = [ln for ln in lines if ln.startswith("bwc: error:")]
    assert len(errors) == 1, r.err
    assert lines[-1] == errors[0], r.err
    if only_line:
        assert lines == errors, r.err
    for n in needles:
        assert n in errors[0], f"{n!r} not in {errors[0]!r}"
    return errors[0]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ingest_json(bwc: Runner, *args: Any) -> tuple[Result, dict[str, Any]]:
    r = bwc("ingest", *args, "--json")
    assert "Traceback" not in r.err, r.err
    return r, json.loads(r.out)


def result_for(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [x for x in data["results"] if x["path"].endswith(name)]
    assert len(found) == 1, (name, data["results"])
    return found[0]


@pytest.fixture
def dock(tmp_path: Path) -> Path:
    """A small camera folder with two distinct text files (quick to probe)."""
    d = tmp_path / "dock" / "CAM01"
    d.mkdir(parents=True)
    (d / "GPS0001.csv").write_text("time,lat,lon\n2026-10-15T01:31:00Z,31.23,121.47\n")
    (d / "NOTE0001.TXT").write_text("officer note\n")
    return d


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail (instead of hanging forever) when a walk does not terminate."""

    def _alarm(_signum: int, _frame: Any) -> None:
        raise TimeoutError("ingest did not finish in 30 s (loop followed?)")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------------------- paths


def test_missing_path(bwc: Runner, home: Path, tmp_path: Path) -> None:
    before = snapshot(home)
    r = bwc("ingest", tmp_path / "no-such-camera")
    assert_clean_error(r, 6, "no-such-camera", only_line=True)
    assert snapshot(home) == before


def test_missing_path_among_good_ones_stores_nothing(bwc: Runner, home: Path, dock: Path) -> None:
    """A missing path is an input error up front: the good paths are not half-ingested."""
    before = snapshot(home)
    r = bwc("ingest", dock, dock.parent / "GONE")
    assert_clean_error(r, 6, "GONE", only_line=True)
    assert snapshot(home) == before


def test_unopenable_file_is_reported_and_the_rest_ingested(
    bwc: Runner, home: Path, dock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = dock / "LOCKED.MP4"
    bad.write_bytes(b"cannot be read")
    bad_b = os.fsencode(bad)
    real_open = os.open

    def fake_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: Any = None) -> int:
        # a source is opened by its name under its folder's descriptor
        if dir_fd is not None and os.fsencode(path) == os.path.basename(bad_b):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(bad_b))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", fake_open)
    before = snapshot(home)
    r, data = ingest_json(bwc, dock)
    assert_clean_error(r, 6, "1 file(s) were not ingested", only_line=True)
    assert data["ingested"] == 2
    assert data["errors"] == 1
    res = result_for(data, "LOCKED.MP4")
    assert res["status"] == "error"
    assert "Permission denied" in res["reason"]
    after = snapshot(home)
    assert after.items() == before.items() + 2
    assert sha(b"cannot be read") not in item_shas(home)
    assert not any(sha(b"cannot be read") in name for name, _ in after.objects)


def test_unopenable_file_is_listed_on_stderr(
    bwc: Runner, home: Path, dock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = dock / "LOCKED.MP4"
    bad.write_bytes(b"cannot be read")
    bad_b = os.fsencode(bad)
    real_open = os.open

    def fake_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: Any = None) -> int:
        # a source is opened by its name under its folder's descriptor
        if dir_fd is not None and os.fsencode(path) == os.path.basename(bad_b):
            raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(bad_b))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", fake_open)
    r = bwc("ingest", dock)
    assert_clean_error(r, 6)
    assert any("LOCKED.MP4" in ln and "Permission denied" in ln for ln in r.err.splitlines())
    assert "2 ingested, 0 seen again, 0 ignored, 1 errors" in r.out


# ---------------------------------------------------------------------------- symlinks


@pytest.mark.parametrize("target", ["..", "ROOT", "."])
def test_directory_loop_is_listed_not_followed(
    bwc: Runner, home: Path, dock: Path, no_hang: None, target: str
) -> None:
    sub = dock / "DCIM"
    sub.mkdir()
    (sub / "CLIP.bin").write_bytes(b"clip bytes")
    os.symlink(dock if target == "ROOT" else target, sub / "loop")
    before = snapshot(home)
    r, data = ingest_json(bwc, dock)
    assert r.code == 0, r.err
    assert data["ingested"] == 3  # each file once, none again through the loop
    assert snapshot(home).items() == before.items() + 3
    assert data["seen_again"] == 0
    loop = result_for(data, "DCIM/loop")
    assert loop["status"] in ("ignored", "error")
    assert "symlink" in loop["reason"]
    assert not any("loop/" in x["path"] for x in data["results"])


def test_symlink_to_parent_of_root_is_not_followed(
    bwc: Runner, home: Path, dock: Path, no_hang: None
) -> None:
    """A link up out of the ingested folder is outside it: reported, never walked."""
    os.symlink(dock.parent, dock / "up")
    before = snapshot(home)
    r, data = ingest_json(bwc, dock)
    assert_clean_error(r, 6, only_line=True)
    assert data["ingested"] == 2
    up = result_for(data, "CAM01/up")
    assert up["status"] == "error"
    assert "outside" in up["reason"]
    assert snapshot(home).items() == before.items() + 2


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_symlink_outside_root_is_reported_not_ingested(
    bwc: Runner, home: Path, dock: Path, tmp_path: Path, kind: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.MP4"
    secret.write_bytes(b"not from this camera")
    os.symlink(secret if kind == "file" else outside, dock / "evil.MP4")
    before = snapshot(home)
    r, data = ingest_json(bwc, dock)
    assert_clean_error(r, 6, "1 file(s) were not ingested", only_line=True)
    evil = result_for(data, "evil.MP4")
    assert evil["status"] == "error"
    assert "outside" in evil["reason"]
    assert data["ingested"] == 2
    assert sha(b"not from this camera") not in item_shas(home)
    assert snapshot(home).items() == before.items() + 2
    assert secret.read_bytes() == b"not from this camera"


def test_symlink_to_file_inside_is_not_an_error(bwc: Runner, home: Path, dock: Path) -> None:
    os.symlink("GPS0001.csv", dock / "LINK.csv")
    r, data = ingest_json(bwc, dock)
    assert r.code == 0, r.err
    assert data["errors"] == 0
    assert data["ingested"] == 2  # the target once, under its own name
    assert data["seen_again"] == 0
    link = result_for(data, "LINK.csv")
    assert link["status"] == "ignored"
    assert "symlink" in link["reason"]


# ---------------------------------------------------------------------------- odd files


def test_zero_byte_file_is_evidence(bwc: Runner, home: Path, dock: Path) -> None:
    (dock / "EMPTY.MP4").write_bytes(b"")
    r, data = ingest_json(bwc, dock)
    assert r.code == 0, r.err
    res = result_for(data, "EMPTY.MP4")
    assert res["status"] == "ingested"
    assert res["size"] == 0
    assert res["sha256"] == sha(b"")
    assert "zero-byte" in res["flags"]
    assert "not-media" not in res["flags"]
    assert sha(b"") in item_shas(home)


def test_non_utf8_name_is_recorded_losslessly(bwc: Runner, home: Path, dock: Path) -> None:
    raw_name = b"CLIP_\xff\xfe_\xe6\x89.MP4"  # invalid UTF-8 (incl. a truncated sequence)
    fd = os.open(os.fsencode(dock) + b"/" + raw_name, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"bytes under a bad name")
    os.close(fd)
    r, data = ingest_json(bwc, dock)
    assert r.code == 0, r.err
    assert data["errors"] == 0
    [res] = [x for x in data["results"] if x["path"].endswith(".MP4")]
    assert res["status"] == "ingested"
    assert "non-utf8-name" in res["flags"]
    r = bwc("show", res["sha256"], "--json")
    assert r.code == 0, r.out + r.err
    manifest = json.loads(json.loads(r.out)["manifest"])
    assert manifest["path_encoding"] == "percent-encoded-bytes"
    assert manifest["path"].isascii()
    assert "non-utf8-name" in manifest["flags"]
    assert decode_path(manifest["path"], manifest["path_encoding"]) == raw_name


def test_non_utf8_name_given_as_a_single_file(bwc: Runner, home: Path, dock: Path) -> None:
    raw_name = b"\x80\x81.bin"
    raw_path = os.fsencode(dock) + b"/" + raw_name
    fd = os.open(raw_path, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"single bad name")
    os.close(fd)
    r, data = ingest_json(bwc, os.fsdecode(raw_path))
    assert r.code == 0, r.err
    assert data["ingested"] == 1
    assert "non-utf8-name" in data["results"][0]["flags"]


def test_corrupt_mp4_is_evidence_flagged_not_media(bwc: Runner, home: Path, dock: Path) -> None:
    junk = random.Random(8).randbytes(64 * 1024)
    (dock / "BROKEN.MP4").write_bytes(junk)
    r, data = ingest_json(bwc, dock)
    assert r.code == 0, r.err
    res = result_for(data, "BROKEN.MP4")
    assert res["status"] == "ingested"
    assert res["sha256"] == sha(junk)
    assert "not-media" in res["flags"]


def test_same_bytes_twice_in_one_run(bwc: Runner, home: Path, dock: Path) -> None:
    data_bytes = random.Random(3).randbytes(4096)
    (dock / "A.MP4").write_bytes(data_bytes)
    (dock / "B.MP4").write_bytes(data_bytes)
    before = snapshot(home)
    r, data = ingest_json(bwc, dock)
    assert r.code == 0, r.err
    assert result_for(data, "A.MP4")["status"] == "ingested"
    assert result_for(data, "B.MP4")["status"] == "seen-again"
    assert data["ingested"] == 3
    assert data["seen_again"] == 1
    assert snapshot(home).items() == before.items() + 3
    assert event_kinds(home, sha(data_bytes)) == ["ingested", "seen-again"]


@pytest.mark.parametrize("name", ["REC[/CLIP].MP4", "[/].MP4", "[bold]x.csv", "[red]y[/red].csv"])
def test_name_with_console_markup_is_printed_verbatim(
    bwc: Runner, home: Path, dock: Path, name: str
) -> None:
    """Names come from the camera: printed as they are, never interpreted as console markup
    (a '[' folder holding a ']...' file prints as '[/...]', a closing tag)."""
    path = dock / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"markup " + name.encode())
    r = bwc("ingest", dock)
    assert r.code == 0, r.out + r.err
    assert "Traceback" not in r.err
    assert name in r.out
    assert "3 ingested" in r.out


@pytest.mark.parametrize("cmd", ["list", "show"])
def test_stored_name_with_console_markup_is_shown_verbatim(
    bwc: Runner, home: Path, dock: Path, cmd: str
) -> None:
    path = dock / "REC[/CLIP].MP4"
    path.parent.mkdir()
    path.write_bytes(b"odd name")
    r, _data = ingest_json(bwc, dock)
    assert r.code == 0, r.err
    r = bwc(cmd, *([sha(b"odd name")] if cmd == "show" else []))
    assert r.code == 0, r.out + r.err
    assert "Traceback" not in r.err
    # `list` shows the file's name (the last part of its path), `show` the whole path
    assert ("CLIP].MP4" if cmd == "list" else "REC[/CLIP].MP4") in r.out


def test_missing_path_with_markup_in_its_name(bwc: Runner, home: Path, tmp_path: Path) -> None:
    before = snapshot(home)
    r = bwc("ingest", tmp_path / "gone[/x]")
    assert_clean_error(r, 6, "gone[/x]", only_line=True)
    assert snapshot(home) == before


# ---------------------------------------------------------------------------- ids


@pytest.mark.parametrize("cmd", ["show", "verify"])
def test_unknown_id(bwc: Runner, home: Path, cmd: str) -> None:
    before = snapshot(home)
    r = bwc(cmd, "0123456789abcdef")
    assert_clean_error(r, 3, "0123456789abcdef", only_line=True)
    assert snapshot(home) == before


@pytest.mark.parametrize("bad", ["zzzzzzzzzz", "0123456", "0123-4567-89ab", "a" * 65, ""])
@pytest.mark.parametrize("cmd", ["show", "verify"])
def test_malformed_id(bwc: Runner, home: Path, cmd: str, bad: str) -> None:
    before = snapshot(home)
    r = bwc(cmd, bad)
    assert_clean_error(r, 2, "not an evidence id", only_line=True)
    assert snapshot(home) == before


def test_verify_without_ids_or_all(bwc: Runner, home: Path) -> None:
    before = snapshot(home)
    r = bwc("verify")
    assert_clean_error(r, 2, "--all", only_line=True)
    assert snapshot(home) == before


def test_traceback_only_with_verbose(bwc: Runner, home: Path) -> None:
    before = snapshot(home)
    r = bwc("show", "zzzzzzzzzz")
    assert_clean_error(r, 2, only_line=True)
    r = bwc("-v", "show", "zzzzzzzzzz")
    assert r.code == 2
    assert "Traceback" in r.err
    assert r.err.splitlines()[-1].startswith("bwc: error:")
    assert snapshot(home) == before


# ---------------------------------------------------------------------------- home, config


@pytest.mark.parametrize(
    "cmd", [("list",), ("verify", "--all"), ("ingest", "."), ("show", "a" * 8)]
)
def test_missing_home(bwc: Runner, tmp_path: Path, cmd: tuple[str, ...]) -> None:
    r = bwc(*cmd)
    assert_clean_error(r, 4, "bwc init", only_line=True)
    assert not (tmp_path / "home").exists()


@pytest.fixture
def protected_home(bwc: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BWC_KEY_PASSPHRASE", "correct horse")
    r = bwc("init", "--station-id", "st-enc")
    assert r.code == 0, r.err
    return tmp_path / "home"


def test_wrong_passphrase(
    bwc: Runner, protected_home: Path, dock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(protected_home)
    monkeypatch.setenv("BWC_KEY_PASSPHRASE", "wrong battery")
    r = bwc("ingest", dock)
    assert_clean_error(r, 5, "passphrase", only_line=True)
    assert "correct horse" not in r.err + r.out
    assert "wrong battery" not in r.err + r.out
    assert snapshot(protected_home) == before
    assert not any((protected_home / "spool").iterdir())


def test_encrypted_key_without_passphrase(
    bwc: Runner, protected_home: Path, dock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(protected_home)
    monkeypatch.delenv("BWC_KEY_PASSPHRASE")
    for cmd in (("ingest", dock), ("log", "checkpoint"), ("verify", "--all")):
        r = bwc(*cmd)
        assert_clean_error(r, 5, "BWC_KEY_PASSPHRASE", only_line=True)
    assert snapshot(protected_home) == before


def _set_in_config(home: Path, key: str, value: str) -> None:
    cfg = home / "bwc.toml"
    lines = [ln for ln in cfg.read_text().splitlines() if not ln.startswith(f"{key} =")]
    cfg.write_text("\n".join([f"{key} = {value}", *lines]) + "\n")


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("timezone", '"Mars/Base"', "Mars/Base"),
        ("verify_workers", "-3", "-3"),
        ("station_id", '"no spaces allowed"', "no spaces allowed"),
        ("store", '"ftp://evidence.example/bwc"', "ftp://"),
        ("catalog", '"mysql://db/bwc"', "mysql://"),
        ("colour", '"blue"', "unknown setting"),
    ],
)
def test_invalid_setting_in_config(
    bwc: Runner, home: Path, dock: Path, key: str, value: str, needle: str
) -> None:
    _set_in_config(home, key, value)
    before = snapshot(home)
    for cmd in (("list",), ("ingest", dock)):
        r = bwc(*cmd)
        assert_clean_error(r, 4, f"{key}:", needle, only_line=True)
    assert snapshot(home) == before


def test_config_that_is_not_toml(bwc: Runner, home: Path) -> None:
    (home / "bwc.toml").write_text('station_id = "st-test"\ntimezone = \n')
    before = snapshot(home)
    r = bwc("list")
    assert_clean_error(r, 4, "bwc.toml", only_line=True)
    assert snapshot(home) == before


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("BWC_VERIFY_WORKERS", "-1", "verify_workers:"),
        ("BWC_VERIFY_WORKERS", "many", "verify_workers:"),
        ("BWC_TIMEZONE", "Mars/Base", "timezone:"),
        ("BWC_STORE", "gopher://evidence/bwc", "store:"),
        ("BWC_STORE", "file://relative/store", "store:"),
    ],
)
def test_invalid_setting_in_env(
    bwc: Runner,
    home: Path,
    dock: Path,
    monkeypatch: pytest.MonkeyPatch,
    var: str,
    value: str,
    needle: str,
) -> None:
    before = snapshot(home)
    monkeypatch.setenv(var, value)
    for cmd in (("verify", "--all"), ("ingest", dock)):
        r = bwc(*cmd)
        assert_clean_error(r, 4, needle, value, only_line=True)
    assert snapshot(home) == before


def test_store_folder_missing(
    bwc: Runner, home: Path, dock: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A well-formed store URL whose folder does not exist: a store error, nothing written."""
    monkeypatch.setenv("BWC_STORE", (tmp_path / "unmounted" / "store").as_uri())
    before = snapshot(home)
    r = bwc("ingest", dock)
    assert_clean_error(r, 7, "unmounted", only_line=True)
    assert snapshot(home) == before
    assert not (tmp_path / "unmounted").exists()


# ---------------------------------------------------------------------------- catalog


def _file_state(home: Path) -> tuple[bytes, set[tuple[str, int]]]:
    """For catalogs a snapshot cannot read: the catalog's bytes and the store's files."""
    objects = home / "store" / "objects"
    files = {(str(p.relative_to(objects)), p.stat().st_size) for p in objects.rglob("*")}
    return (home / "catalog.sqlite").read_bytes(), files


def test_catalog_that_is_not_a_database(bwc: Runner, home: Path) -> None:
    cat = home / "catalog.sqlite"
    for extra in ("-wal", "-shm"):
        cat.with_name(cat.name + extra).unlink(missing_ok=True)
    cat.write_bytes(random.Random(5).randbytes(4096))
    before = _file_state(home)
    for cmd in (("list",), ("verify", "--all")):
        r = bwc(*cmd)
        assert_clean_error(r, 8, "catalog", only_line=True)
    assert _file_state(home) == before


def test_catalog_missing_a_table(bwc: Runner, home: Path) -> None:
    """A damaged catalog is a catalog error (exit 8) in one line, not SQL text over several."""
    con = sqlite3.connect(home / "catalog.sqlite")
    con.execute("DROP TABLE checkpoint")
    con.commit()
    con.close()
    r = bwc("log", "verify")
    assert_clean_error(r, 8, "checkpoint", only_line=True)


@pytest.mark.parametrize(
    "args", [("--version",), ("list",), ("log", "events"), ("verify", "--all")]
)
def test_output_to_a_closed_pipe_exits_141_not_1(
    args: tuple[str, ...], camera: Path, bwc: Runner, home: Path
) -> None:
    """`bwc verify --all | head -1`: the reader stops reading. Exit 1 would say "verification
    failed"; the command ends quietly with 141 (128 + SIGPIPE), as `yes | head` does."""
    import subprocess
    import sys

    assert bwc("ingest", str(camera)).code == 0
    r, w = os.pipe()
    os.close(r)  # the reader is gone before bwc writes a byte
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).with_name("bwc")), *args],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(w)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
