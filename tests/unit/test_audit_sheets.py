"""Spreadsheet bytes (CSV encodings, headers), the problem list's gap text, and the
explanation reviews folded from the custody log (issue 15.13, 15.14)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bwc.audit.issues import Issue, gaps_text
from bwc.audit.model import to_ms
from bwc.audit.report import csv_bytes, headers
from bwc.errors import UsageError
from bwc.evidence import auditlog as al

pytestmark = pytest.mark.unit

RARE = "王𠀀"  # U+20000: in GB18030, not in GBK


def test_utf8_csv_starts_with_a_bom_and_round_trips() -> None:
    data = csv_bytes(["a", "b"], [["张三", 'x, "y"\nz'], ["=1+1", "-3"]])
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["a", "b"], ["张三", 'x, "y"\nz'], ["'=1+1", "-3"]]


def test_gb18030_encodes_every_character_gbk_refuses_naming_the_row() -> None:
    rows = [["1", "张三"], ["2", RARE]]
    data = csv_bytes(["id", "姓名"], rows, "gb18030")
    assert list(csv.reader(io.StringIO(data.decode("gb18030"))))[2] == ["2", RARE]
    # what GBK can encode, GB18030 encodes the same way
    assert csv_bytes(["id", "姓名"], rows[:1], "gbk") == csv_bytes(
        ["id", "姓名"], rows[:1], "gb18030"
    )
    with pytest.raises(UsageError) as e:
        csv_bytes(["id", "姓名"], rows, "gbk")
    assert "row 3 (2), column 姓名" in str(e.value) and "U+20000" in str(e.value)


def test_headers_are_keys_in_english_and_labels_in_chinese() -> None:
    cols = ["officer_id", "cases", "full_rate", "p95_upload_delay_h"]
    assert headers(cols, "en") == cols
    assert headers(cols, "zh") == ["警号", "应录人次", "全过程记录率", "导入延迟（P95，小时）"]


def _issue(gaps: list[tuple[datetime, datetime]]) -> Issue:
    s, e = datetime(2026, 10, 15, 15, 50, tzinfo=UTC), datetime(2026, 10, 15, 16, 10, tzinfo=UTC)
    return Issue(
        "C", "1", "", "", "", True, "", "", to_ms(s), to_ms(e), "partial", 0.5, 600_000,
        tuple((to_ms(a), to_ms(b)) for a, b in gaps), "",
    )  # fmt: skip


def test_gaps_in_local_time_with_the_date_when_it_changes() -> None:
    z = ZoneInfo("Asia/Shanghai")
    i = _issue(
        [
            (
                datetime(2026, 10, 15, 15, 50, tzinfo=UTC),
                datetime(2026, 10, 15, 15, 55, tzinfo=UTC),
            ),
            (datetime(2026, 10, 15, 16, 0, tzinfo=UTC), datetime(2026, 10, 15, 16, 10, tzinfo=UTC)),
        ]
    )
    assert gaps_text(i, z, "en") == (
        "23:50:00–23:55:00 (300 s); 2026-10-16 00:00:00–2026-10-16 00:10:00 (600 s)"
    )
    assert gaps_text(i, z, "zh").endswith("(600秒)")


def test_a_review_changes_the_explanations_fact() -> None:
    explained = {"explanation_id": 7, "case_id": "C", "officer_id": "1", "reason": "r"}
    review = {**explained, "decision": "approved", "by": "王队长", "reason": None}
    # a submitted explanation digests as before reviews existed: old logs still verify
    assert al.explanation_fact(7, "C", "1", "r")[1] == al.digest(["C", "1", "r"])
    approved = al.explanation_fact(7, "C", "1", "r", "approved", "王队长", None)
    assert approved != al.explanation_fact(7, "C", "1", "r")
    assert approved != al.explanation_fact(7, "C", "1", "r", "rejected", "王队长", None)
    assert approved != al.explanation_fact(7, "C", "1", "r", "approved", "李科长", None)

    want = al.fold([("explained", explained), (al.REVIEWED, review)])
    assert want["explanations"] == {"7": approved[1]}
    # a review of an explanation the log does not have, or of another pair, changes nothing
    want = al.fold([("explained", explained), (al.REVIEWED, {**review, "officer_id": "2"})])
    assert want["explanations"] == {"7": al.explanation_fact(7, "C", "1", "r")[1]}
    assert al.fold([(al.REVIEWED, review)])["explanations"] == {}
