"""Import files for the audit: officers (roster), assignments (device checkout ledger) and
enforcement cases, as CSV or JSON. Pure: bytes in, validated rows out.

Every problem names the file and the line it is on. A file with any problem is refused whole
(the caller imports nothing from it); all problems are collected so one fix round suffices.

CSV: UTF-8 (a BOM is fine; ``encoding`` for e.g. GBK exports), a header row, one record per
row (quoted fields may span lines; the line reported is the one the record starts on).
Blank rows are skipped. Columns the schema does not know are ignored.
JSON: an array of objects, or JSON Lines (one object per line). Numbers are accepted for ids,
booleans for ``frontline``, a list of ids (or a ``;``-separated string) for ``officers``.
Times: ISO 8601 with a date and a time; without an offset they are local time in ``tz``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict, Unpack
from zoneinfo import ZoneInfo

from bwc.audit.model import AuditInputError
from bwc.config import limits

Kind = Literal["officers", "assignments", "cases"]
Format = Literal["csv", "json"]

# required columns, optional columns
SCHEMAS: dict[Kind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "officers": (("officer_id", "name", "unit", "county", "frontline"), ("active",)),
    "assignments": (("officer_id", "device_id", "start"), ("end",)),
    "cases": (("case_id", "officers", "start", "end"), ("category", "unit", "location")),
}

MAX_ID = limits.ID_MAX  # the catalog's column length
MAX_PROBLEMS = 1000
TRUE = frozenset({"true", "1", "是", "yes", "y"})
FALSE = frozenset({"false", "0", "否", "no", "n"})
_TIME_RE = re.compile(r"^\d{4}-?\d{2}-?\d{2}[T ]\d{2}")
_OFFICER_SEP = re.compile(r"[;；]")


@dataclass(frozen=True)
class OfficerIn:
    line: int
    officer_id: str
    name: str
    unit: str
    county: str
    frontline: bool
    # None: the file does not say (a new officer is active; a known one keeps its state)
    active: bool | None = None


@dataclass(frozen=True)
class AssignmentIn:
    line: int
    officer_id: str
    device_id: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class CaseIn:
    line: int
    case_id: str
    category: str
    unit: str
    officers: tuple[str, ...]
    start: datetime
    end: datetime
    location: str


Row = OfficerIn | AssignmentIn | CaseIn


@dataclass(frozen=True)
class Problem:
    line: int
    message: str


class _Bad(ValueError):
    """One field's problem (becomes a Problem at the record's line)."""


# ------------------------------------------------------------------------------ values


def parse_time(text: str, tz: ZoneInfo) -> datetime:
    """ISO 8601 date and time -> aware UTC datetime. Without an offset the time is local in
    ``tz``; an ambiguous local time (DST fall-back) takes the earlier instant; a local time
    that does not exist (DST spring-forward) is refused."""
    t = text.strip()
    if not _TIME_RE.match(t):
        raise _Bad(f"{t!r} is not an ISO 8601 date and time (like 2026-10-01T09:30:00)")
    try:
        dt = datetime.fromisoformat(t)
    except ValueError as e:
        raise _Bad(f"{t!r} is not an ISO 8601 date and time ({e})") from e
    # far from datetime's edges, where converting between zones overflows
    if not limits.YEAR_MIN <= dt.year <= limits.YEAR_MAX:
        raise _Bad(f"{t!r}: the year is not between {limits.YEAR_MIN} and {limits.YEAR_MAX}")
    if dt.tzinfo is None:
        local = dt.replace(tzinfo=tz)
        if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != dt:
            raise _Bad(f"{t!r} does not exist in {tz.key} (clocks skipped it)")
        dt = local
    return dt.astimezone(UTC)


def parse_bool(text: str) -> bool:
    v = text.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise _Bad(f"{text!r} is not true/false/1/0/是/否")


def _ident(value: str, what: str) -> str:
    v = value.strip()
    if not v:
        raise _Bad(f"{what} is empty")
    if len(v) > MAX_ID:
        raise _Bad(f"{what} is longer than {MAX_ID} characters")
    if any(ord(ch) < 32 or ch in ";；" for ch in v):
        raise _Bad(f"{what} {v!r} contains a control character or ';'")
    return v


def _label(value: str, what: str) -> str:
    """A unit or county name: stored in a column as long as an id's (empty is the caller's
    business)."""
    v = value.strip()
    problem = limits.text_problem(v) if v else None
    if problem is not None:
        raise _Bad(f"{what} {problem}")
    return v


def _text(v: Any, what: str) -> str:
    """A JSON or CSV value as text (JSON numbers and booleans become text; null is empty)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    raise _Bad(f"{what} must be text, not {type(v).__name__}")


