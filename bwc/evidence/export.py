"""`bwc export`: a court bundle (docs/bundle.md) written on a station.

Each object is read from the store once: copied into the bundle while it is hashed, and that
digest is the object check; the signature, manifest↔log and custody checks are the
verification core's (``bwc.evidence.verify.core.check_item``) with that digest. An item that
fails refuses the whole export (nothing written, nothing logged) unless ``include_failed``.
Then the `exported` events, a checkpoint signed over them (published like every other), the
proofs cut against it from the catalog's tiles (O(log n) each), the keys, the report,
verify.py, README.txt, bundle.json, SHA256SUMS and its signature, everything fsynced, the
bundle put in place, and one last `exported` event naming the SHA256SUMS digest.

Everything is written into ``<out>.partial-<random>`` beside ``out``, through a
``bundle.writer``: the folder itself, renamed into place, or (``--zip``) one zip in it that
every file goes straight into, the footage as it is copied (written once), linked into place.
A failed export leaves nothing under ``out``, and removes its partial folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlmodel import Session, select

from bwc.config.settings import Settings
from bwc.errors import (
    BwcError,
    NotFoundError,
    TimestampError,
    ToolError,
    UsageError,
    VerificationError,
)
from bwc.evidence import custody, note, trust
from bwc.evidence.bundle import layout
from bwc.evidence.bundle.report import ReportData, ReportEvent, ReportItem
from bwc.evidence.bundle.writer import BundleWriter, Fill, FolderWriter, ZipWriter
from bwc.evidence.copyout import Sink, copy_object
from bwc.evidence.events import DecodedEvent, decode_leaf
from bwc.evidence.fingerprint import Digest
from bwc.evidence.items import ItemFilter, list_items, resolve_id
from bwc.evidence.models import Item, SigningKey
from bwc.evidence.signing import public_pem
from bwc.evidence.station import Station
from bwc.evidence.timefmt import format_utc
from bwc.evidence.verify import catalog
from bwc.evidence.verify.core import ItemReport
from bwc.fsutil import fsync_dir

logger = logging.getLogger(__name__)

# the standalone verifier every bundle carries (stdlib only; docs/bundle.md)
VERIFY_PY_SOURCE = Path(__file__).resolve().parent / "bundle" / "verify.py"


@dataclass(frozen=True)
class Selection:
    """How the items were chosen: exactly one of a case, a filter (officer and recording
    time) or ids."""

    case: str | None = None
    officer: ItemFilter | None = None
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        given = sum((self.case is not None, self.officer is not None, bool(self.ids)))
        if given != 1:
            raise UsageError(
                "choose the items one way: --case CASE, or --officer X --recorded-from T "
                "--recorded-to T, or ids"
            )
        f = self.officer
        if f is not None and not (f.officer and f.recorded_from and f.recorded_to):
            raise UsageError("--officer needs --recorded-from and --recorded-to")

    def to_json(self) -> dict[str, Any]:
        if self.case is not None:
            return {"case": self.case}
        if self.officer is not None:
            f = self.officer
            assert f.recorded_from is not None and f.recorded_to is not None
            return {
                "officer": f.officer,
                "recorded_from": format_utc(f.recorded_from),
                "recorded_to": format_utc(f.recorded_to),
            }
        return {"ids": list(self.ids)}


@dataclass(frozen=True)
class ExportRequest:
    out: Path
    selection: Selection
    recipient: str
    lang: str = "zh"
    include_failed: bool = False
    pdf: bool = True
    zip: bool = False
    timestamp: bool = True  # when a TSA is configured: False is --no-timestamp


@dataclass(frozen=True)
class ExportedItem:
    sha256: str
    file: str
    size: int
    verified: bool
    failures: tuple[str, ...]


@dataclass
class ExportResult:
    bundle_id: str
    path: Path  # the folder, or the zip with --zip
    sums_sha256: str
    checkpoint_size: int
    items: list[ExportedItem] = field(default_factory=list)


Progress = Callable[[int, int], None]  # bytes done, bytes in all


# ---------------------------------------------------------------------------- selection


def items_of_case(session: Session, case: str) -> list[Item]:
    """The items linked to ``case``, by links the custody log backs. A link row the log
    does not back (inserted, or left after an unlink) refuses the export rather than
    quietly leaving an item out of, or putting one into, a court bundle."""
    from bwc.evidence import cases

    logged = cases.items_of_case(session, case)
    unbacked = sorted(set(cases.linked_items(session, case)) - set(logged))
    if unbacked:
        raise VerificationError(
            f"case {case!r}: the catalog links {len(unbacked)} item(s) the custody log does not "
            f"(first: {unbacked[0][:16]}); nothing was exported",
            hint="run `bwc case show CASE` and `bwc verify ID`",
        )
    found = [session.get(Item, sha) for sha in logged]
    return [i for i in found if i is not None]


def select_items(session: Session, sel: Selection) -> list[Item]:
    if sel.case is not None:
        found = items_of_case(session, sel.case)
        if not found:
            raise NotFoundError(
                f"no evidence item is linked to case {sel.case!r}",
                hint="check the case id; `bwc case link CASE ID...` links items",
            )
    elif sel.officer is not None:
        found = list(list_items(session, sel.officer))
        if not found:
            raise NotFoundError(
                f"no item of officer {sel.officer.officer!r} was recorded in that time",
                hint="see `bwc list --officer X --recorded-from T --recorded-to T`",
            )
    else:
        found = [resolve_id(session, i) for i in sel.ids]
    unique = {i.sha256: i for i in found}
    return [unique[k] for k in sorted(unique)]


# ---------------------------------------------------------------------------- hooks


def _timestamp(settings: Settings, checkpoint_bytes: bytes) -> tuple[bytes, bytes] | None:
    """An RFC 3161 token over the checkpoint's bytes and the TSA's chain (PEM), or None when
    no TSA is configured (`[timestamp] tsa_url`). Raises TimestampError when the TSA does
    not answer after a few tries."""
    from bwc.evidence.timestamp import timestamp_for_export

    try:
        return timestamp_for_export(settings, checkpoint_bytes)
    except TimestampError as e:
        raise TimestampError(
            f"{e.message}; nothing was exported",
            hint="try again when the TSA answers, or export with --no-timestamp",
        ) from e


def _stamp_info(settings: Settings, tsr: bytes) -> dict[str, Any]:
    """bundle.json's ``timestamp``: the TSA and the time the token states."""
    from bwc.evidence.timestamp import read_token

    return {"tsa_url": settings.timestamp.tsa_url, "gen_time": format_utc(read_token(tsr).gen_time)}


