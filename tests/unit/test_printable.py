"""Issue 12, defect 13: stored text shown to a person (file names, officers, reasons) never
carries a raw control, separator or bidi character to a terminal or a text log; plain text is
shown unchanged; two different names never show the same; JSON keeps the exact text."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bwc.printable import PrintableFormatter, json_text, printable, printable_message

pytestmark = pytest.mark.unit

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def unsafe(ch: str) -> bool:
    """What a terminal or a log reader may act on, by Unicode's own tables."""
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs") or ch in BIDI


# any text, with the troublesome characters made frequent
texts = st.text(
    alphabet=st.one_of(
        st.characters(codec=None),
        st.sampled_from(["\x1b", "\n", "\r", "\t", "\x7f", "\x9b", "\x85", "\\", "[", *BIDI]),
        st.sampled_from(["\u2028", "\u2029", "\udcff", "\x00"]),
    ),
    max_size=40,
)


def unescape(shown: str) -> str:
    """The inverse of ``printable``: exists only if the escaping is injective."""
    named = {"n": "\n", "r": "\r", "t": "\t"}

    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        return named[body] if body in named else chr(int(body[1:], 16))

    return re.sub(r"\\(n|r|t|x[0-9a-f]{2}|u[0-9a-f]{4})", one, shown)


@given(texts)
def test_output_never_contains_a_control_character(text: str) -> None:
    shown = printable(text)
    assert not [ch for ch in shown if unsafe(ch)], repr(shown)
    shown.encode("utf-8")  # a terminal can always encode it (no lone surrogate)


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\\"), max_size=40))
def test_plain_text_is_unchanged(text: str) -> None:
    if not any(unsafe(ch) for ch in text):
        assert printable(text) == text


def test_plain_names_are_unchanged() -> None:
    for name in ("DCIM/100MEDIA/DSJ0042_110023_20261015093012_0001.MP4", "张三 [unit 3]", "é"):
        assert printable(name) == name


@given(texts)
def test_escaping_can_be_undone_so_names_never_collide(text: str) -> None:
    assert unescape(printable(text)) == text


@given(texts, texts)
def test_two_names_show_differently(a: str, b: str) -> None:
    if a != b:
        assert printable(a) != printable(b)


def test_visible_escapes() -> None:
    assert printable("a\x1b[31mred\nERROR forged") == "a\\x1b[31mred\\nERROR forged"
    assert printable("x\u202eedoc") == "x\\u202eedoc"
    assert printable("\x9b\x7f\u2028") == "\\x9b\\x7f\\u2028"
    # a literal backslash never reads as an escape, and never ends the text (rich markup)
    assert printable("\\x1b") == "\\x5cx1b" != printable("\x1b")


@given(texts)
def test_a_message_never_contains_a_control_character(text: str) -> None:
    shown = printable_message(f"cannot read {text!r}: {text}")
    assert not [ch for ch in shown if unsafe(ch)], repr(shown)
    shown.encode("utf-8")


def test_a_message_keeps_its_quoted_values_as_they_are() -> None:
    # repr() has escaped the value once already: not again
    value = "a\x1b"
    assert printable_message(f"{value!r} is not an id\n") == "'a\\x1b' is not an id\\n"


@given(texts)
def test_json_text_keeps_the_exact_value_and_no_raw_control(text: str) -> None:
    shown = json_text(json.dumps({"path": text}, ensure_ascii=False, indent=2))
    assert json.loads(shown) == {"path": text}
    assert not [ch for ch in shown if unsafe(ch) and ch != "\n"], repr(shown)


def test_text_log_records_stay_one_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(PrintableFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("bwc.test_printable")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("committed: %s", "a\x1b[2J.mp4\nERROR forged line")
        try:
            raise OSError("bad\nERROR in a traceback")
        except OSError:
            log.error("failed: %s", "x\ry", exc_info=sys.exc_info())
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "WARNING committed: a\\x1b[2J.mp4\\nERROR forged line"
    assert lines[1] == "ERROR failed: x\\ry"
    # the traceback's lines are indented: none passes for a record
    assert all(line.startswith("  ") for line in lines[2:]), lines
    assert not any(unsafe(ch) for ch in stream.getvalue().replace("\n", ""))


def test_the_daemon_log_line_is_in_the_configured_zone_with_its_offset() -> None:
    import logging
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bwc.printable import LocalTimeFormatter

    at = datetime(2026, 10, 15, 1, 30, 0, 123456, tzinfo=UTC).timestamp()
    rec = logging.LogRecord("bwc", logging.INFO, "x", 1, "docked \x1b[31m", None, None)
    rec.created = at
    line = LocalTimeFormatter("%(asctime)s %(levelname)s %(message)s", ZoneInfo("Asia/Shanghai"))
    assert line.format(rec) == "2026-10-15 09:30:00.123 +08:00 INFO docked \\x1b[31m"
    west = LocalTimeFormatter("%(asctime)s", ZoneInfo("America/Sao_Paulo"))
    assert west.format(rec) == "2026-10-14 22:30:00.123 -03:00"
