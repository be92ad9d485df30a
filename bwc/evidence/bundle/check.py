"""`bwc verify-bundle`: the checks of docs/bundle.md with bwc's own code (cryptography's
Ed25519, bwc.evidence.merkle, bwc.evidence.note, events.decode_leaf). No catalog, store or
home: a bundle is read through a small reader (a folder or a zip) and every check is one
line of the report. Every file is read once: hashed for SHA256SUMS, and the footage's digest
is also its manifest check."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import re
import stat
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from bwc.errors import BwcError, ProofError, UsageError, VerificationError
from bwc.evidence import note
from bwc.evidence.bundle import layout
from bwc.evidence.canonical import canonical_json, loads
from bwc.evidence.events import MANIFEST_KINDS, decode_leaf
from bwc.evidence.manifest import parse_manifest
from bwc.evidence.merkle import leaf_hash, verify_consistency, verify_inclusion
from bwc.evidence.signing import key_id_for, verify_signature

_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------------------- readers


class BundleReader(Protocol):
    """What the checks read: the bundle's regular files by path relative to its root."""

    def files(self) -> list[str]: ...

    def problems(self) -> list[str]:
        """What is in the bundle that may not be (a symlink, a device, a path escaping)."""
        ...

    def read(self, path: str) -> bytes | None:
        """A small file's bytes, or None when it is not there."""
        ...

    def open(self, path: str) -> BinaryIO: ...


class FolderReader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: list[str] = []
        self._problems: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                p = Path(dirpath) / name
                rel = p.relative_to(root).as_posix()
                mode = p.lstat().st_mode
                if stat.S_ISLNK(mode):
                    self._problems.append(f"{rel}: a symlink (a bundle holds none)")
                elif stat.S_ISREG(mode):
                    self._files.append(rel)
                elif not stat.S_ISDIR(mode):
                    self._problems.append(f"{rel}: not a regular file")
            dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]

    def files(self) -> list[str]:
        return list(self._files)

    def problems(self) -> list[str]:
        return list(self._problems)

    def read(self, path: str) -> bytes | None:
        if path not in self._files:
            return None
        return (self.root / path).read_bytes()

    def open(self, path: str) -> BinaryIO:
        return open(self.root / path, "rb")


