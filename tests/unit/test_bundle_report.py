"""The custody report's HTML (bwc.evidence.bundle.report): every item and event, in words, in
local time with the offset, hostile names escaped, failures shown, nothing loaded from
anywhere. (tests/integration/test_custody_report_pdf.py prints it with Chromium.)"""

from __future__ import annotations

import dataclasses
import re
from html import unescape

import pytest

from bwc.evidence.bundle.report import EVENT_WORDS, ReportEvent, event_words, render_html
from bwc.evidence.events import EVENT_KINDS, NewEvent, event_leaf
from tests.report_sample import (
    BAD,
    BUNDLE,
    GOOD,
    HOSTILE_NAME,
    HOSTILE_OFFICER,
    KEY_FP,
    RECIPIENT,
    ROOT_B64,
    sample,
    utc,
)

pytestmark = pytest.mark.unit


def text(html: str) -> str:
    """What a reader sees: tags dropped, entities decoded, white space collapsed."""
    at = html.find("<body>")
    body = html[at:] if at >= 0 else html  # a fragment: all of it
    body = re.sub(r"</?(span|b|code)\b[^>]*>", "", body)  # inline: no space of their own
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def section(html: str, sha: str) -> str:
    start = html.index(f'id="item-{sha}"')
    end = html.find("</section>", start)
    return html[start:end]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_item_and_event_is_in_the_report(lang: str) -> None:
    data = sample(lang)  # type: ignore[arg-type]
    html = render_html(data)
    assert html.count('<section class="item') == 2
    for it in data.items:
        part = section(html, it.sha256)
        assert it.sha256 in part  # in full, not only a prefix
        rows = re.findall(r'<tr><td class="n">(\d+)</td>', part)
        assert rows == [str(e.index) for e in it.events]
        seen = text(part)
        for e in it.events:
            assert event_words(e.kind, data.lang) in seen
        assert "5.4 MB (5,432,100" in seen
        assert "0:03:07" in seen  # the recording's length
        assert "1920×1080" in seen


def test_event_kinds_in_words_zh_and_en() -> None:
    zh, en = text(render_html(sample("zh"))), text(render_html(sample("en")))
    for words in ("入库", "重复导入", "冻结（法律保留）", "关联案件", "查看", "导出", "校验"):
        assert words in zh
    for words in ("ingested", "seen again", "legal hold placed", "linked to a case", "viewed"):
        assert words in en
    assert "执法记录证据保管链报告" in zh and "Chain of custody report" not in zh
    assert "Chain of custody report" in en and "保管链" not in en
    assert "如何核验本导出包" in zh and "How to check this bundle" in en
    # the labels of the details too, not only the kinds
    assert "原因: 现场执法" in zh and "reason: 现场执法" in en


def test_every_event_kind_has_words() -> None:
    """A kind added to the log without words here would show as its raw name."""
    for kind in (*EVENT_KINDS, "case-linked", "case-unlinked"):
        assert kind in EVENT_WORDS, kind
        assert EVENT_WORDS[kind]["zh"] and EVENT_WORDS[kind]["en"]
    assert event_words("made-up", "zh") == "made-up"


def test_hostile_values_are_escaped() -> None:
    data = sample("en")
    odd = dataclasses.replace(
        data.items[1],
        events=[
            *data.items[1].events,
            dataclasses.replace(
                data.items[1].events[0],
                index=100,
                kind="<i>new-kind</i>",
                actor="<u>x</u>",
                details={"<k>": "<v>"},
            ),
        ],
    )
    html = render_html(dataclasses.replace(data, items=[data.items[0], odd]))
    low = html.lower()
    # no markup from a value: no script, no element with a handler, no unknown tags
    assert "<script" not in low and "<img" not in low and "onerror=" not in low.split("<body>")[0]
    assert "<i>" not in html and "<u>" not in html and "<k>" not in html and "<v>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;i&gt;new-kind&lt;/i&gt;" in html
    assert "&quot;Circuit court&quot; &amp; &lt;co&gt;" in html
    # a bidi override would make the rest of its line read backwards: shown, not applied
    assert "\u202e" not in html and "\\u202eevil" in html
    seen = text(html)
    assert HOSTILE_OFFICER.replace("\u202e", "\\u202e") in seen
    assert HOSTILE_NAME in seen and RECIPIENT in seen


def test_times_are_local_with_their_offset() -> None:
    seen = text(render_html(sample("en")))
    # 2026-10-15T01:31:00Z recorded, 09:02:11Z ingested, in Asia/Shanghai (UTC+8)
    assert "2026-10-15 09:31:00 +08:00 – 2026-10-15 09:34:07 +08:00" in seen
    assert "2026-10-15 17:02:11 +08:00, by legal-wang at station station-07" in seen
    assert "Asia/Shanghai (UTC+08:00)" in seen
    assert "01:31:00" not in seen and "Z " not in seen  # no UTC time shown as if local

    # a zone with daylight saving: each time with the offset of its own date
    ny = text(render_html(sample("en", tz="America/New_York")))
    assert "2026-10-14 21:31:00 -04:00" in ny  # EDT in October
    assert "2026-12-01 03:00:05 -05:00" in ny  # EST in December (the export)
    assert "America/New_York (UTC-05:00)" in ny


