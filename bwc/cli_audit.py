"""`bwc audit` commands (registered on the main app by `bwc.cli`): imports of the roster, the
device ledger and the enforcement cases; explanations; the monthly coverage report; one
case's timeline. Parsing and printing only: the audit itself is in bwc.audit."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

# Only light modules (no third-party imports) at the top: the options need Kind and SCHEMAS,
# the helpers rules and time zones. The catalog (SQLAlchemy), the audit engine, its report
# and HTML are imported by the commands that use them, so `bwc --help` never loads them.
from bwc.audit.model import SECOND_MS, Period, Rules
from bwc.cli_common import (
    ctx,
    emit,
    emit_pdf,
    err,
    esc,
    esc_msg,
    json_dumps,
    narrow,
    out,
    print_json,
)
from bwc.cli_imports import (
    JsonOpt,
    import_assignments,
    import_cases,
    import_officers,
    station_zone,
)
from bwc.cli_roster import cases_app, officers_app
from bwc.config.limits import seconds_problem
from bwc.errors import UsageError
from bwc.evidence.timefmt import format_local, format_utc
from bwc.printable import printable_message

if TYPE_CHECKING:
    from bwc.audit.issues import Issue
    from bwc.audit.report import By, Lang, Report
    from bwc.evidence.station import Station

audit_app = typer.Typer(
    help="Monthly coverage audit: was every enforcement case recorded, start to end, by "
    "every officer on it? (docs/audit.md)",
    no_args_is_help=True,
)
import_app = typer.Typer(
    help="Import the roster, the device checkout ledger or the cases (CSV or JSON). "
    "A file with any bad row is refused whole; re-importing is idempotent.",
    no_args_is_help=True,
)
audit_app.add_typer(import_app, name="import")
import_app.command("officers")(import_officers)
import_app.command("assignments")(import_assignments)
import_app.command("cases")(import_cases)
audit_app.add_typer(officers_app, name="officers")
audit_app.add_typer(cases_app, name="cases")


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    html = "html"
    xlsx = "xlsx"
    pdf = "pdf"


class IssuesFormat(StrEnum):
    table = "table"
    csv = "csv"
    xlsx = "xlsx"
    html = "html"
    pdf = "pdf"


class EncodingOption(StrEnum):
    utf8 = "utf-8"
    gb18030 = "gb18030"
    gbk = "gbk"


EncodingOpt = Annotated[
    EncodingOption,
    typer.Option(
        "--encoding",
        help="CSV: utf-8 (with a BOM, so Excel reads it as UTF-8), gb18030 (GBK's bytes, which "
        "Excel on Chinese Windows reads as ANSI, and four-byte codes for characters GBK "
        "lacks: nothing lost) or gbk (refuses a character GBK lacks, naming the row).",
    ),
]


class ByOption(StrEnum):
    officer = "officer"
    unit = "unit"
    county = "county"


AllowUnverifiedOpt = Annotated[
    bool,
    typer.Option(
        "--allow-unverified",
        help="Report even when inputs (roster, cases, ledger, clock checks, explanations) "
        "do not verify against the custody log; they are named in warnings.",
    ),
]


def _warn_unverified(lines: list[str]) -> None:
    for line in lines:
        err.print(f"[bold red]UNVERIFIED INPUT:[/] {esc_msg(line)}")


class LangOption(StrEnum):
    zh = "zh"
    en = "en"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(audit_app, name="audit")


# ---------------------------------------------------------------------------- shared options

MaxGapOpt = Annotated[
    float | None,
    typer.Option("--max-gap", help="Merge clips separated by at most this many seconds."),
]
StartGraceOpt = Annotated[
    float | None, typer.Option("--start-grace", help="Seconds recording may start late.")
]
EndGraceOpt = Annotated[
    float | None, typer.Option("--end-grace", help="Seconds recording may stop early.")
]


def _rules(
    station: Station, max_gap: float | None, start_grace: float | None, end_grace: float | None
) -> Rules:
    from bwc.audit.config import rules_of

    base = rules_of(station.settings.audit)
    for name, v in (
        ("--max-gap", max_gap),
        ("--start-grace", start_grace),
        ("--end-grace", end_grace),
    ):
        problem = None if v is None else seconds_problem(v)  # inf would overflow round()
        if problem is not None:
            raise UsageError(f"{name} {v} {problem}")
    return Rules(
        max_gap_ms=base.max_gap_ms if max_gap is None else round(max_gap * SECOND_MS),
        start_grace_ms=base.start_grace_ms
        if start_grace is None
        else round(start_grace * SECOND_MS),
        end_grace_ms=base.end_grace_ms if end_grace is None else round(end_grace * SECOND_MS),
        upload_limit_ms=base.upload_limit_ms,
    )


# ---------------------------------------------------------------------------- explain


@audit_app.command()
def explain(
    case_id: Annotated[str, typer.Argument(metavar="CASE", help="Case id.")],
    officer_id: Annotated[str, typer.Argument(metavar="OFFICER", help="Officer id.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why recording was interrupted (battery, fault...).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Submit an officer's written explanation for a case not fully recorded (by the
    officer, or entered for them).

    The pair stays partial or none; it counts as explained once a supervisor approves it
    (`bwc audit approve`). A fully recorded pair needs none: nothing is recorded."""
    from bwc.audit.explanations import NotNeeded
    from bwc.audit.explanations import explain as record

    station = ctx().station()
    row = record(station, case_id, officer_id, reason, _rules(station, None, None, None))
    if isinstance(row, NotNeeded):
        if as_json:
            print_json(
                {"recorded": False, "case_id": case_id, "officer_id": officer_id, "verdict": "full"}
            )
        else:
            out.print(
                f"not needed: officer {esc(officer_id)} recorded case {esc(case_id)} in full "
                f"(coverage {row.coverage:.4f}); no explanation recorded"
            )
        return
    data = {
        "id": row.id,
        "case_id": row.case_id,
        "officer_id": row.officer_id,
        "reason": row.reason,
        "actor": row.actor,
        "station": row.station_id,
        "at": format_utc(row.at),
        "status": row.status,
    }
    if as_json:
        print_json({"recorded": True, **data})
    else:
        at = format_local(row.at, ctx().station().settings.tz)
        out.print(
            f"explanation recorded for case {esc(case_id)}, officer {esc(officer_id)} "
            f"by {esc(row.actor)} at {at}; awaiting a supervisor's review "
            "(`bwc audit approve`)"
        )