class ZipReader:
    """A zip of one folder (what `bwc export --zip` writes): paths relative to that folder."""

    def __init__(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise UsageError(f"{path} is not a readable zip: {e}") from e
        self._names: dict[str, str] = {}
        self._problems: list[str] = []
        tops = {n.split("/", 1)[0] for n in self._zip.namelist()}
        prefix = f"{tops.pop()}/" if len(tops) == 1 else ""
        for info in self._zip.infolist():
            name = info.filename
            rel = name[len(prefix) :] if name.startswith(prefix) else name
            if info.is_dir() or not rel:
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                self._problems.append(f"{rel}: a symlink (a bundle holds none)")
                continue
            parts = PurePosixPath(rel).parts
            if rel.startswith("/") or ".." in parts or "\\" in rel:
                self._problems.append(f"{rel}: a path outside the bundle")
                continue
            self._names[rel] = name

    def files(self) -> list[str]:
        return list(self._names)

    def problems(self) -> list[str]:
        return list(self._problems)

    def read(self, path: str) -> bytes | None:
        name = self._names.get(path)
        return None if name is None else self._zip.read(name)

    def open(self, path: str) -> BinaryIO:
        return self._zip.open(self._names[path])  # type: ignore[return-value]


def open_bundle(path: Path) -> BundleReader:
    if path.is_dir():
        return FolderReader(path)
    if path.is_file():
        return ZipReader(path)
    raise UsageError(f"{path} is not a bundle folder or zip")


# ---------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Line:
    ok: bool
    what: str  # the file (and item) checked
    detail: str


@dataclass
class BundleReport:
    bundle_id: str
    lines: list[Line] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(x.ok for x in self.lines)

    def add(self, ok: bool, what: str, detail: str) -> None:
        self.lines.append(Line(ok, what, detail))

    def failures(self) -> list[Line]:
        return [x for x in self.lines if not x.ok]


# ---------------------------------------------------------------------------- the checks


def check_bundle(reader: BundleReader, pinned: Sequence[str] = ()) -> BundleReport:
    """Every check of docs/bundle.md. UsageError when it is not a bundle at all."""
    info = _bundle_info(reader)
    rep = BundleReport(str(info.get("bundle_id", "")))
    raw_sums = reader.read(layout.SUMS)
    if raw_sums is None:
        raise UsageError("not a bundle: SHA256SUMS is missing")
    bundle_raw = reader.read(layout.BUNDLE_JSON) or b""
    if canonical_json(info) != bundle_raw:
        rep.add(False, layout.BUNDLE_JSON, "not in canonical JSON form (edited?)")
    digests = _sums(reader, raw_sums, rep)
    _layout(reader, info, rep)
    keys = _keys(reader, rep, pinned)
    _sums_sig(reader, raw_sums, info, keys, rep)
    cp = _checkpoint(reader, info, keys, rep)
    _consistency(reader, cp, keys, rep)
    _items(reader, info, digests, keys, cp, rep)
    _timestamp(reader, rep)
    return rep


def _bundle_info(reader: BundleReader) -> dict[str, Any]:
    raw = reader.read(layout.BUNDLE_JSON)
    if raw is None:
        raise UsageError("not a bundle: bundle.json is missing")
    try:
        info = loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"not a bundle: bundle.json is not JSON ({e})") from e
    if not isinstance(info, dict) or info.get("format") != layout.FORMAT:
        fmt = info.get("format") if isinstance(info, dict) else None
        raise UsageError(f"not a bundle of a known format: bundle.json says format {fmt!r}")
    return info