# ------------------------------------------------------------------------------ records


def _decode(data: bytes, encoding: str) -> tuple[str, list[Problem]]:
    try:
        return data.decode(encoding), []
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        shown = "UTF-8" if encoding.lower() in ("utf-8-sig", "utf-8", "utf8") else encoding
        msg = f"not valid {shown} text (byte {e.start}); pass --encoding, e.g. gbk"
        return "", [Problem(line, msg)]
    except LookupError:
        return "", [Problem(0, f"unknown text encoding {encoding!r}")]


def sniff_format(name: str, data: bytes) -> Format:
    lower = name.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".json", ".jsonl", ".ndjson")):
        return "json"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if head in (b"[", b"{") else "csv"


def _rename(
    names: list[str], columns: Mapping[str, str], known: set[str]
) -> tuple[list[str], list[str]]:
    """Header names -> schema field names (after --column SRC=FIELD); problems."""
    problems: list[str] = []
    for src in columns:
        if src not in names:
            problems.append(f"no column {src!r} to map to {columns[src]!r}")
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        field = columns.get(n, n).strip()
        low = field.lower()
        field = low if low in known else field
        if field in known and field in seen:
            problems.append(f"column {field!r} appears twice")
        seen.add(field)
        out.append(field)
    return out, problems


def _csv_records(
    text: str, columns: Mapping[str, str], known: set[str], required: tuple[str, ...]
) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    header: list[str] | None = None
    last = 0
    try:
        for raw in reader:
            line = last + 1
            last = reader.line_num
            if not raw or all(not f.strip() for f in raw):
                continue
            if header is None:
                header, probs = _rename([f.strip() for f in raw], columns, known)
                problems += [Problem(line, p) for p in probs]
                missing = [c for c in required if c not in header]
                if missing:
                    problems.append(
                        Problem(
                            line,
                            f"missing column(s) {', '.join(missing)} (header has: "
                            f"{', '.join(header)}); map names with --column SRC=FIELD",
                        )
                    )
                if problems:
                    return [], problems
                continue
            if len(raw) != len(header):
                problems.append(Problem(line, f"expected {len(header)} fields, found {len(raw)}"))
                continue
            records.append((line, dict(zip(header, raw, strict=True))))
    except csv.Error as e:
        problems.append(Problem(last + 1, f"unreadable CSV: {e}"))
    if header is None and not problems:
        problems.append(Problem(1, "empty file: no header row"))
    return records, problems


