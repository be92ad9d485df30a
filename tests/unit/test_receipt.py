"""The dock receipt's counting and verdict (bwc/ingest/receipt.py), pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bwc.ingest.receipt import (
    LOGGED_NAMES,
    FileJob,
    ItemFacts,
    Receipt,
    build,
    differences,
    log_line,
    logged_text,
    tally,
)

pytestmark = pytest.mark.unit

T0 = datetime(2026, 10, 15, 1, 0, tzinfo=UTC)


def _receipt(jobs: list[FileJob], items: dict[str, ItemFacts] | None = None) -> Receipt:
    return build(
        session=7,
        station_id="st",
        mount="/media/bwc/SER",
        device_id="DSJ0042",
        usb_serial="SER",
        docked_at=T0,
        undocked_at=None,
        jobs=jobs,
        items=items or {},
    )


def test_a_file_taken_twice_counts_once_by_its_latest_job() -> None:
    jobs = [
        FileJob(1, "a.MP4", "failed", size=5, reason="source changed"),
        FileJob(2, "b.MP4", "released", "seen-again", 7, sha256="b" * 64),
        FileJob(3, "a.MP4", "committed", "ingested", 9, sha256="a" * 64),
        FileJob(4, "junk", "ignored"),
        FileJob(5, "c.MP4", "staged", size=3),
        FileJob(6, "d.MP4", "abandoned", size=1),
    ]
    t = tally(jobs)
    assert (t.found, t.new, t.seen_again, t.committed) == (4, 1, 1, 2)
    assert (t.failed, t.ignored, t.in_progress, t.abandoned) == (0, 1, 1, 1)
    assert (t.bytes_committed, t.bytes_found, t.last_job, t.settled) == (16, 20, 6, False)
    r = _receipt(jobs)
    assert [(x.path, x.why) for x in r.not_safe] == [
        ("c.MP4", "still being taken (staged)"),
        ("d.MP4", "the camera left before it was copied"),
    ]
    assert r.verdict() == (
        "2 files NOT safe — do not clear the card: c.MP4 (still being taken (staged)); "
        "d.MP4 (the camera left before it was copied)"
    )
    assert r.verdict("zh").startswith("2 个文件未安全入库，不得清空存储卡：c.MP4")


def test_all_safe_officers_and_times() -> None:
    late = datetime(2026, 10, 15, 3, 0, tzinfo=UTC)
    items = {
        "a" * 64: ItemFacts("110023", T0, T0.replace(minute=5)),
        "b" * 64: ItemFacts("110024", late, None),
    }
    jobs = [
        FileJob(1, "a.MP4", "released", "ingested", 10, sha256="a" * 64),
        FileJob(2, "b.MP4", "released", "ingested", 20, sha256="b" * 64),
    ]
    r = _receipt(jobs, items)
    assert r.safe and r.officers == ("110023", "110024")
    assert (r.first_recorded, r.last_recorded) == (T0, late)
    assert r.verdict() == "all 2 files safe — the card may be cleared"
    assert r.verdict("zh") == "全部 2 个文件已安全入库 — 可以清空存储卡"
    line = log_line(r, ZoneInfo("Asia/Shanghai"))
    assert "recorded 2026-10-15 09:00:00 +08:00 – 2026-10-15 11:00:00 +08:00" in line
    assert "(USB serial SER), officer 110023, 110024;" in line
    # a mount with no USB serial (a folder, a card reader): none named, no "?"
    line = log_line(replace(r, usb_serial=None), ZoneInfo("Asia/Shanghai"))
    assert "USB serial" not in line and ", officer 110023, 110024;" in line
    assert r.to_json()["first_recorded"] == "2026-10-15T01:00:00Z"


def test_no_files_is_not_safe_and_a_logged_receipt_is_capped() -> None:
    assert not _receipt([]).safe
    assert _receipt([]).verdict() == "no files found on the camera"
    many = [FileJob(i, f"f{i:04d}.MP4", "failed", reason="x") for i in range(LOGGED_NAMES + 5)]
    logged = _receipt(many).for_log().to_json()
    assert len(logged["not_safe"]) == LOGGED_NAMES and logged["not_safe_more"] == 5
    assert logged["verdict"].endswith("; 5 more")
    line = log_line(_receipt(many), ZoneInfo("Asia/Shanghai"))
    assert line.count(".MP4 (failed: x)") == 10 and line.endswith(f"; {LOGGED_NAMES - 5} more")
    now = _receipt(many[:3]).to_json()
    assert differences(logged, now) == [
        f"files_found: logged {LOGGED_NAMES + 5}, now 3",
        f"failed: logged {LOGGED_NAMES + 5}, now 3",
    ]


def test_differences_and_where_it_is_logged_in_chinese() -> None:
    """A clerk reading the receipt in Chinese (the default) reads every line in Chinese: the
    differences from the logged receipt and where that receipt is in the log."""
    many = [FileJob(i, f"f{i:04d}.MP4", "failed", reason="x") for i in range(4)]
    logged = _receipt(many).for_log().to_json()
    now = _receipt(many[:3]).to_json()
    assert differences(logged, now, "zh") == ["发现文件：日志 4，现在 3", "失败：日志 4，现在 3"]
    now_safe = {**logged, "safe": True, "officers": ["110023"]}
    assert differences(logged, now_safe, "zh") == [
        "警号：日志 无，现在 110023",
        "可清空存储卡：日志 否，现在 是",
    ]
    assert differences(logged, now_safe) == [
        "officers: logged none, now 110023",
        "safe: logged False, now True",
    ]
    at = "2026-10-15 09:01:00 +08:00"
    assert logged_text("receipt", at, "clerk-1", 5, None, "zh") == (
        f"`receipt` 事件，{at}，记录人 clerk-1（日志序号 5，尚未被签名检查点覆盖）"
    )
    assert logged_text("undocked", at, "clerk-1", 6, 9) == (
        f"`undocked` event at {at} by clerk-1 (log index 6, in the signed log of 9 events)"
    )