def _hash(reader: BundleReader, path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with reader.open(path) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _sums(reader: BundleReader, raw: bytes, rep: BundleReport) -> dict[str, tuple[str, int]]:
    """SHA256SUMS against the files; returns each present file's digest and size."""
    listed, problems = layout.parse_sums(raw)
    for p in problems:
        rep.add(False, layout.SUMS, p)
    for p in reader.problems():
        rep.add(False, p.split(":", 1)[0], p.split(": ", 1)[-1])
    present = set(reader.files())
    digests: dict[str, tuple[str, int]] = {}
    unreadable = set()
    for path in layout.listed(present):
        try:
            digests[path] = _hash(reader, path)
        except (OSError, zipfile.BadZipFile) as e:  # a zip's CRC: the bytes were changed
            unreadable.add(path)
            rep.add(False, path, f"cannot be read: {e}")
    for path in layout.listed(listed):
        if path in unreadable:
            continue
        if path not in present:
            rep.add(False, path, "listed in SHA256SUMS but missing (a file was removed)")
        elif not hmac.compare_digest(digests[path][0], listed[path]):
            rep.add(False, path, "SHA-256 differs from SHA256SUMS (the file was changed)")
        else:
            rep.add(True, path, "SHA-256 matches SHA256SUMS")
    for path in layout.listed(present - set(listed) - {layout.SUMS, layout.SUMS_SIG}):
        rep.add(False, path, "not listed in SHA256SUMS (a file was added)")
    if layout.SUMS_SIG not in present:
        rep.add(False, layout.SUMS_SIG, "missing (a file was removed)")
    return digests


_KEY_FILE = re.compile(r"^keys/[0-9a-f]{16}\.pem$")
_FIXED = {
    layout.README,
    layout.VERIFY_PY,
    layout.BUNDLE_JSON,
    layout.REPORT_HTML,
    layout.REPORT_PDF,
    layout.CHECKPOINT,
    layout.CONSISTENCY,
    layout.TSR,
    layout.TSA_PEM,
    layout.FINGERPRINTS,
    layout.SUMS,
    layout.SUMS_SIG,
}


def _layout(reader: BundleReader, info: Mapping[str, Any], rep: BundleReport) -> None:
    """No file but those docs/bundle.md lays out (a file listed in a re-written SHA256SUMS
    is still one too many)."""
    allowed = set(_FIXED)
    items = info.get("items")
    for e in items if isinstance(items, list) else []:
        if isinstance(e, dict) and isinstance(e.get("sha256"), str):
            d = layout.item_dir(e["sha256"])
            allowed |= {f"{d}/{m}" for m in layout.ITEM_META}
            if isinstance(e.get("file"), str) and e["file"].startswith(d + "/"):
                allowed.add(e["file"])
    for path in layout.listed(reader.files()):
        if path not in allowed and not _KEY_FILE.match(path):
            rep.add(False, path, "not a file of the bundle's layout (a file was added)")


def _keys(reader: BundleReader, rep: BundleReport, pinned: Sequence[str]) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    parsed: list[tuple[str, bytes]] = []  # every key file that holds a key, for the pins
    for path in layout.listed(reader.files()):
        if not (path.startswith("keys/") and path.endswith(".pem")) or path.count("/") != 1:
            continue
        kid = path[len("keys/") : -len(".pem")]
        raw = reader.read(path) or b""
        try:
            key = load_pem_public_key(raw)
        except (ValueError, UnsupportedAlgorithm) as e:
            rep.add(False, path, f"not a PEM public key: {e}")
            continue
        if not isinstance(key, Ed25519PublicKey):
            rep.add(False, path, "not an Ed25519 key")
            continue
        pub = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        parsed.append((path, pub))
        if key_id_for(pub) != kid:
            rep.add(False, path, f"holds key {key_id_for(pub)}, not the key its name says")
            continue
        keys[kid] = pub
    if not keys:
        rep.add(False, "keys/", "no usable public key in the bundle")
    fp = reader.read(layout.FINGERPRINTS)
    if fp is None:
        rep.add(False, layout.FINGERPRINTS, "missing")
    elif fp != layout.fingerprints_txt(keys):
        rep.add(False, layout.FINGERPRINTS, "does not list the fingerprints of keys/*.pem")
    else:
        rep.add(True, layout.FINGERPRINTS, f"fingerprints of {len(keys)} keys match keys/*.pem")
    if pinned:
        want = {p.strip().lower() for p in pinned}
        for path, pub in parsed:
            fpr = layout.fingerprint(pub)
            if fpr in want:
                rep.add(True, path, f"fingerprint {fpr} is one of the --key ones")
            else:
                rep.add(
                    False,
                    path,
                    f"fingerprint {fpr} is not one of the --key fingerprints (not the "
                    "bureau's key)",
                )
    return keys


def _sums_sig(
    reader: BundleReader,
    raw: bytes,
    info: Mapping[str, Any],
    keys: Mapping[str, bytes],
    rep: BundleReport,
) -> None:
    sig = reader.read(layout.SUMS_SIG)
    kid = info.get("sums_key")
    if sig is None:
        return  # reported with the files
    pub = keys.get(kid) if isinstance(kid, str) else None
    if pub is None:
        rep.add(False, layout.SUMS_SIG, f"bundle.json's sums_key {kid!r} is not in keys/")
    elif not verify_signature(pub, raw, sig):
        rep.add(False, layout.SUMS_SIG, f"signature over SHA256SUMS does not verify with {kid}")
    else:
        rep.add(True, layout.SUMS_SIG, f"SHA256SUMS signed by key {kid}")


def _verifiers(text: str, keys: Mapping[str, bytes]) -> list[note.Verifier]:
    """Note verifiers for every bundle key under every signer name the note shows."""
    names = set()
    for line in text.split("\n\n", 1)[-1].splitlines():
        if line.startswith("\u2014 "):
            names.add(line[2:].split(" ", 1)[0])
    out = []
    for name in sorted(names):
        for pub in keys.values():
            try:
                out.append(note.Verifier.from_public_key(name, pub))
            except BwcError:
                continue
    return out


def _checkpoint(
    reader: BundleReader, info: Mapping[str, Any], keys: Mapping[str, bytes], rep: BundleReport
) -> note.Checkpoint | None:
    raw = reader.read(layout.CHECKPOINT)
    if raw is None:
        rep.add(False, layout.CHECKPOINT, "missing")
        return None
    try:
        text = raw.decode("utf-8")
        cp = note.open_checkpoint(text, _verifiers(text, keys))
    except (UnicodeDecodeError, BwcError) as e:
        rep.add(False, layout.CHECKPOINT, f"signature or form does not verify: {e}")
        return None
    if cp.size != info.get("checkpoint_size"):
        rep.add(
            False,
            layout.CHECKPOINT,
            f"size {cp.size}, but bundle.json says {info.get('checkpoint_size')!r}",
        )
        return None
    rep.add(True, layout.CHECKPOINT, f"signed checkpoint of {cp.origin}, size {cp.size}")
    return cp


def _b64(value: object) -> bytes:
    """Standard, padded, canonical base64 only (as verify.py and the log's notes): one text
    for one byte string, so a bundle cannot be altered without the change being seen."""
    raw = note.b64decode_strict(value) if isinstance(value, str) else None
    if raw is None:
        raise ValueError(f"{value!r:.40} is not canonical base64")
    return raw


def _b64list(values: object) -> list[bytes]:
    if not isinstance(values, list):
        raise ValueError("not a list")
    return [_b64(v) for v in values]


def _canonical(raw: bytes) -> Any:
    """The JSON in ``raw``, which must be in its canonical form (RFC 8785), as written."""
    obj = loads(raw)
    if canonical_json(obj) != raw:
        raise ValueError("not in canonical JSON form (RFC 8785)")
    return obj


def _consistency(
    reader: BundleReader, cp: note.Checkpoint | None, keys: Mapping[str, bytes], rep: BundleReport
) -> None:
    what = layout.CONSISTENCY
    raw = reader.read(what)
    if raw is None:
        rep.add(False, what, "missing")
        return
    try:
        c = _canonical(raw)
        from_note, m, n = c["from_checkpoint"], c["from_size"], c["to_size"]
        proof = _b64list(c["proof"])
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        rep.add(False, what, f"malformed: {e}")
        return
    if cp is None:
        rep.add(False, what, "not checked: log/checkpoint does not verify")
        return
    if n != cp.size:
        rep.add(False, what, f"to_size {n} is not the checkpoint's size {cp.size}")
        return
    if from_note is None:
        if m != 0 or proof:
            rep.add(False, what, "no from_checkpoint, but a size or a proof")
        else:
            rep.add(True, what, "no checkpoint was published before this export")
        return
    try:
        older = note.open_checkpoint(from_note, _verifiers(str(from_note), keys))
    except BwcError as e:
        rep.add(False, what, f"from_checkpoint does not verify: {e}")
        return
    if older.size != m or older.origin != cp.origin:
        rep.add(False, what, "from_checkpoint's size or origin is not the one stated")
        return
    try:
        verify_consistency(m, n, proof, older.root, cp.root)
    except ProofError as e:
        rep.add(False, what, f"the log at export does not extend the published one: {e}")
        return
    rep.add(True, what, f"log of size {n} extends the checkpoint published at size {m}")


def _items(
    reader: BundleReader,
    info: Mapping[str, Any],
    digests: Mapping[str, tuple[str, int]],
    keys: Mapping[str, bytes],
    cp: note.Checkpoint | None,
    rep: BundleReport,
) -> None:
    entries = info.get("items")
    if not isinstance(entries, list) or not entries:
        rep.add(False, layout.BUNDLE_JSON, "lists no items")
        return
    named = set()
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("sha256"), str):
            rep.add(False, layout.BUNDLE_JSON, "an item entry is malformed")
            continue
        named.add(e["sha256"])
        _item(reader, info, e, digests, keys, cp, rep)
    present = {p.split("/")[1] for p in digests if p.startswith("items/") and p.count("/") == 2}
    for extra in sorted(present - named):
        rep.add(False, f"items/{extra}/", "an item folder bundle.json does not list")


