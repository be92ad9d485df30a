"""The custody report printed by the real headless Chromium (Debian `chromium`, with the CJK
font `make test` installs): the PDF's text, extracted with pypdf, has every hash, officer
and event in words, Chinese as text (a real font with a ToUnicode map, not boxes); a
screenshot of the HTML is not blank. And print_pdf's failures, with stand-in browsers."""

from __future__ import annotations

import http.server
import os
import re
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from bwc.errors import ToolError
from bwc.evidence.bundle import pdf
from bwc.evidence.bundle.report import render_html
from tests.report_sample import BAD, BUNDLE, GOOD, KEY_FP, sample

pytestmark = pytest.mark.integration


def _chromium() -> str:
    exe = pdf.find_chromium()
    if exe is None:
        pytest.fail("chromium is not installed: run `make test`, which installs it")
    return exe


def _report(tmp_path: Path, lang: str) -> Path:
    html = tmp_path / f"custody-report-{lang}.html"
    html.write_text(render_html(sample(lang)), encoding="utf-8")  # type: ignore[arg-type]
    return html


def _pdf_text(path: Path) -> tuple[PdfReader, list[str]]:
    reader = PdfReader(path)
    return reader, [p.extract_text() for p in reader.pages]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_prints_to_pdf_with_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    out = tmp_path / "custody-report.pdf"
    pdf.print_pdf(_report(tmp_path, lang), out, chromium=_chromium())
    assert out.read_bytes()[:5] == b"%PDF-"
    assert not list(tmp_path.glob(".custody-report.pdf.*"))  # no temporary file left
    assert list(home.iterdir()) == []  # nothing of the browser's left in the user's home
    reader, pages = _pdf_text(out)
    # A4 portrait (595 x 842 pt); the summary and export, then each item on pages of its own
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    assert len(pages) >= 3
    whole = "".join(pages)
    flat = re.sub(r"\s+", "", whole)  # hashes wrap across lines
    for digest in (GOOD, BAD, KEY_FP, BUNDLE):
        assert digest in flat, digest
    assert "110023" in whole
    assert "<script>alert(1)</script>" in flat  # the hostile officer id, as text
    # each item starts a page of its own (the summary shows only the hashes' first digits)
    good_at = min(i for i, t in enumerate(pages) if GOOD in re.sub(r"\s+", "", t))
    bad_at = min(i for i, t in enumerate(pages) if BAD in re.sub(r"\s+", "", t))
    assert 0 < good_at < bad_at
    if lang == "zh":
        for words in ("执法记录证据保管链报告", "入库", "重复导入", "冻结", "查看", "导出"):
            assert words in flat, words
        assert "1项证据在导出时校验失败" in flat
    else:
        for words in ("Chain of custody report", "ingested", "legal hold placed", "viewed"):
            assert words in whole, words
        assert "FAILED" in whole
    # every font is embedded with a ToUnicode map: the text is text, not glyph numbers
    fonts: dict[str, Any] = {}
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for ref in (resources.get("/Font") or {}).values():
            font = ref.get_object()
            # Type0: an embedded TrueType subset; Type3: glyphs Chromium drew itself (the
            # bold of a font that has none): both must map back to Unicode
            fonts[str(font.get("/BaseFont") or f"Type3 {getattr(ref, 'idnum', id(font))}")] = font
    assert fonts
    for name, font in fonts.items():
        assert "/ToUnicode" in font, name
    if lang == "zh":  # a CJK-capable font, not a fallback that draws boxes
        assert any(re.search(r"WenQuanYi|Noto.*CJK|SourceHan|WQY", n, re.I) for n in fonts)
    # the bundle id and the page number in the margins of every page
    for i, t in enumerate(pages, 1):
        assert f"{i} / {len(pages)}" in t and BUNDLE in t


def test_the_browser_reaches_no_network(tmp_path: Path) -> None:
    """A page that tries to load from a server (here one on loopback, which Chromium would
    otherwise reach directly, and by name) gets nothing: the PDF still prints."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = tmp_path / "fetching.html"  # not our report: no CSP, loads on purpose
        page.write_text(
            f'<p>x</p><img src="http://127.0.0.1:{port}/ip">'
            f'<img src="http://localhost:{port}/name">'
            f'<link rel="stylesheet" href="http://bwc-test.invalid:{port}/css">',
            encoding="utf-8",
        )
        pdf.print_pdf(page, tmp_path / "x.pdf", chromium=_chromium())
        # the same fetch from here arrives: the server was there to be reached
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/probe", timeout=10):
            pass
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/probe"]


def test_report_screenshot_is_not_blank(tmp_path: Path) -> None:
    html = _report(tmp_path, "zh")
    shot = tmp_path / "report.png"
    args = [_chromium(), "--headless", "--disable-gpu", "--no-first-run"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    r = subprocess.run(
        [
            *args,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=900,1400",
            "--hide-scrollbars",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    width, height, pixels = _decode_png(shot.read_bytes())
    assert (width, height) == (900, 1400)
    white = dark = red = 0
    for x in range(0, len(pixels), 3):
        r_, g, b = pixels[x], pixels[x + 1], pixels[x + 2]
        if r_ > 245 and g > 245 and b > 245:
            white += 1
        elif r_ < 80 and g < 80 and b < 80:
            dark += 1  # text
        elif r_ > 150 and g < 60 and b < 80:
            red += 1  # the failed verdict (one item failed)
    total = width * height
    assert white < 0.97 * total, "blank page"
    assert dark > 0.01 * total, "no text"
    assert red > 200, "the failure is not shown in red"


def _decode_png(data: bytes) -> tuple[int, int, bytes]:
    """8-bit RGB or RGBA PNG -> (width, height, RGB bytes): enough of PNG for a screenshot."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 4 if ctype == 6 else 3
    raw, stride = zlib.decompress(idat), width * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        prev = line
        if bpp == 3:
            out += line
        else:
            out += bytes(v for i, v in enumerate(line) if i % 4 != 3)
    return width, height, bytes(out)


