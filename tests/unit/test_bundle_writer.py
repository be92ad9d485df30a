"""bwc.evidence.bundle.writer: the folder and the zip a bundle is written through. The zip
gets every file as it is made, the footage stored; a footage member whose object could not be
read whole leaves no byte in the zip; zip64 where a member needs it; nothing at ``out`` until
``publish``, and never over a file that appeared there."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from bwc.errors import BwcError, StoreError, UsageError
from bwc.evidence.bundle.writer import FolderWriter, ZipWriter
from bwc.evidence.copyout import Sink
from bwc.evidence.fingerprint import Digest

pytestmark = pytest.mark.unit

CUT = b"cut-off-footage:" * 4096  # 64 KiB a reader gave before its store failed
WHOLE = b"whole-footage..:" * 8192


def filling(*chunks: bytes, error: BwcError | None = None):  # type: ignore[no-untyped-def]
    """A copy that writes ``chunks`` and then returns ``error`` (the store failed) or the
    digest of what it wrote."""

    def fill(dst: Sink) -> Digest | BwcError:
        for c in chunks:
            dst.write(c)
        if error is not None:
            return error
        data = b"".join(chunks)
        return Digest(hashlib.sha256(data).hexdigest(), len(data))

    return fill


def unzip_test(path: Path) -> None:
    if shutil.which("unzip") is None:
        pytest.fail("unzip is not installed: run `make test`, which installs it")
    ran = subprocess.run(["unzip", "-tq", str(path)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_zip_footage_cut_mid_read_leaves_no_byte_and_the_zip_goes_on(tmp_path: Path) -> None:
    w = ZipWriter(tmp_path, "case")
    w.write("a.txt", b"first\n")
    got = w.footage("items/x/cut.MP4", 3 * len(CUT), filling(CUT, CUT, error=StoreError("gone")))
    assert isinstance(got, StoreError)
    assert w.path.stat().st_size < len(CUT)  # its bytes truncated away, not only unnamed
    got = w.footage("items/y/whole.MP4", len(WHOLE), filling(WHOLE))
    assert isinstance(got, Digest) and got.size == len(WHOLE)
    w.write("z.txt", b"last\n")
    w.finish()
    raw = w.path.read_bytes()
    assert b"cut-off-footage:" not in raw and b"cut.MP4" not in raw
    with zipfile.ZipFile(w.path) as z:
        assert z.testzip() is None
        assert z.namelist() == ["case/a.txt", "case/items/y/whole.MP4", "case/z.txt"]
        assert z.read("case/items/y/whole.MP4") == WHOLE
        kinds = {i.filename: i.compress_type for i in z.infolist()}
        assert kinds["case/items/y/whole.MP4"] == zipfile.ZIP_STORED
        assert kinds["case/a.txt"] == kinds["case/z.txt"] == zipfile.ZIP_DEFLATED
    unzip_test(w.path)


def test_zip_footage_that_fails_before_any_byte_leaves_no_member(tmp_path: Path) -> None:
    w = ZipWriter(tmp_path, "case")
    assert isinstance(
        w.footage("items/x/a.MP4", 10, filling(error=StoreError("missing"))), BwcError
    )
    w.finish()
    with zipfile.ZipFile(w.path) as z:
        assert z.namelist() == []


def test_zip_write_error_is_the_exports(tmp_path: Path) -> None:
    w = ZipWriter(tmp_path, "case")

    def broken(dst: Sink) -> Digest | BwcError:
        raise OSError(28, "No space left on device")

    with pytest.raises(UsageError, match="cannot write the bundle: No space left on device"):
        w.footage("items/x/a.MP4", 10, broken)
    w.discard()  # what export does before removing the partial folder
    w.discard()


def test_zip64_where_a_member_needs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """zipfile's limit made small, so members "over 4 GiB" take a few KiB: footage of half
    the limit or more (by the catalog's size) gets zip64 sizes, and reads back."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1 << 16)
    big = os.urandom(100_000)
    w = ZipWriter(tmp_path, "case")
    assert isinstance(
        w.footage("items/x/big.MP4", len(big), filling(big[:50_000], big[50_000:])), Digest
    )
    w.write("SHA256SUMS", b"x\n")
    w.finish()
    with zipfile.ZipFile(w.path) as z:
        assert z.read("case/items/x/big.MP4") == big
        assert z.getinfo("case/items/x/big.MP4").extra[:2] == b"\x01\x00"  # the zip64 field
    unzip_test(w.path)  # a real reader of zip64, with no limit patched


def test_an_object_that_outgrows_a_header_without_zip64_is_failed_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog says small (no zip64), the store's object is far larger (tampered): the
    item fails with what happened, its bytes are cut, the zip stays whole."""
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1 << 16)
    w = ZipWriter(tmp_path, "case")
    got = w.footage("items/x/grown.MP4", 1000, filling(CUT, CUT))
    assert isinstance(got, StoreError) and "far more than its catalog size (1000)" in got.message
    w.write("SHA256SUMS", b"x\n")
    w.finish()
    assert b"cut-off-footage:" not in w.path.read_bytes()
    with zipfile.ZipFile(w.path) as z:
        assert z.namelist() == ["case/SHA256SUMS"]


def test_zip_report_scratch_and_publish(tmp_path: Path) -> None:
    """Chromium reads the HTML and writes the PDF outside the zip; take() puts the PDF in.
    publish links the zip at out and removes the partial folder; nothing was at out before."""
    partial = tmp_path / "b.zip.partial-1"
    partial.mkdir()
    out = tmp_path / "b.zip"
    w = ZipWriter(partial, "b")
    html = w.share("custody-report.html", b"<html></html>")
    assert html.read_bytes() == b"<html></html>" and html.is_relative_to(partial)
    assert w.take("custody-report.pdf") is None  # not printed
    w.outside("custody-report.pdf").write_bytes(b"%PDF-1.4 x")
    assert w.take("custody-report.pdf") == hashlib.sha256(b"%PDF-1.4 x").hexdigest()
    w.finish()
    assert not out.exists()
    w.publish(out)
    assert not partial.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["b.zip"]
    with zipfile.ZipFile(out) as z:
        assert z.namelist() == ["b/custody-report.html", "b/custody-report.pdf"]
        assert z.getinfo("b/custody-report.pdf").external_attr >> 16 == 0o100644


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_publish_never_writes_over_a_file_that_appeared(tmp_path: Path, kind: str) -> None:
    partial = tmp_path / "p"
    partial.mkdir()
    out = tmp_path / "b"
    w = FolderWriter(partial) if kind == "folder" else ZipWriter(partial, "b")
    w.write("SHA256SUMS", b"x\n")
    w.finish()
    out.write_bytes(b"someone else's")
    with pytest.raises(UsageError, match="appeared during the export"):
        w.publish(out)
    assert out.read_bytes() == b"someone else's"


def test_folder_footage_cut_mid_read_leaves_no_file(tmp_path: Path) -> None:
    w = FolderWriter(tmp_path / "p")
    got = w.footage("items/x/cut.MP4", 10, filling(CUT, error=StoreError("gone")))
    assert isinstance(got, StoreError)
    assert not (tmp_path / "p" / "items" / "x" / "cut.MP4").exists()
    assert isinstance(w.footage("items/y/a.MP4", len(WHOLE), filling(WHOLE)), Digest)
    assert (tmp_path / "p" / "items" / "y" / "a.MP4").read_bytes() == WHOLE