def _json_records(
    text: str, columns: Mapping[str, str], known: set[str]
) -> tuple[list[tuple[int, Any]], list[Problem]]:
    dec = json.JSONDecoder()
    records: list[tuple[int, Any]] = []
    ws = " \t\r\n"

    def skip(i: int) -> int:
        while i < len(text) and text[i] in ws:
            i += 1
        return i

    def line_at(i: int) -> int:
        return text.count("\n", 0, i) + 1

    i = start = skip(0)
    try:
        if i < len(text) and text[i] == "[":
            i = skip(i + 1)
            if i < len(text) and text[i] == "]":
                i += 1
            else:
                while True:
                    start = i
                    obj, i = dec.raw_decode(text, i)
                    records.append((start, obj))
                    i = skip(i)
                    if i < len(text) and text[i] == ",":
                        i = skip(i + 1)
                        continue
                    if i < len(text) and text[i] == "]":
                        i += 1
                        break
                    return [], [Problem(line_at(i), "expected ',' or ']' in the JSON array")]
            if skip(i) != len(text):
                return [], [Problem(line_at(skip(i)), "text after the JSON array")]
        else:  # JSON Lines
            while i < len(text):
                start = i
                obj, i = dec.raw_decode(text, i)
                records.append((start, obj))
                j = i
                while j < len(text) and text[j] in " \t\r":
                    j += 1
                if j < len(text) and text[j] != "\n":
                    return [], [Problem(line_at(j), "one JSON object per line expected")]
                i = skip(j)
    except json.JSONDecodeError as e:
        return [], [Problem(e.lineno, f"invalid JSON: {e.msg}")]
    except RecursionError:  # nesting deeper than the stack: a bad record, not a crash
        return [], [Problem(line_at(start), "invalid JSON: nested too deeply")]
    except ValueError:  # a number of more than 4300 digits (Python's limit): no id
        return [], [Problem(line_at(start), "invalid JSON: a number with too many digits")]
    # positions -> line numbers in one pass
    out: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    line, pos = 1, 0
    for start, obj in records:
        line += text.count("\n", pos, start)
        pos = start
        if not isinstance(obj, dict):
            problems.append(Problem(line, f"expected an object, found {type(obj).__name__}"))
            continue
        names, probs = _rename(list(obj), {k: v for k, v in columns.items() if k in obj}, known)
        problems += [Problem(line, p) for p in probs]
        out.append((line, dict(zip(names, obj.values(), strict=True))))
    return out, problems


# ------------------------------------------------------------------------------ rows


def _field(rec: Mapping[str, Any], name: str) -> str:
    value = _text(rec.get(name), name).strip()
    if "\x00" in value:  # PostgreSQL refuses it in any text (SQLite would keep it)
        raise _Bad(f"{name} contains a NUL character")
    return value


def _officer(line: int, rec: Mapping[str, Any], tz: ZoneInfo) -> OfficerIn:
    fl = rec.get("frontline")
    frontline = fl if isinstance(fl, bool) else parse_bool(_field(rec, "frontline"))
    unit = _label(_field(rec, "unit"), "unit")
    county = _label(_field(rec, "county"), "county")
    if not unit:
        raise _Bad("unit is empty")
    if not county:
        raise _Bad("county is empty")
    act = rec.get("active")
    if isinstance(act, bool):
        active: bool | None = act
    else:
        text = _field(rec, "active")
        try:
            active = parse_bool(text) if text else None
        except _Bad as e:
            raise _Bad(f"active: {e}") from e
    return OfficerIn(
        line,
        _ident(_field(rec, "officer_id"), "officer_id"),
        _field(rec, "name"),
        unit,
        county,
        frontline,
        active,
    )


def _assignment(line: int, rec: Mapping[str, Any], tz: ZoneInfo) -> AssignmentIn:
    oid = _ident(_field(rec, "officer_id"), "officer_id")
    dev = _ident(_field(rec, "device_id"), "device_id")
    start = parse_time(_field(rec, "start"), tz)
    end_text = _field(rec, "end")
    end = parse_time(end_text, tz) if end_text else None
    if end is not None and end <= start:
        raise _Bad(f"end {end_text} is not after start {_field(rec, 'start')}")
    return AssignmentIn(line, oid, dev, start, end)


def _officer_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, list):
        items = [_text(x, "officers").strip() for x in v]
    else:
        items = [x.strip() for x in _OFFICER_SEP.split(_text(v, "officers"))]
    ids = tuple(dict.fromkeys(_ident(x, "officer id") for x in items if x))
    if not ids:
        raise _Bad("officers is empty (ids separated by ';')")
    return ids