# ------------------------------------------------------------------ failures, stand-ins


def _fake(tmp_path: Path, name: str, body: str) -> str:
    """A stand-in browser: a Python script that sees the same arguments Chromium would."""
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!{sys.executable}\nimport sys, os, time\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


_WRITE_PDF = """
out = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--print-to-pdf="))
open(out, "wb").write(b"%PDF-1.4\\n" + b"0" * 2000)
open(os.environ["ARGS_LOG"], "w").write("\\n".join(sys.argv[1:]))
"""


def test_find_chromium_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    (tmp_path / "bin").mkdir()
    assert pdf.find_chromium() is None
    chrome = _fake(tmp_path, "google-chrome", "")
    assert pdf.find_chromium() == chrome
    chromium = _fake(tmp_path, "chromium", "")
    assert pdf.find_chromium() == chromium  # Debian's name first


def test_no_chromium_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "r.pdf"
    with pytest.raises(ToolError) as e:
        pdf.print_pdf(_report(tmp_path, "en"), out)
    assert e.value.exit_code == 9
    assert "chromium not found" in str(e.value) and "--no-pdf" in str(e.value)
    with pytest.raises(ToolError, match="cannot start"):
        pdf.print_pdf(_report(tmp_path, "en"), out, chromium=str(tmp_path / "nope"))
    assert not out.exists()


def test_arguments_profile_and_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "args.txt"
    monkeypatch.setenv("ARGS_LOG", str(log))
    exe = _fake(tmp_path, "chromium", _WRITE_PDF)
    html, out = _report(tmp_path, "en"), tmp_path / "out" / "r.pdf"
    out.parent.mkdir()
    pdf.print_pdf(html, out, chromium=exe)
    assert out.read_bytes().startswith(b"%PDF-1.4")
    args = log.read_text().splitlines()
    assert args[-1] == html.resolve().as_uri()
    assert "--headless" in args and "--no-pdf-header-footer" in args
    assert "--host-resolver-rules=MAP * ~NOTFOUND" in args
    assert ("--no-sandbox" in args) == (os.geteuid() == 0)
    profile = Path(next(a.split("=", 1)[1] for a in args if a.startswith("--user-data-dir=")))
    assert not profile.exists()  # fresh per run, removed after
    assert os.listdir(out.parent) == ["r.pdf"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sys.stderr.write('[1:2] ERROR: cannot open display\\n'); sys.exit(3)", "exit 3"),
        (
            "out = next(a.split('=', 1)[1] for a in sys.argv if a.startswith('--print-to-pdf='))"
            "\nopen(out, 'wb').write(b'<html>not a pdf</html>')",
            "no valid PDF",
        ),
        ("sys.exit(0)", "without writing the PDF"),
    ],
)
def test_a_failed_print_is_an_error_and_leaves_nothing(
    tmp_path: Path, body: str, message: str
) -> None:
    exe = _fake(tmp_path, "chromium", body)
    out = tmp_path / "out" / "r.pdf"
    out.parent.mkdir()
    with pytest.raises(ToolError, match=message) as e:
        pdf.print_pdf(_report(tmp_path, "en"), out, chromium=exe)
    if "exit 3" in message:
        assert "cannot open display" in str(e.value)
    assert os.listdir(out.parent) == []


def test_a_hung_browser_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # the browser starts a helper (as Chromium starts renderers), then hangs
    body = (
        "import subprocess\n"
        "c = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(c.pid))\n"
        "time.sleep(300)"
    )
    exe = _fake(tmp_path, "chromium", body)
    t0 = time.monotonic()
    with pytest.raises(ToolError, match=r"within 2 s \(killed\)"):
        pdf.print_pdf(_report(tmp_path, "en"), tmp_path / "r.pdf", chromium=exe, timeout=2)
    assert time.monotonic() - t0 < 20
    child = int(pid_file.read_text())
    for _ in range(100):  # reaped by init once its parent is gone
        stat = Path(f"/proc/{child}/stat")
        if not stat.exists() or stat.read_text().split(")")[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the browser's child {child} still runs")