@audit_app.command()
def approve(
    case_id: Annotated[str, typer.Argument(metavar="CASE", help="Case id.")],
    officer_id: Annotated[str, typer.Argument(metavar="OFFICER", help="Officer id.")],
    by: Annotated[
        str, typer.Option("--by", help="The supervisor who reviewed it (name, recorded).")
    ],
    reject: Annotated[
        bool, typer.Option("--reject", help="Reject the explanation instead (needs --reason).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (required with --reject).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve (or --reject) the explanation awaiting review for a case and officer.

    Only approved explanations count in the audit. Logged as a custody event; `bwc audit
    verify` catches a review written outside bwc."""
    from bwc.audit.explanations import review

    station = ctx().station()
    row = review(station, case_id, officer_id, approve=not reject, by=by, reason=reason)
    data = {
        "id": row.id,
        "case_id": row.case_id,
        "officer_id": row.officer_id,
        "status": row.status,
        "reviewed_by": row.reviewed_by,
        "review_reason": row.review_reason,
        "reviewed_at": format_utc(row.reviewed_at) if row.reviewed_at else None,
    }
    if as_json:
        print_json(data)
    else:
        why = f": {esc(row.review_reason)}" if row.review_reason else ""
        at = format_local(row.reviewed_at, station.settings.tz) if row.reviewed_at else "-"
        out.print(
            f"explanation {row.id} for case {esc(case_id)}, officer {esc(officer_id)} "
            f"{row.status} by {esc(row.reviewed_by or '')} at {at}{why}"
        )


# ---------------------------------------------------------------------------- report


@audit_app.command()
def report(
    month: Annotated[str, typer.Option("--month", help="The month to audit, e.g. 2026-10.")],
    unit: Annotated[str | None, typer.Option(help="Only officers of this unit.")] = None,
    county: Annotated[str | None, typer.Option(help="Only officers of this county.")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = (
        ReportFormat.table
    ),
    by: Annotated[
        ByOption, typer.Option("--by", help="Rows per officer, unit or county (table, csv).")
    ] = ByOption.officer,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    lang: Annotated[
        LangOption, typer.Option("--lang", help="Labels and headers (html, csv, xlsx).")
    ] = LangOption.zh,
    encoding: EncodingOpt = EncodingOption.utf8,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Time zone the month is in (default: the configured one)."),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", help="Table: only the N worst rows (0: all).", min=0)
    ] = 0,
    max_timelines: Annotated[
        int, typer.Option("--max-timelines", help="HTML: timelines drawn (worst first).", min=0)
    ] = 200,
    max_gap: MaxGapOpt = None,
    start_grace: StartGraceOpt = None,
    end_grace: EndGraceOpt = None,
    allow_unverified: AllowUnverifiedOpt = False,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare/--no-compare",
            help="Table, JSON, HTML, PDF: also audit the month before and show the changes "
            "(Δ, percentage points) per county, unit and officer.",
        ),
    ] = True,
) -> None:
    """The monthly coverage report per officer, unit, county and the whole city.

    Its inputs are checked against the custody log first: rows written outside bwc make it
    refuse (exit 1), or with --allow-unverified report, naming them as unverified."""
    from bwc.audit.config import targets_of
    from bwc.audit.engine import gc_paused
    from bwc.audit.html import render_html
    from bwc.audit.monthly import monthly_report
    from bwc.audit.report import csv_bytes, csv_table, headers, to_json

    if fmt is ReportFormat.table and out_file is not None:
        raise UsageError("--out needs --format csv, json, html, xlsx or pdf")
    _check_output(fmt.value, out_file, encoding)
    station = ctx().station()
    period = Period.parse(month, tz or station.settings.timezone)
    rules = _rules(station, max_gap, start_grace, end_grace)
    # A city-month is millions of small acyclic objects, alive until the report is out: the
    # cyclic garbage collector would only rescan them, again and again.
    with gc_paused():
        rep = monthly_report(
            station,
            period,
            rules,
            unit=unit,
            county=county,
            keep_clips=fmt in (ReportFormat.html, ReportFormat.pdf),
            allow_unverified=allow_unverified,
            # CSV and xlsx are this month's numbers, one row per key: no comparison to run
            compare=compare and fmt not in (ReportFormat.csv, ReportFormat.xlsx),
            targets=targets_of(station.settings.audit),
        )
        _warn_unverified(rep.unverified)
        if fmt is ReportFormat.table:
            _print_table(rep, by.value, top)
            _print_warnings(rep)  # e.g. officers not in the roster: in no unit's row
            return
        if fmt is ReportFormat.csv:
            columns, rows = csv_table(rep, by.value)
            data = csv_bytes(headers(columns, lang.value), rows, encoding.value)
        elif fmt is ReportFormat.json:
            data = (json_dumps(to_json(rep)) + "\n").encode("utf-8")
        elif fmt is ReportFormat.xlsx:
            from bwc.audit.sheets import report_sheets, workbook

            data = workbook(report_sheets(rep, lang.value))
        else:
            data = render_html(rep, lang=lang.value, max_timelines=max_timelines).encode()
    if fmt is ReportFormat.pdf:
        emit_pdf(data, out_file, "the audit report")
    else:
        emit(data, out_file)
    _print_warnings(rep)


def _check_output(fmt: str, out_file: Path | None, encoding: EncodingOption) -> None:
    if encoding is not EncodingOption.utf8 and fmt != "csv":
        raise UsageError(f"--encoding is for --format csv, not {fmt} (always UTF-8)")
    if fmt in ("xlsx", "pdf") and out_file is None:
        raise UsageError(f"--format {fmt} needs --out FILE.{fmt} (it is not text)")


# ---------------------------------------------------------------------------- issues


@audit_app.command()
def issues(
    month: Annotated[str, typer.Option("--month", help="The month, e.g. 2026-10.")],
    unit: Annotated[str | None, typer.Option(help="Only officers of this unit.")] = None,
    county: Annotated[str | None, typer.Option(help="Only officers of this county.")] = None,
    fmt: Annotated[IssuesFormat, typer.Option("--format", help="Output format.")] = (
        IssuesFormat.table
    ),
    lang: Annotated[LangOption, typer.Option("--lang", help="Labels and headers.")] = LangOption.zh,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
    encoding: EncodingOpt = EncodingOption.utf8,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz", help="Time zone of the month and the times shown (default: configured)."
        ),
    ] = None,
    allow_unverified: AllowUnverifiedOpt = False,
) -> None:
    """The problem list (问题清单): every case-officer pair of the month recorded partly or
    not at all and without an approved explanation, with the parts of the case that have no
    footage (local time), for units to answer."""
    from zoneinfo import ZoneInfo

    from bwc.audit.engine import gc_paused
    from bwc.audit.issues import COLUMNS, problem_list, to_html, values
    from bwc.audit.monthly import monthly_report
    from bwc.audit.report import csv_bytes, headers

    if fmt is IssuesFormat.table and out_file is not None:
        raise UsageError("--out needs --format csv, xlsx, html or pdf")
    _check_output(fmt.value, out_file, encoding)
    station = ctx().station()
    period = Period.parse(month, tz or station.settings.timezone)
    with gc_paused():
        rep = monthly_report(
            station,
            period,
            _rules(station, None, None, None),
            unit=unit,
            county=county,
            allow_unverified=allow_unverified,
        )
    _warn_unverified(rep.unverified)
    rows = problem_list(rep)
    z = ZoneInfo(period.tz)
    if fmt is IssuesFormat.table:
        _print_issues(rows, rep, lang.value)
        _print_warnings(rep)
        return
    if fmt is IssuesFormat.csv:
        data = csv_bytes(
            headers(COLUMNS, lang.value), (values(i, z, lang.value) for i in rows), encoding.value
        )
    elif fmt is IssuesFormat.xlsx:
        from bwc.audit.sheets import issue_sheet, workbook

        data = workbook([issue_sheet(rows, z, lang.value)])
    else:
        data = to_html(rows, rep, lang.value).encode("utf-8")
    if fmt is IssuesFormat.pdf:
        emit_pdf(data, out_file, "the problem list")
    else:
        emit(data, out_file)
    _print_warnings(rep)


_ISSUE_TABLE_COLUMNS = ("unit", "officer_id", "name", "case_id", "start", "verdict", "coverage")


def _print_issues(rows: list[Issue], rep: Report, lang: Lang) -> None:
    from zoneinfo import ZoneInfo

    from bwc.audit.issues import COLUMNS, values, word
    from bwc.audit.report import headers
    from bwc.audit.terminal import Records

    p = rep.result.period
    con = narrow()
    con.print(
        f"{word('title', lang)} · {p.label} · {esc(p.tz)} · "
        + word("count", lang).format(n=len(rows))
    )
    if not rows:
        con.print(word("nothing", lang))
        return
    # the terminal gets the columns a unit answers from (csv, xlsx and html have them all):
    # the gaps and the explanation on each pair's continuation line
    gaps, explanation = headers(("gaps", "explanation"), lang)
    records = Records(
        title="",
        legend="",
        heads=headers(_ISSUE_TABLE_COLUMNS, lang),
        right={_ISSUE_TABLE_COLUMNS.index("coverage")},
    )
    z = ZoneInfo(p.tz)
    for i in rows:
        cell = dict(zip(COLUMNS, values(i, z, lang), strict=True))
        records.add(
            [esc(cell[c]) for c in _ISSUE_TABLE_COLUMNS],
            f"{esc(gaps)}: {esc(cell['gaps'] or '-')} · "
            f"{esc(explanation)}: {esc(cell['explanation'])}",
        )
    for part in records.renderables(con.width):
        con.print(part)


def _print_warnings(rep: Report) -> None:
    from rich.table import Table
    from rich.text import Text

    # at most 80 columns like the tables (a warning can name many cameras or officers),
    # wrapped under its own first word
    width = min(err.width, 80)
    for w in rep.warnings:
        if not w.startswith("UNVERIFIED INPUT: "):  # said above, in red
            grid = Table.grid(padding=(0, 1))
            grid.add_column(no_wrap=True)
            grid.add_column(overflow="fold")
            grid.add_row(Text("warning:", style="yellow"), Text(printable_message(w)))
            err.print(grid, width=width, soft_wrap=False)


def _print_table(rep: Report, by: By, top: int) -> None:
    from bwc.audit.terminal import report_view

    head, records = report_view(rep, by, top)
    con = narrow()
    for line in head:
        con.print(line)
    for part in records.renderables(con.width):
        con.print(part)


# ---------------------------------------------------------------------------- case


@audit_app.command("case")
def case_(
    case_id: Annotated[str, typer.Argument(metavar="CASE-ID", help="Case id.")],
    tz: Annotated[
        str | None, typer.Option("--tz", help="Show times in this zone (default: configured).")
    ] = None,
    max_gap: MaxGapOpt = None,
    start_grace: StartGraceOpt = None,
    end_grace: EndGraceOpt = None,
    as_json: JsonOpt = False,
    allow_unverified: AllowUnverifiedOpt = False,
) -> None:
    """One case: its officers, their clips (clock offsets applied), the gaps and the verdict.

    Its inputs are checked against the custody log first, as for `audit report`."""
    from bwc.audit.cases import case_audit, case_json
    from bwc.audit.terminal import case_lines, indented

    station = ctx().station()
    z = station_zone(station, tz)
    ca = case_audit(
        station,
        case_id,
        _rules(station, max_gap, start_grace, end_grace),
        allow_unverified=allow_unverified,
    )
    _warn_unverified(ca.unverified)
    if as_json:
        print_json(case_json(ca))
        return
    con = narrow()
    for line in case_lines(ca, z):
        con.print(indented(line))


# ---------------------------------------------------------------------------- the log


@audit_app.command("verify")
def verify_inputs(as_json: JsonOpt = False) -> None:
    """Check the audit's inputs against the custody log: every row of the roster, cases,
    ledger, clock checks and explanations must be as bwc logged it."""
    from bwc.errors import VerificationError
    from bwc.evidence import auditlog

    station = ctx().station()
    with station.session(snapshot=True) as s:
        check = auditlog.check_inputs(s, station)
    lines = check.lines()
    if as_json:
        print_json({"ok": check.ok, "verified": check.checked, "problems": lines})
    else:
        for table in auditlog.TABLES:
            out.print(f"{table}: {check.checked.get(table, 0)} row(s) verified")
        for line in lines:
            out.print(f"FAIL {esc_msg(line)}")
    if not check.ok:
        raise VerificationError(
            f"{len(lines)} problem(s) with the audit's inputs: {lines[0]}",
            hint="rows written outside bwc; a catalog from before inputs were logged needs "
            "`bwc audit seal` once",
        )


@audit_app.command("seal")
def seal(as_json: JsonOpt = False) -> None:
    """Log the audit's inputs as the catalog holds them now (once, for a catalog from before
    they were logged). You vouch for them: run `bwc audit verify` first and check what it
    lists; afterwards any change outside bwc is detected."""
    from bwc.evidence import auditlog

    counts = auditlog.seal(ctx().station())
    if as_json:
        names = ("added", "changed", "removed")
        print_json({t: dict(zip(names, c, strict=True)) for t, c in counts.items()})
        return
    for table, (added, changed, removed) in counts.items():
        out.print(
            f"{table}: {added} row(s) logged, {changed} changed, {removed} removed from the log"
        )