def test_a_failed_item_is_shown_as_failed() -> None:
    html = render_html(sample("en"))
    seen = text(html)
    assert "1 item(s) FAILED verification at export" in seen
    assert '<div class="verdict bad">' in html
    bad, good = section(html, BAD), section(html, GOOD)
    assert bad.startswith('id="item-') and '<section class="item failed"' in html
    assert "sha256 mismatch: stored object differs from manifest" in text(bad)
    assert "FAILED" in text(bad) and "FAILED" not in text(good)
    assert "passed: file re-hashed" in text(good)
    # the summary table names which one
    rows = re.findall(r"<tr><td class=\"n\">(\d)</td>.*?</tr>", html, flags=re.S)
    assert rows == ["1", "2"]
    summary = html[html.index('id="items"') : html.index('id="export"')]
    assert summary.count('class="ok"') == 1 and summary.count('class="bad"') == 1

    zh = text(render_html(sample("zh")))
    assert "1 项证据在导出时校验失败" in zh and "失败" in zh


def test_all_verified_says_so() -> None:
    html = render_html(sample("zh", failed=False))
    seen = text(html)
    assert "全部证据在导出时校验通过" in seen
    assert "verdict bad" not in html and "item failed" not in html
    empty = text(render_html(dataclasses.replace(sample("en"), items=[])))
    assert "(no items)" in empty


def test_the_export_itself_is_described() -> None:
    seen = text(render_html(sample("en")))
    for fact in (
        f"Bundle id {BUNDLE}",
        "Exported by legal-wang",
        f"For {RECIPIENT}",
        "Station station-07",
        f"size 100, root hash {ROOT_B64}",
        f"a1b2c3d4e5f60718: {KEY_FP}",
        "2026-12-01 16:00:06 +08:00, by http://127.0.0.1:3180/tsr",
        "Selection case: C-2026-0042",
        "Items 2",
    ):
        assert fact in seen, fact
    no_ts = dataclasses.replace(sample("en"), timestamp_gen_time=None, tsa_url=None)
    assert "none (no timestamp authority set)" in text(render_html(no_ts))


def test_selection_by_officer_and_time_in_local_time() -> None:
    sel = {"officer": "110023", "recorded_from": "2026-10-14T16:00:00Z", "recorded_to": "bad"}
    seen = text(render_html(dataclasses.replace(sample("en"), selection=sel)))
    assert "officer: 110023; recorded from: 2026-10-15 00:00:00 +08:00; recorded to: bad" in seen
    ids = dataclasses.replace(sample("zh"), selection={"ids": [GOOD, BAD]})
    assert f"指定证据: {GOOD}, {BAD}" in text(render_html(ids))


def test_nothing_is_loaded_from_anywhere() -> None:
    html = render_html(sample("zh"))
    head = html[: html.index("<body>")]
    assert "Content-Security-Policy" in head and "default-src 'none'" in head
    for ref in ("<script", "<link", "@import", "url(", "http:", "https:"):
        assert ref not in head, ref
    # no attribute that can load or run anything, on any element (values are text, escaped)
    attrs = {
        a for tag in re.findall(r"<[a-z][^>]*>", html) for a in re.findall(r" ([a-z-]+)=", tag)
    }
    assert attrs <= {"lang", "charset", "http-equiv", "content", "class", "id"}, attrs
    body = html[html.index("<body>") :]
    # the only tags in the body are bwc's own
    tags = set(re.findall(r"<([a-z0-9]+)", body))
    assert tags <= {
        "body", "h1", "h2", "h3", "p", "span", "div", "table", "thead", "tbody", "tr", "th",
        "td", "section", "ul", "ol", "li", "br", "b", "code",
    }, tags  # fmt: skip
    # print layout: A4, one item a page, long hashes wrap
    assert "size:A4" in head and ".item{break-before:page}" in head
    assert "overflow-wrap:anywhere" in head


def test_ingested_by_comes_from_the_ingest_event() -> None:
    data = sample("en", failed=False)
    it = data.items[0]
    first = dataclasses.replace(it.events[0], actor="dock-daemon", station="station-03")
    changed = dataclasses.replace(it, events=[first, *it.events[1:]])
    seen = text(render_html(dataclasses.replace(data, items=[changed])))
    assert "2026-10-15 17:02:11 +08:00, by dock-daemon at station station-03" in seen
    # unknown recording times say so instead of inventing one
    blank = dataclasses.replace(
        it, recorded_start=None, recorded_end=None, officer_id=None, media=None
    )
    seen = text(render_html(dataclasses.replace(data, items=[blank])))
    assert "Recorded unknown" in seen and "Officer unknown" in seen
    assert utc("2026-10-15T01:31:00").isoformat() not in seen


def test_events_from_the_bundles_leaves() -> None:
    """The exporter fills the report from custody.json's leaves: what the bundle proves."""
    new = NewEvent(
        "viewed", utc("2026-10-21T06:00:00"), "legal-wang", "st-7", GOOD, {"via": "show"}
    )
    ev = ReportEvent.from_leaf(event_leaf(60, new))
    assert ev == ReportEvent(60, "viewed", new.at, "legal-wang", "st-7", {"via": "show"})
    with pytest.raises(ValueError):
        ReportEvent.from_leaf(b'{"v":2}')


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="zh or en"):
        render_html(dataclasses.replace(sample("en"), lang="fr"))  # type: ignore[arg-type]
    naive = dataclasses.replace(
        sample("en"), created_at=utc("2026-12-01T08:00:05").replace(tzinfo=None)
    )
    with pytest.raises(ValueError, match="naive"):
        render_html(naive)