def _start_report(
    writer: BundleWriter, data: dict[str, Any], digests: dict[str, str]
) -> Callable[[], bool | str]:
    """Write custody-report.html now (fsynced and hashed like every other file), and start
    printing its PDF (headless Chromium, a second or two) in a thread unless ``data["pdf"]``
    is False, so the export's remaining writes and the footage's fsync go on meanwhile.
    Returns the join: bundle.json's ``pdf`` value (True, or why there is no PDF), or the
    printing's error. Call it in every case (it waits for Chromium, so nothing writes into a
    folder being removed)."""
    from bwc.evidence.bundle.pdf import print_pdf
    from bwc.evidence.bundle.report import render_html

    html = render_html(_report_values(data)).encode("utf-8")
    html_path = writer.share(layout.REPORT_HTML, html)
    digests[layout.REPORT_HTML] = hashlib.sha256(html).hexdigest()
    if not data["pdf"]:
        return lambda: "not asked for (--no-pdf)"
    failed: list[BaseException] = []
    pdf_path = writer.outside(layout.REPORT_PDF)

    def run() -> None:
        try:
            print_pdf(html_path, pdf_path)
        except BaseException as e:  # handed to the joining thread, never lost
            failed.append(e)

    printer = threading.Thread(target=run, name="bwc-export-pdf", daemon=True)
    printer.start()

    def join() -> bool | str:
        printer.join()
        if failed:
            raise failed[0]
        return True

    return join


