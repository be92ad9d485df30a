"""Stored text made safe to show to a person: file names, officer and device ids, reasons.

Names come off cameras and out of CSV imports; anyone can put an escape sequence (ESC[31m,
a cursor move, a terminal title), a newline (a forged ``ERROR`` line in a text log) or a
bidi override (text that reads backwards) into them. Every human output shows such
characters as a visible escape instead (``\\x1b``, ``\\n``, ``\\u202e``), so the name can
still be recognised and typed; a backslash is escaped too (``\\x5c``), so two different names
never print the same (the escaping can be undone exactly). JSON output keeps the exact text:
JSON escapes control characters itself, and ``json_text`` escapes the few it would leave raw.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, tzinfo

__all__ = [
    "LocalTimeFormatter",
    "PrintableFormatter",
    "json_text",
    "printable",
    "printable_message",
]

# Controls (C0, DEL, C1: Unicode category Cc), the line and paragraph separators (Zl, Zp),
# lone surrogates (Cs: an undecodable byte kept by surrogateescape, which a terminal cannot
# even encode) and the bidi marks, embeddings, overrides and isolates (they reorder what a
# terminal shows).
_OTHER_UNSAFE = "\x7f-\x9f\u2028\u2029\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_TO_ESCAPE = re.compile(f"[\\\\\x00-\x1f{_OTHER_UNSAFE}]")
_CONTROLS = re.compile(f"[\x00-\x1f{_OTHER_UNSAFE}]")
# in JSON text, C0 controls are only JSON's own layout (inside strings JSON escapes them)
_TO_ESCAPE_IN_JSON = re.compile(f"[{_OTHER_UNSAFE}]")
# A backslash is shown as \x5c, not \\: then no escape ends in a backslash, which rich markup
# would read as escaping the "[" of the next tag.
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control, separator and bidi character shown as a visible escape
    (``\\n``, ``\\x1b``, ``\\u202e``), and each backslash as ``\\x5c`` (so the escaping can
    be undone exactly); text with neither comes back unchanged. For a stored value shown
    on its own (a file name in a list)."""
    return _TO_ESCAPE.sub(_escape, text)


def printable_message(text: str) -> str:
    """A message bwc composed (an error, a reason, a log record) made printable: controls,
    separators and bidi characters escaped as by ``printable``, backslashes kept, since the
    values in such messages are mostly quoted already (``repr``: ``'a\\x1b'``) and would
    otherwise be escaped twice. One line, and nothing a terminal acts on."""
    return _CONTROLS.sub(_escape, text)


def json_text(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with the characters that JSON
    leaves raw but a terminal acts on (DEL, C1, separators, bidi, lone surrogates) written as
    ``\\uXXXX``: the same JSON value, so a reader gets the exact text back. Outside strings
    JSON has only ASCII punctuation and white space, so each such character is in a string."""
    return _TO_ESCAPE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class PrintableFormatter(logging.Formatter):
    """A text log's formatter: the message is escaped (``printable_message``), so one
    record is one line and a name can neither forge a record nor send escape sequences to a
    terminal. A traceback keeps its lines, each escaped and indented: no line of it can pass
    for a record either."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = printable_message(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:  # noqa: N802
        return _indent(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indent(super().formatStack(stack_info))


class LocalTimeFormatter(PrintableFormatter):
    """The daemon's text log: each record's time in the station's configured zone with its
    offset (``2026-10-15 09:30:00.123 +08:00``), not the machine's zone without one, so a
    line read next to `bwc status` or a receipt means the same instant."""

    def __init__(self, fmt: str, tz: tzinfo) -> None:
        super().__init__(fmt)
        self.tz = tz

    def formatTime(  # noqa: N802 - logging's name
        self, record: logging.LogRecord, datefmt: str | None = None
    ) -> str:
        t = datetime.fromtimestamp(record.created, self.tz)
        offset = t.strftime("%z")
        return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d} {offset[:3]}:{offset[3:]}"


def _indent(text: str) -> str:
    return "\n".join("  " + printable_message(line) for line in text.split("\n"))
