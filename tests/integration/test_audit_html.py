"""The HTML audit report opened in headless Chromium (Debian package `chromium`): it renders,
whole, from one file with nothing fetched from anywhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bwc.evidence.models import Item
from tests.integration.test_audit_cli import CASES, city, local, station, write

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed: run `make test`, which installs it")
    profile = tmp_path / "chromium-profile"  # fresh per test
    return subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_report_renders_in_chromium(bwc, home: Path, tmp_path: Path, lang: str) -> None:
    city(bwc, home, tmp_path)
    report = tmp_path / "report.html"
    r = bwc(
        "audit", "report", "--month", "2026-10", "--format", "html", "--lang", lang, "--out", report
    )
    assert r.code == 0, r.err
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), "the report links out"

    dom = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    title = (
        "执法全过程记录审计 · 2026年10月"
        if lang == "zh"
        else "Body-worn camera coverage audit · 2026-10"
    )
    assert title in html
    zone = "时区：北京时间 (UTC+8)" if lang == "zh" else "Time zone: Asia/Shanghai (UTC+8)"
    assert zone in html
    if lang == "zh":  # issue 15.11: the words a bureau uses
        for label in ("应录人次", "全过程记录率", "按时导入率", "导入延迟（P95，小时）"):
            assert label in html, label
    for section in ("summary", "counties", "units", "ranking", "gaps"):
        assert f'id="{section}"' in html
    assert html.count("<svg") == 2 + 2  # two bar charts, two timelines (non-full pairs)
    assert html.count("<tr>") == 1 + 3  # header + the roster
    assert "</html>" in html

    shot = tmp_path / "report.png"
    r2 = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", report.as_uri())
    assert r2.returncode == 0, r2.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_html_joins_and_officers_not_in_roster(bwc, home: Path, tmp_path: Path) -> None:
    """issue 15.10: two files 1 s apart (a camera splitting one recording) are joined in the
    timeline, not drawn as a red gap; the real gap after them still is. issue 15.12: an
    officer not in the roster is no bar in the charts, and is marked in the ranking."""
    city(bwc, home, tmp_path)
    extra = (
        CASES.splitlines()[0] + "\nC4,噪声,城东中队,999,2026-10-16T09:00:00,2026-10-16T09:10:00,\n"
    )
    r = bwc("audit", "import", "cases", write(tmp_path, "c4.csv", extra))
    assert r.code == 0, r.err
    with station(home).session() as s:
        # 110025 on C2 (14:00-14:10): the ledger's clip runs to 14:04:00 (true time), this
        # one from 14:04:01: a 1 s join, then a gap to the end of the case
        s.add(
            Item(
                sha256="ee" * 32,
                size=1,
                manifest=b"{}",
                signature=b"",
                key_id="k",
                station_id="st-test",
                original_path="DCIM/split.MP4",
                device_id=None,
                officer_id="110025",
                recorded_start=local("2026-10-15T14:04:01"),
                recorded_end=local("2026-10-15T14:06:00"),
                ingested_at=local("2026-10-15T15:00:00"),
            )
        )
    report = tmp_path / "report.html"
    r = bwc("audit", "report", "--month", "2026-10", "--format", "html", "--lang", "en")
    assert r.code == 0, r.err
    report.write_text(r.out, encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    joins = re.findall(r'<rect class="join"[^>]*><title>([^<]*)</title>', html)
    assert joins == ["join 14:04:00–14:04:01 (1 s)"]
    gaps = re.findall(r'<rect class="gap"[^>]*><title>([^<]*)</title>', html)
    assert sorted(gaps) == [
        "gaps 09:00:00–09:10:00 (600 s)",  # C4: 999 has no footage
        "gaps 09:30:00–09:33:00 (180 s)",
        "gaps 14:06:00–14:10:00 (240 s)",
    ]
    charts = html[html.index('id="counties"') : html.index('id="ranking"')]
    bars = re.findall(r"<rect class=\"b-[a-z]+\"[^>]*><title>([^:<]*):", charts)
    assert bars == ["西城区", "东城区", "城西中队", "城东中队"]  # worst first; no "(not in roster)"
    assert '<td class="t nir">(not in roster)</td>' in html
    assert "999 (1 case)" in html  # the warning
