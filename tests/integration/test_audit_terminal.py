"""The audit's terminal output at 80 columns (COLUMNS=80): the monthly report's table (per
officer, unit and county), the problem list (zh and en), one case's timeline, the roster and
a month's cases. No line is wider than 80 terminal cells (a Chinese character is two), the
values a reader looks for are all there, and the Chinese headers line up with their
columns."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len

from tests.integration.test_audit_cli import city, write

pytestmark = pytest.mark.integration

# a unit and a name longer than their columns' share of 80 columns: they wrap
LONG = """officer_id,name,unit,county,frontline
110026,欧阳长名字测试员,城东综合行政执法大队第一中队城东综合行政执法大队,东城区,是
"""


def lines_of(text: str) -> list[str]:
    return text.splitlines()


def test_audit_tables_and_timeline_fit_80_columns(  # type: ignore[no-untyped-def]
    bwc, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    city(bwc, home, tmp_path)
    assert bwc("audit", "import", "officers", write(tmp_path, "long.csv", LONG)).code == 0
    runs = {
        "officer": ("audit", "report", "--month", "2026-10"),
        "unit": ("audit", "report", "--month", "2026-10", "--by", "unit"),
        "county": ("audit", "report", "--month", "2026-10", "--by", "county"),
        "issues zh": ("audit", "issues", "--month", "2026-10"),
        "issues en": ("audit", "issues", "--month", "2026-10", "--lang", "en"),
        "case": ("audit", "case", "C1"),
        "officers": ("audit", "officers", "list"),
        "cases": ("audit", "cases", "list", "--month", "2026-10"),
    }
    outs = {}
    for name, args in runs.items():
        r = bwc(*args)
        assert r.code == 0, (name, r.err)
        wide = [ln for ln in lines_of(r.out + r.err) if cell_len(ln) > 80]
        assert not wide, f"{name}: {len(wide)} line(s) wider than 80:\n" + "\n".join(wide)
        outs[name] = r.out

    # the report per officer: each officer's row, worst first, with its continuation line
    text = outs["officer"]
    assert text.index("110025") < text.index("110024") < text.index("110023")
    (row,) = [ln for ln in lines_of(text) if ln.startswith("110023")]
    assert row.split()[3:] == ["2", "2", "0", "0", "0", "100.0", "%", "0.0"]
    assert "东城区 · mean coverage 99.8 % · 3 uploads, 3 on time (100.0 %)" in text
    assert "full rate 50.0 % (target 100 %, Δ -50.0 pp vs 2026-09)" in text
    assert "5 uploads, on-time rate 80.0 % (target 100 %)" in text
    # per county: the full rate and its change on the county's line
    (east,) = [ln for ln in lines_of(outs["county"]) if ln.startswith("东城区")]
    assert "66.7 %" in east and "-33.3" in east
    assert "equipage 100.0 % (2/2 frontline)" in outs["unit"]

    # the problem list: every pair, its gaps and explanation on the next line
    zh = lines_of(outs["issues zh"])
    head = next(ln for ln in zh if ln.startswith("单位"))
    c1 = next(ln for ln in zh if "110024" in ln)
    assert "C1" in c1 and "部分记录" in c1 and "0.7000" in c1
    more = zh[zh.index(c1) + 1].split()
    assert more == ["未记录时段:", "09:30:00–09:33:00", "(180秒)", "·", "情况说明状态:", "未提交"]
    # aligned in terminal cells: the start column begins, the coverage column ends, where
    # its Chinese header does
    assert cell_len(head[: head.index("开始时间")]) == cell_len(c1[: c1.index("2026-10-15")])
    assert cell_len(head.rstrip()) == cell_len(c1.rstrip())
    en = outs["issues en"]
    assert "gaps: 14:04:00–14:10:00 (360 s) · explanation: none submitted" in en

    # the timeline: clips, their source, the join and the gap, each on its own lines
    case = outs["case"]
    assert "clip 020202020202  2026-10-15 09:33:00 – 2026-10-15 09:40:00" in case
    assert "device DSJ0100, clock +30 s, officer from the ledger (DSJ0100 checked out)" in case
    assert "join 2026-10-15 09:35:00 – 2026-10-15 09:35:03  (3 s" in case
    assert "gap  2026-10-15 09:30:00 – 2026-10-15 09:33:00  (180 s)" in case

    assert "110026" in outs["officers"] and "110023,110024" in outs["cases"]