def _item(
    reader: BundleReader,
    info: Mapping[str, Any],
    e: Mapping[str, Any],
    digests: Mapping[str, tuple[str, int]],
    keys: Mapping[str, bytes],
    cp: note.Checkpoint | None,
    rep: BundleReport,
) -> None:
    sha = e["sha256"]
    folder = layout.item_dir(sha)
    if not _HEX64.match(sha):
        rep.add(False, layout.BUNDLE_JSON, f"item {sha!r} is not a sha256")
        return
    if e.get("verified") is not True:
        why = "; ".join(str(x) for x in e.get("failures") or []) or "no reason given"
        rep.add(False, folder, f"exported marked as failed at export: {why}")
    file = e.get("file")
    manifest = reader.read(f"{folder}/manifest.json")
    sig = reader.read(f"{folder}/manifest.sig")
    if manifest is None or sig is None:
        rep.add(False, folder, "manifest.json or manifest.sig is missing")
        return
    try:
        m = parse_manifest(manifest)
    except VerificationError as e2:
        rep.add(False, f"{folder}/manifest.json", f"malformed: {e2}")
        return
    # the footage
    if not isinstance(file, str) or not file.startswith(folder + "/") or file not in digests:
        rep.add(False, folder, f"the footage file {file!r} is missing")
    elif m.sha256 != sha:
        rep.add(False, f"{folder}/manifest.json", f"is about {m.sha256[:12]}…, not this item")
    else:
        got, size = digests[file]
        if size != m.size or not hmac.compare_digest(got, m.sha256):
            rep.add(
                False,
                file,
                f"{size} bytes hashing to {got[:12]}…, the manifest says {m.size} "
                f"bytes, {m.sha256[:12]}… (the footage was changed)",
            )
        else:
            rep.add(True, file, f"{size} bytes, SHA-256 is the manifest's")
    pub = keys.get(m.key_id)
    if pub is None:
        rep.add(False, f"{folder}/manifest.sig", f"key {m.key_id} is not in keys/")
    elif not verify_signature(pub, manifest, sig):
        rep.add(
            False,
            f"{folder}/manifest.sig",
            f"does not verify over {folder}/manifest.json with key {m.key_id}",
        )
    else:
        rep.add(True, f"{folder}/manifest.sig", f"manifest signed by key {m.key_id}")
    _custody(reader, info, sha, manifest, cp, rep)