def _report_values(data: dict[str, Any]) -> ReportData:
    """The report's input from what the export gathered: the events are exactly the decoded
    leaves of each item's custody.json (docs/bundle.md)."""
    import base64

    from bwc.evidence.manifest import parse_manifest

    def media(item: Item) -> dict[str, Any] | None:
        try:
            return parse_manifest(item.manifest).media
        except BwcError:
            return None  # a failed item's manifest: its failures say why

    items = []
    for item in data["items"]:
        res = data["results"][item.sha256]
        items.append(
            ReportItem(
                sha256=item.sha256,
                file=res.file,
                original_path=item.original_path,
                size=item.size,
                device_id=item.device_id,
                officer_id=item.officer_id,
                recorded_start=item.recorded_start,
                recorded_end=item.recorded_end,
                ingested_at=item.ingested_at,
                station_id=item.station_id,
                key_id=item.key_id,
                media=media(item),
                verified=res.verified,
                failures=res.failures,
                events=[
                    ReportEvent(e.index, e.kind, e.at, e.actor, e.station_id, e.details)
                    for e in data["events"][item.sha256]
                ],
            )
        )
    cp = note.unverified_checkpoint(data["checkpoint"])
    stamp = data["timestamp"]
    gen_time = None
    if stamp is not None:
        from bwc.evidence.timestamp import read_token

        gen_time = read_token(stamp[0]).gen_time
    return ReportData(
        bundle_id=data["bundle_id"],
        created_at=data["created_at"],
        station=data["station"],
        actor=data["actor"],
        recipient=data["recipient"],
        lang=data["lang"],
        tz=data["tz"],
        timezone_name=data["timezone"],
        selection=data["selection"],
        checkpoint_size=cp.size,
        checkpoint_root_b64=base64.b64encode(cp.root).decode("ascii"),
        keys=data["keys"],
        timestamp_gen_time=gen_time,
        tsa_url=data["tsa_url"] if stamp is not None else None,
        items=items,
    )


def _report_data(
    station: Station,
    req: ExportRequest,
    bundle_id: str,
    created_at: datetime,
    items: Sequence[Item],
    events: dict[str, list[DecodedEvent]],
    checkpoint: str,
    exported: Sequence[ExportedItem],
    keys: dict[str, bytes],
    stamp: tuple[bytes, bytes] | None,
) -> dict[str, Any]:
    """Everything the custody report shows (feat/report's ReportData is built from it)."""
    return {
        "bundle_id": bundle_id,
        "created_at": created_at,  # UTC, aware
        "station": station.station_id,
        "actor": station.actor,
        "recipient": req.recipient,
        "lang": req.lang,
        "timezone": station.settings.timezone,
        "tz": station.settings.tz,
        "selection": req.selection.to_json(),
        "checkpoint": checkpoint,
        "checkpoint_size": note.unverified_checkpoint(checkpoint).size,
        "keys": {kid: layout.fingerprint(pub) for kid, pub in sorted(keys.items())},
        "timestamp": stamp,  # (token, chain) or None
        "tsa_url": station.settings.timestamp.tsa_url,
        "items": list(items),  # catalog rows: manifest bytes (media summary) and columns
        "events": events,  # sha256 -> its decoded custody events in the bundle, oldest first
        "results": {e.sha256: e for e in exported},  # verified, failures, file in the bundle
        "pdf": req.pdf,
    }


# ---------------------------------------------------------------------------- the export


