"""The import commands for the audit's inputs (roster, device checkout ledger, cases), shared
by `bwc audit import …` and `bwc devices import` (the checkout ledger is one ledger).
Parsing and printing only: parsing files is ``bwc.audit.parse``, storing rows
``bwc.audit.imports``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

# Only light modules at the top (the options need Kind and SCHEMAS): `bwc --help` stays fast.
from bwc.audit.model import zone
from bwc.audit.parse import SCHEMAS, Kind, load_rows
from bwc.cli_common import ctx, esc_msg, out, print_json
from bwc.errors import InputError, UsageError

if TYPE_CHECKING:
    from bwc.evidence.station import Station


class FileFormat(StrEnum):
    csv = "csv"
    json = "json"


FileArg = Annotated[
    Path, typer.Argument(metavar="FILE", help="CSV or JSON file (docs/audit.md has the schemas).")
]
FormatOpt = Annotated[
    FileFormat | None,
    typer.Option("--format", help="File format (default: from the file name, else sniffed)."),
]
EncodingOpt = Annotated[
    str, typer.Option(help="Text encoding of a CSV file, e.g. gbk (default UTF-8, BOM or not).")
]
ColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--column",
        metavar="SRC=FIELD",
        help="Read column SRC as FIELD (for exports that name columns differently); repeat.",
    ),
]
TzOpt = Annotated[
    str | None,
    typer.Option(
        "--tz", help="Time zone of times without an offset (default: the configured one)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def station_zone(station: Station, tz: str | None) -> ZoneInfo:
    """``--tz``, else the station's configured time zone."""
    return zone(tz or station.settings.timezone)


def _columns(kind: Kind, specs: list[str] | None) -> dict[str, str]:
    required, optional = SCHEMAS[kind]
    known = (*required, *optional)
    mapping: dict[str, str] = {}
    for spec in specs or []:
        src, sep, field = spec.partition("=")
        if not sep or not src.strip() or field.strip() not in known:
            raise UsageError(
                f"--column {spec!r}: expected SRC=FIELD with FIELD one of {', '.join(known)}"
            )
        mapping[src.strip()] = field.strip()
    return mapping


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e


def _import(
    kind: Kind,
    path: Path,
    fmt: FileFormat | None,
    encoding: str,
    column: list[str] | None,
    tz: str | None,
    as_json: bool,
) -> None:
    from bwc.audit.imports import import_rows

    station = ctx().station()
    data = _read(path)
    rows = load_rows(
        kind,
        data,
        tz=station_zone(station, tz),
        fmt=None if fmt is None else fmt.value,
        name=str(path),
        encoding=encoding,
        columns=_columns(kind, column),
    )
    counts = import_rows(station, kind, rows, file_sha256=hashlib.sha256(data).hexdigest())
    if as_json:
        print_json(
            {
                "file": str(path),
                "kind": kind,
                "rows": len(rows),
                "new": counts.new,
                "changed": counts.changed,
                "unchanged": counts.unchanged,
            }
        )
    else:
        out.print(esc_msg(counts.text(f"{path} ({kind})")))


def _command(kind: Kind, doc: str) -> Callable[..., None]:
    def command(
        path: FileArg,
        fmt: FormatOpt = None,
        encoding: EncodingOpt = "utf-8-sig",
        column: ColumnOpt = None,
        tz: TzOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        _import(kind, path, fmt, encoding, column, tz, as_json)

    command.__doc__ = doc
    command.__name__ = f"import_{kind}"
    return command


import_officers = _command(
    "officers", "The roster: officer_id,name,unit,county,frontline (true/false/1/0/是/否)."
)
import_assignments = _command(
    "assignments",
    "The device checkout ledger: officer_id,device_id,start,end (empty end: still held).",
)
import_cases = _command(
    "cases",
    """Enforcement cases: case_id,category,unit,officers,start,end,location.

    Officers separated by ';'. A column-name mapping (--column) reads other exports.""",
)