def _custody(
    reader: BundleReader,
    info: Mapping[str, Any],
    sha: str,
    manifest: bytes,
    cp: note.Checkpoint | None,
    rep: BundleReport,
) -> None:
    what = f"{layout.item_dir(sha)}/custody.json"
    raw = reader.read(what)
    if raw is None:
        rep.add(False, what, "missing")
        return
    try:
        c = _canonical(raw)
        events = [(int(x["index"]), _b64(x["leaf"]), _b64list(x["proof"])) for x in c["events"]]
        size, origin, item = c["checkpoint_size"], c["origin"], c["sha256"]
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        rep.add(False, what, f"malformed: {e}")
        return
    if cp is None:
        rep.add(False, what, "not checked: log/checkpoint does not verify")
        return
    problems = []
    if item != sha or size != cp.size or origin != cp.origin:
        problems.append("its sha256, checkpoint_size or origin is not the bundle's")
    decoded = []
    last = -1
    for idx, leaf, proof in events:
        if idx <= last:
            problems.append(f"event #{idx} is out of order")
        last = idx
        try:
            d = decode_leaf(leaf)
        except ValueError as e:
            problems.append(f"event #{idx}: {e}")
            continue
        if d.index != idx or d.item_sha256 != sha:
            problems.append(f"event #{idx}: the leaf is event #{d.index} of another item or index")
            continue
        try:
            verify_inclusion(leaf_hash(leaf), idx, cp.size, proof, cp.root)
        except ProofError as e:
            problems.append(f"event #{idx} ({d.kind}) is not in the signed log: {e}")
            continue
        decoded.append(d)
    if not decoded or decoded[0].kind != "ingested" or decoded[0].index != events[0][0]:
        problems.append("the first custody event is not `ingested`")
    logged = None
    for d in decoded:
        if d.kind in MANIFEST_KINDS and isinstance(d.details.get("manifest_sha256"), str):
            logged = d.details["manifest_sha256"]
    actual = hashlib.sha256(manifest).hexdigest()
    if logged is None or not hmac.compare_digest(logged, actual):
        problems.append(
            f"{layout.item_dir(sha)}/manifest.json is not the manifest the custody log recorded"
        )
    mine = [
        d
        for d in decoded
        if d.kind == "exported" and d.details.get("bundle") == info.get("bundle_id")
    ]
    if not mine:
        problems.append("no `exported` event of this bundle (the bundle does not prove its export)")
    for d in mine:
        logged_as = {
            "recipient": d.details.get("recipient"),
            "actor": d.actor,
            "station": d.station_id,
        }
        for k, v in logged_as.items():
            if info.get(k) != v:
                rep.add(
                    False,
                    layout.BUNDLE_JSON,
                    f"its {k} {info.get(k)!r} is not the logged one ({v!r}, {what})",
                )
    if any(d.kind == "deleted-by-policy" for d in decoded):
        problems.append("the log says this item was deleted by policy")
    if problems:
        rep.add(False, what, "; ".join(problems))
    else:
        n = len(decoded)
        rep.add(
            True, what, f"{n} custody event{'' if n == 1 else 's'}, each proven in the checkpoint"
        )