def export(station: Station, req: ExportRequest, progress: Progress | None = None) -> ExportResult:
    if req.lang not in layout.LANGS:
        raise UsageError(f"--lang must be zh or en, not {req.lang!r}")
    if not req.recipient.strip():
        raise UsageError("--for: say who the bundle is for")
    out = req.out
    if out.exists() or out.is_symlink():
        raise UsageError(
            f"{out} exists; an export never writes over anything", hint="give a new --out"
        )
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{parent} is not a folder", hint="create it, or give another --out")
    station.signer()  # a wrong passphrase fails before anything is read or written
    bundle_id = secrets.token_hex(16)
    if req.pdf:
        from bwc.evidence.bundle.pdf import find_chromium

        if find_chromium() is None:  # found out before anything is read, written or logged
            raise ToolError(
                "cannot print the custody report to PDF: chromium not found; nothing was exported",
                hint="install chromium (Debian: apt-get install chromium), or export with --no-pdf",
            )
    if req.timestamp and station.settings.timestamp.tsa_url:
        # the checkpoint's token is asked for after the export is logged: a TSA that is down
        # would leave a logged export with no bundle, so ask it once before anything is done
        _timestamp(station.settings, f"bwc export {bundle_id}".encode())
    partial = parent / f"{out.name}.partial-{secrets.token_hex(4)}"
    try:
        os.mkdir(partial, 0o755)
    except OSError as e:
        raise UsageError(
            f"cannot write in {parent}: {e.strerror}", hint="give another --out"
        ) from e
    writer: BundleWriter | None = None
    try:
        writer = ZipWriter(partial, _inner_name(out)) if req.zip else FolderWriter(partial)
        result = _export(station, req, bundle_id, writer, progress)
        writer.publish(out)  # the partial folder is gone after it
        fsync_dir(parent)
    except BaseException:
        if writer is not None:
            writer.discard()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    try:
        _log_bundle(station, req, result)
    except BwcError as e:
        # same error, same exit code; but the bundle is there, and the person must know
        e.message = (
            f"the bundle was written to {result.path}, but its last `exported` event (with "
            f"the SHA256SUMS digest {result.sums_sha256}) was not logged: {e.message}"
        )
        raise
    return result


def _log_bundle(station: Station, req: ExportRequest, result: ExportResult) -> None:
    """The bundle-level `exported` event: it names SHA256SUMS's digest, so it comes after
    the bundle is complete (and cannot be in it)."""
    with station.session() as s:
        custody.append_events(
            s,
            [
                station.event(
                    "exported",
                    None,
                    bundle=result.bundle_id,
                    recipient=req.recipient,
                    items=len(result.items),
                    sums_sha256=result.sums_sha256,
                    checkpoint_size=result.checkpoint_size,
                )
            ],
        )


def _inner_name(out: Path) -> str:
    return out.name[:-4] if out.name.lower().endswith(".zip") and len(out.name) > 4 else out.name