def _case(line: int, rec: Mapping[str, Any], tz: ZoneInfo) -> CaseIn:
    cid = _ident(_field(rec, "case_id"), "case_id")
    officers = _officer_list(rec.get("officers"))
    start = parse_time(_field(rec, "start"), tz)
    end = parse_time(_field(rec, "end"), tz)
    if end == start:
        raise _Bad(f"case {cid} has zero length (start = end = {_field(rec, 'start')})")
    if end < start:
        raise _Bad(
            f"case {cid} ends before it starts ({_field(rec, 'end')} < {_field(rec, 'start')})"
        )
    return CaseIn(
        line,
        cid,
        _field(rec, "category"),
        _label(_field(rec, "unit"), "unit"),
        officers,
        start,
        end,
        _field(rec, "location"),
    )


_BUILDERS: dict[Kind, Callable[[int, Mapping[str, Any], ZoneInfo], Row]] = {
    "officers": _officer,
    "assignments": _assignment,
    "cases": _case,
}


def _key(row: Row) -> tuple[str, ...]:
    if isinstance(row, OfficerIn):
        return (row.officer_id,)
    if isinstance(row, CaseIn):
        return (row.case_id,)
    return (row.officer_id, row.device_id, row.start.isoformat())


def parse_rows(
    kind: Kind,
    data: bytes,
    *,
    tz: ZoneInfo,
    fmt: Format | None = None,
    name: str = "input",
    encoding: str = "utf-8-sig",
    columns: Mapping[str, str] | None = None,
) -> tuple[list[Row], list[Problem]]:
    """Parse and validate a whole file: (rows, problems). Rows are only usable when there
    are no problems."""
    required, optional = SCHEMAS[kind]
    known = set(required) | set(optional)
    cols = dict(columns or {})
    text, problems = _decode(data, encoding)
    if problems:
        return [], problems
    fmt = fmt or sniff_format(name, data)
    if fmt == "csv":
        records, problems = _csv_records(text, cols, known, required)
    else:
        records, problems = _json_records(text.lstrip("\ufeff"), cols, known)
    build = _BUILDERS[kind]
    rows: list[Row] = []
    seen: dict[tuple[str, ...], int] = {}
    for line, rec in records:
        if len(problems) >= MAX_PROBLEMS:
            break
        if fmt == "json":
            missing = [c for c in required if c not in rec]
            if missing:
                problems.append(Problem(line, f"missing field(s) {', '.join(missing)}"))
                continue
        try:
            row = build(line, rec, tz)
        except _Bad as e:
            problems.append(Problem(line, str(e)))
            continue
        k = _key(row)
        if k in seen:
            what = {"officers": "officer", "cases": "case", "assignments": "assignment"}[kind]
            problems.append(Problem(line, f"{what} {' '.join(k[:2])} already on line {seen[k]}"))
            continue
        seen[k] = line
        rows.append(row)
    problems.sort(key=lambda p: p.line)
    return rows, problems


class ReadOptions(TypedDict, total=False):
    fmt: Format | None
    name: str
    encoding: str
    columns: Mapping[str, str] | None


def load_rows(
    kind: Kind, data: bytes, *, tz: ZoneInfo, **options: Unpack[ReadOptions]
) -> list[Row]:
    """``parse_rows``, raising AuditInputError (exit 6) on the first problem: one line that
    names the file and line, with the count and lines of any further problems."""
    rows, problems = parse_rows(kind, data, tz=tz, **options)
    if problems:
        raise AuditInputError(describe(options.get("name", "input"), problems))
    return rows


def describe(name: str, problems: list[Problem]) -> str:
    first = problems[0]
    where = f"{name} line {first.line}" if first.line else name
    text = f"{where}: {first.message}"
    more = problems[1:]
    if more:
        lines = ", ".join(str(p.line) for p in more[:10]) + (", ..." if len(more) > 10 else "")
        text += f" (and {len(more)} more problem(s), on line(s) {lines})"
    return text + "; nothing was imported"