def _timestamp(reader: BundleReader, rep: BundleReport) -> None:
    """RFC 3161: the token's imprint is SHA-256 of log/checkpoint, and its signature chains
    to a root in log/tsa.pem."""
    tsr = reader.read(layout.TSR)
    chain = reader.read(layout.TSA_PEM)
    if tsr is None and chain is None:
        return
    if tsr is None or chain is None:
        rep.add(False, layout.TSR, "log/checkpoint.tsr and log/tsa.pem come together")
        return
    cp = reader.read(layout.CHECKPOINT) or b""
    from cryptography import x509
    from rfc3161_client import VerificationError as TimestampError
    from rfc3161_client import VerifierBuilder, decode_timestamp_response

    try:
        resp = decode_timestamp_response(tsr)
        certs = x509.load_pem_x509_certificates(chain)
    except ValueError as e:
        rep.add(False, layout.TSR, f"malformed: {e}")
        return
    imprint = resp.tst_info.message_imprint.message
    if not hmac.compare_digest(imprint, hashlib.sha256(cp).digest()):
        rep.add(False, layout.TSR, "its message imprint is not SHA-256 of log/checkpoint")
        return
    b = VerifierBuilder()
    for c in certs:
        b = (
            b.add_root_certificate(c)
            if c.issuer == c.subject
            else b.add_intermediate_certificate(c)
        )
    try:
        b.build().verify_message(resp, cp)
    except (TimestampError, ValueError) as e:
        rep.add(False, layout.TSR, f"the timestamp's signature does not verify: {e}")
        return
    rep.add(True, layout.TSR, f"timestamped at {resp.tst_info.gen_time.isoformat()}")


def lines_of(rep: BundleReport) -> Iterator[str]:
    for x in rep.lines:
        yield f"{'ok  ' if x.ok else 'FAIL'}  {x.what}: {x.detail}"