def _export(
    station: Station,
    req: ExportRequest,
    bundle_id: str,
    writer: BundleWriter,
    progress: Progress | None,
) -> ExportResult:
    store = station.store
    with station.session(snapshot=True) as s:
        items = select_items(s, req.selection)
        # read BEFORE this export publishes its own: the bundle proves the log it saw
        # extended what the store had published (what a witness or an earlier bundle holds)
        previous = store.get_checkpoint()
        t = catalog.trust_latest(s, store, trust.load(station.settings.home), station.station_id)
        logged = {i.sha256: catalog.item_events(s, i.sha256, t) for i in items}
        links = catalog.case_links(s, [i.sha256 for i in items])
    total = sum(i.size for i in items)
    done = 0
    reports: list[ItemReport] = []
    exported: list[ExportedItem] = []
    digests: dict[str, str] = {}  # bundle path -> sha256 (SHA256SUMS)
    for item in items:
        name = layout.footage_name(item.original_path)
        rel = f"{layout.item_dir(item.sha256)}/{name}"

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        digest = writer.footage(rel, item.size, _copy_object(store.open_object, item.sha256, step))
        if isinstance(digest, Digest):
            digests[rel] = digest.sha256
        rep = catalog.check_with_digest(
            store, item, logged[item.sha256], t.log, digest, links[item.sha256]
        )
        reports.append(rep)
        exported.append(
            ExportedItem(
                item.sha256,
                rel,
                item.size,
                rep.ok,
                tuple(f"{c.name}: {c.detail}" for c in rep.failures()),
            )
        )
    if t.log.ok and t.latest_note is not None:
        trust.remember(station.settings.home, t.latest_note)
    if not t.log.ok:
        # even with --include-failed: appending the export to a damaged log would bury the
        # damage under new events and a fresh checkpoint
        raise VerificationError(
            "the custody log fails verification, nothing was exported: "
            + "; ".join(list(t.log.problems)[:3]),
            hint="run `bwc log verify`",
        )
    failed = [r for r in reports if not r.ok]
    if failed and not req.include_failed:
        lines = [
            f"{r.sha256[:16]}: " + "; ".join(f"{c.name}: {c.detail}" for c in r.failures())
            for r in failed
        ]
        raise VerificationError(
            f"{len(failed)} of {len(items)} items fail verification, nothing was exported: "
            + " | ".join(lines),
            hint="run `bwc verify ID` for each; --include-failed exports them marked as failed",
        )
    for item in items:
        for meta, data in (("manifest.json", item.manifest), ("manifest.sig", item.signature)):
            _write(writer, f"{layout.item_dir(item.sha256)}/{meta}", data, digests)

    # the export in the log, then a checkpoint over it: each item's custody.json proves it
    with station.session() as s:
        custody.append_events(
            s,
            [
                station.event(
                    "exported",
                    e.sha256,
                    bundle=bundle_id,
                    recipient=req.recipient,
                    verified=e.verified,
                    # only a verified item's manifest: an `exported` event must never vouch
                    # for a manifest that failed its checks (it never decides the logged
                    # manifest: events.MANIFEST_KINDS)
                    **(
                        {"manifest_sha256": custody.manifest_sha256(i.manifest)}
                        if e.verified
                        else {"failures": list(e.failures)}
                    ),
                )
                for e, i in zip(exported, items, strict=True)
            ],
        )
    checkpoint = station.checkpoint()
    cp = note.unverified_checkpoint(checkpoint)  # just signed by this station
    now = station.clock.now()
    created_at = format_utc(now)
    decoded_events: dict[str, list[DecodedEvent]] = {}
    key_ids = {i.key_id for i in items}
    with station.session(snapshot=True) as s:
        tree = custody.tree(s, cp.size)
        for item in items:
            entries = []
            decoded_events[item.sha256] = []
            for ev in custody.iter_events(s, item.sha256):
                if ev.idx >= cp.size:
                    continue  # appended after the checkpoint (another station): not proven
                entries.append((ev.idx, ev.leaf, tree.inclusion_proof(ev.idx)))
                decoded_events[item.sha256].append(decode_leaf(ev.leaf))
            data = layout.custody_json(item.sha256, cp.origin, cp.size, entries)
            rel = f"{layout.item_dir(item.sha256)}/custody.json"
            _write(writer, rel, data, digests)
        from_size = 0
        proof: list[bytes] = []
        if previous is not None:
            from_size = note.unverified_checkpoint(previous).size
            if from_size > cp.size:
                raise VerificationError(
                    f"the store's published checkpoint (size {from_size}) is newer than the "
                    f"one this export signed ({cp.size}): the catalog was rolled back?",
                    hint="run `bwc log verify`",
                )
            proof = tree.consistency_proof(from_size, cp.size) if from_size else []
        sums_key = station.signer().key_id
        key_ids.add(sums_key)
        key_ids.update(_note_keys(s, previous))
        keys = {k.key_id: k.public_key for k in s.exec(select(SigningKey)) if k.key_id in key_ids}
    _write(writer, layout.CHECKPOINT, checkpoint.encode("utf-8"), digests)
    _write(
        writer,
        layout.CONSISTENCY,
        layout.consistency_json(previous if from_size else None, from_size, proof, cp.size),
        digests,
    )
    stamp = _timestamp(station.settings, checkpoint.encode("utf-8")) if req.timestamp else None
    if stamp is not None:
        _write(writer, layout.TSR, stamp[0], digests)
        _write(writer, layout.TSA_PEM, stamp[1], digests)
    for kid, pub in keys.items():
        _write(writer, layout.key_path(kid), public_pem(pub).encode("ascii"), digests)
    _write(writer, layout.FINGERPRINTS, layout.fingerprints_txt(keys), digests)
    finish_report = _start_report(
        writer,
        _report_data(
            station,
            req,
            bundle_id,
            now,
            items,
            decoded_events,
            checkpoint,
            exported,
            keys,
            stamp,
        ),
        digests,
    )
    try:
        try:
            verifier = VERIFY_PY_SOURCE.read_bytes()
        except OSError as exc:
            raise BwcError(
                f"{VERIFY_PY_SOURCE} is missing: this installation of bwc is broken"
            ) from exc
        _write(writer, layout.VERIFY_PY, verifier, digests)
        first = items[0]
        readme = layout.readme_text(
            req.lang,
            sums_key=sums_key,
            example_item=first.sha256,
            example_key=first.key_id,
            timestamp=stamp is not None,
            verify_py=True,
        )
        _write(writer, layout.README, readme, digests)
        # the footage was written without fsync (the disk wrote it back meanwhile): now,
        # while Chromium prints the report
        writer.sync_footage()
    finally:
        pdf = finish_report()  # waits for Chromium (and raises what it raised)
    pdf_sha256 = writer.take(layout.REPORT_PDF)
    if pdf_sha256 is not None:
        digests[layout.REPORT_PDF] = pdf_sha256
    info = {
        "format": layout.FORMAT,
        "bundle_id": bundle_id,
        "created_at": created_at,
        "station": station.station_id,
        "actor": station.actor,
        "recipient": req.recipient,
        "lang": req.lang,
        "timezone": station.settings.timezone,
        "selection": req.selection.to_json(),
        "sums_key": sums_key,
        "checkpoint_size": cp.size,
        "pdf": pdf,
        "timestamp": None if stamp is None else _stamp_info(station.settings, stamp[0]),
        "items": [
            {
                "sha256": e.sha256,
                "file": e.file,
                "original_path": i.original_path,
                "size": e.size,
                "verified": e.verified,
                "failures": list(e.failures),
            }
            for e, i in zip(exported, items, strict=True)
        ],
    }
    _write(writer, layout.BUNDLE_JSON, layout.bundle_json(info), digests)
    sums = layout.sums_text(digests)
    writer.write(layout.SUMS, sums)
    writer.write(layout.SUMS_SIG, station.signer().sign(sums))
    writer.finish()  # everything durable before the bundle is put in place
    return ExportResult(bundle_id, req.out, hashlib.sha256(sums).hexdigest(), cp.size, exported)


def _note_keys(session: Session, text: str | None) -> set[str]:
    """The catalog keys that signed the note ``text`` (the previous checkpoint): the bundle
    carries them so its consistency proof's starting point can be checked."""
    if not text:
        return set()
    found = set()
    for k in session.exec(select(SigningKey)):
        try:
            note.open_note(text, [note.Verifier.from_public_key(k.station_id, k.public_key)])
        except BwcError:
            continue
        found.add(k.key_id)
    return found


# ---------------------------------------------------------------------------- files


def _copy_object(
    open_object: Callable[[str], BinaryIO], sha256: str, step: Callable[[int], None]
) -> Fill:
    """How the stored object goes into the bundle: copied while it is hashed (one read; see
    ``copyout.copy_object``). The digest is the object check; a read error is the item's
    failure (the writer keeps no part of it), a write error the export's."""

    def fill(dst: Sink) -> Digest | BwcError:
        return copy_object(open_object, sha256, dst, step)

    return fill


def _write(writer: BundleWriter, rel: str, data: bytes, digests: dict[str, str]) -> None:
    """A small file of the bundle, and its digest for SHA256SUMS."""
    writer.write(rel, data)
    digests[rel] = hashlib.sha256(data).hexdigest()
