"""The audit report and the problem list as PDF (`--format pdf`): the same HTML page printed
by headless Chromium, read back as text (pypdf), Chinese included."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.integration.test_audit_cli import city

pytestmark = pytest.mark.integration


def pdf_text(path: Path) -> str:
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_and_problem_list_print_to_pdf(bwc, home: Path, tmp_path: Path, lang: str) -> None:
    city(bwc, home, tmp_path)
    report = tmp_path / "report.pdf"
    r = bwc(
        "audit", "report", "--month", "2026-10", "--format", "pdf", "--lang", lang, "--out", report
    )
    assert r.code == 0, r.err
    text = pdf_text(report)
    title = "执法全过程记录审计" if lang == "zh" else "Body-worn camera coverage audit"
    assert title in text, text[:500]
    assert "110024" in text  # an officer of the city fixture, in the ranking
    # A4 landscape, the ranking's headers whole (they were broken a character or two a line
    # in columns narrower than a label)
    box = PdfReader(report).pages[0].mediabox
    assert float(box.width) > float(box.height)
    if lang == "zh":
        for label in ("应录人次", "全过程记录率", "平均覆盖率", "按时导入率"):
            assert label in text, label

    issues = tmp_path / "issues.pdf"
    r = bwc(
        "audit", "issues", "--month", "2026-10", "--format", "pdf", "--lang", lang, "--out", issues
    )
    assert r.code == 0, r.err
    text = pdf_text(issues)
    assert "C1" in text and "110024" in text, text[:500]


def test_pdf_needs_a_writable_out_file(bwc, home: Path, tmp_path: Path) -> None:
    city(bwc, home, tmp_path)
    r = bwc("audit", "report", "--month", "2026-10", "--format", "pdf")
    assert r.code == 2 and "--out" in r.err, r.err
    r = bwc(
        "audit", "issues", "--month", "2026-10", "--format", "pdf",
        "--out", tmp_path / "no-such-folder" / "x.pdf",
    )  # fmt: skip
    assert r.code == 6 and "not a writable folder" in r.err, r.err
    assert not (tmp_path / "no-such-folder").exists()


def test_pdf_without_chromium_says_what_to_do(
    bwc, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    city(bwc, home, tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no browser to be found
    out = tmp_path / "report.pdf"
    r = bwc("audit", "report", "--month", "2026-10", "--format", "pdf", "--out", out)
    assert r.code == 9, r.err
    assert "chromium not found" in r.err and "--format html" in r.err, r.err
    assert not out.exists()
