"""`bwc export` and `bwc verify-bundle` (registered on the main app by `bwc.cli`). Parsing
and printing only: the export is `bwc.evidence.export`, the checks `bwc.evidence.bundle.check`
(docs/bundle.md is the format)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bwc.cli_common import ctx, err, esc, esc_msg, out, print_json, recorded_bound
from bwc.errors import UsageError, VerificationError


def export(
    ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="ID", help="Items to export (sha256 or a unique 8+ digit prefix)."),
    ] = None,
    case: Annotated[
        str | None, typer.Option("--case", help="Export every item linked to this case.")
    ] = None,
    officer: Annotated[
        str | None,
        typer.Option(
            "--officer",
            help="Export this officer's items recorded between --recorded-from and --recorded-to.",
        ),
    ] = None,
    recorded_from: Annotated[
        str | None,
        typer.Option(
            "--recorded-from",
            help="With --officer: recorded from this time on (ISO 8601; local time unless it "
            "has an offset).",
        ),
    ] = None,
    recorded_to: Annotated[
        str | None,
        typer.Option(
            "--recorded-to", help="With --officer: recorded before this time (a date: its end)."
        ),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="The bundle folder to create (with --zip: the zip file). Must not exist.",
        ),
    ] = None,
    as_zip: Annotated[
        bool,
        typer.Option(
            "--zip",
            help="Write one zip file at --out instead of a folder (footage stored uncompressed).",
        ),
    ] = False,
    recipient: Annotated[
        str,
        typer.Option("--for", help="Who the bundle is for (recorded in the log and the bundle)."),
    ] = "",
    lang: Annotated[
        str, typer.Option("--lang", help="zh or en: the README's first half and the report.")
    ] = "zh",
    include_failed: Annotated[
        bool,
        typer.Option(
            "--include-failed",
            help="Export items that fail verification, marked as failed in the bundle "
            "(otherwise any failure refuses the whole export).",
        ),
    ] = False,
    no_pdf: Annotated[
        bool, typer.Option("--no-pdf", help="No PDF of the custody report (the HTML stays).")
    ] = False,
    no_timestamp: Annotated[
        bool,
        typer.Option(
            "--no-timestamp",
            help="No RFC 3161 timestamp of the bundle's checkpoint even when a TSA is "
            "configured (for a TSA that is down; bundle.json then says timestamp: null).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Export a court bundle that anyone can verify without bwc (docs/bundle.md).

    Every item is re-hashed while it is copied and verified (signature, log) first; a failing
    item refuses the export (exit 1, nothing written or logged) unless --include-failed. The
    export is logged (`exported` events with the recipient and the SHA256SUMS digest).
    Exit 2: bad options or --out exists; 3: unknown id or case, or nothing selected; 5: key;
    7: store; 9: no chromium for the PDF (or --no-pdf); 11: the TSA does not answer (or
    --no-timestamp)."""
    from bwc.evidence.export import ExportRequest, Selection, export
    from bwc.evidence.items import ItemFilter

    if out_path is None:
        raise UsageError("--out is required", hint="give the bundle folder to create")
    c = ctx()
    station = c.station()
    tz = station.settings.tz
    officer_filter = None
    if officer is not None or recorded_from is not None or recorded_to is not None:
        t0 = recorded_bound(recorded_from, tz, "--recorded-from", end_of_day=False)
        t1 = recorded_bound(recorded_to, tz, "--recorded-to", end_of_day=True)
        if officer is None or t0 is None or t1 is None:
            raise UsageError("--officer, --recorded-from and --recorded-to go together")
        if t0 >= t1:
            raise UsageError(f"--recorded-from {recorded_from!r} is not before --recorded-to")
        officer_filter = ItemFilter(officer=officer, recorded_from=t0, recorded_to=t1)
    sel = Selection(case=case, officer=officer_filter, ids=tuple(ids or ()))
    req = ExportRequest(
        out=out_path,
        selection=sel,
        recipient=recipient,
        lang=lang,
        include_failed=include_failed,
        pdf=not no_pdf,
        timestamp=not no_timestamp,
        zip=as_zip,
    )
    with _Progress() as progress:
        res = export(station, req, progress)
    data: dict[str, Any] = {
        "bundle_id": res.bundle_id,
        "path": str(res.path),
        "sums_sha256": res.sums_sha256,
        "checkpoint_size": res.checkpoint_size,
        "items": [
            {
                "sha256": i.sha256,
                "file": i.file,
                "verified": i.verified,
                "failures": list(i.failures),
            }
            for i in res.items
        ],
    }
    if as_json:
        print_json(data)
        return
    failed = [i for i in res.items if not i.verified]
    out.print(
        f"exported {len(res.items)} item{'' if len(res.items) == 1 else 's'} to "
        f"{esc(str(res.path))} (bundle {res.bundle_id}, "
        f"for {esc(recipient)})"
    )
    for i in failed:
        out.print(f"[red]FAILED[/] {i.sha256[:16]}: " + esc_msg("; ".join(i.failures)))
    out.print(f"SHA256SUMS sha256 {res.sums_sha256} (recorded in the custody log)")


class _Progress:
    """A progress bar on stderr while bytes are copied, only on a terminal."""

    def __enter__(self) -> Any:
        self._bar: Any = None
        if not sys.stderr.isatty():
            return None
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=err,
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task("export", total=None)

        def update(done: int, total: int) -> None:
            self._bar.update(task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def verify_bundle(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="The bundle folder or zip.")],
    key: Annotated[
        list[str] | None,
        typer.Option(
            "--key",
            help="A key fingerprint (SHA-256 of the DER public key) the bundle's keys must be "
            "among, as the bureau publishes it; repeatable.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check a court bundle: every file against SHA256SUMS and its signature, every manifest
    and signature, every custody event's inclusion proof, the checkpoint and the keys.

    Needs no bwc home. One line per check; exit 0 when all pass, 1 when any fails, 2 when
    PATH is not a bundle."""
    from bwc.evidence.bundle.check import check_bundle, lines_of, open_bundle

    for k in key or []:
        if len(k.strip()) != 64 or any(c not in "0123456789abcdefABCDEF" for c in k.strip()):
            raise UsageError(f"--key {k!r} is not a SHA-256 fingerprint (64 hex digits)")
    rep = check_bundle(open_bundle(path), key or [])
    if as_json:
        print_json(
            {
                "bundle_id": rep.bundle_id,
                "ok": rep.ok,
                "checks": [{"ok": x.ok, "what": x.what, "detail": x.detail} for x in rep.lines],
            }
        )
    else:
        for line in lines_of(rep):
            out.print(esc_msg(line))
        n = len(rep.failures())
        out.print(
            f"verdict: bundle {rep.bundle_id} verifies ({len(rep.lines)} checks)"
            if not n
            else f"verdict: FAILED, {n} of {len(rep.lines)} checks failed"
        )
    if not rep.ok:
        raise VerificationError(f"the bundle at {path} fails {len(rep.failures())} checks")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("export")(export)
    app.command("verify-bundle")(verify_bundle)
