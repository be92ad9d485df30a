"""A court bundle (docs/bundle.md, bwc-bundle/1) built from values, for the verifiers' tests.

A second, independent writer of the format (bwc's own signing, note, Merkle, event and
manifest code, assembled here by hand from the spec), so the standalone ``verify.py`` and the
real exporter (``bwc export``) are each checked against something they did not write.

``make_bundle(tmp_path, items=2, lang="en")`` returns the bundle folder; ``reseal(bundle)``
recomputes SHA256SUMS and re-signs it with the station key, for tests that show a deeper
check catches an edit even by someone who holds that key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bwc.evidence import note
from bwc.evidence.canonical import canonical_json
from bwc.evidence.events import NewEvent, event_leaf
from bwc.evidence.manifest import Manifest
from bwc.evidence.merkle import MerkleTree, leaf_hash
from bwc.evidence.signing import Ed25519Signer, public_pem

VERIFY_PY = Path(__file__).resolve().parents[1] / "bwc" / "evidence" / "bundle" / "verify.py"

STATION = "station-07.example"
BUNDLE_ID = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def fixed_key(label: str) -> Ed25519PrivateKey:
    """A deterministic key, so failures replay."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


STATION_KEY = fixed_key("bwc test station key")
OLD_KEY = fixed_key("bwc test station key, before rotation")
OTHER_KEY = fixed_key("someone else's key")


@dataclass
class ItemSpec:
    name: str = "clip.mp4"
    content: bytes | None = None  # default: a few KiB derived from the name
    verified: bool = True
    failures: list[str] = field(default_factory=list)
    old_key: bool = False  # manifest signed by the key in use before a rotation


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_bundle(
    tmp_path: Path,
    *,
    items: int | list[ItemSpec] = 2,
    lang: str = "en",
    published: bool = True,
    tsa: bool = False,
    name: str = "bundle",
    extra_events: tuple[tuple[int, str], ...] = (),
) -> Path:
    """Write a spec-conformant bundle under ``tmp_path / name`` and return its folder.

    The log: an intake (``ingested``) per item with unrelated events between, a checkpoint
    published at that point (``published``), then one ``exported`` event per item, then the
    export's checkpoint; consistency.json proves the second extends the first.
    ``extra_events`` logs (item number, kind) events after the intakes. With ``tsa``,
    log/checkpoint.tsr is a real RFC 3161 response from a throwaway openssl TSA."""
    specs = (
        [ItemSpec(name=f"clip{i}.mp4") for i in range(items)] if isinstance(items, int) else items
    )
    root = tmp_path / name
    root.mkdir(parents=True)
    station = Ed25519Signer(STATION_KEY)
    old = Ed25519Signer(OLD_KEY)
    log_signer = note.Signer.from_private_key(STATION, STATION_KEY)

    leaves: list[bytes] = []

    def log(kind: str, item: str | None, details: dict[str, Any], minutes: int) -> None:
        ev = NewEvent(kind, T0 + timedelta(minutes=minutes), "clerk-1", STATION, item, details)
        leaves.append(event_leaf(len(leaves), ev))

    log("docked", None, {"device": "CAM-1"}, 0)
    entries = []
    for n, spec in enumerate(specs):
        content = spec.content
        if content is None:
            content = hashlib.sha512(spec.name.encode()).digest() * 64
        sha = hashlib.sha256(content).hexdigest()
        signer = old if spec.old_key else station
        manifest = Manifest(
            sha256=sha,
            size=len(content),
            path=f"DCIM/100/{spec.name}",
            path_encoding="utf-8",
            device_id="CAM-1",
            officer_id="OFF-9",
            recorded_start=T0 - timedelta(hours=2),
            recorded_end=None,
            start_source="profile",
            media=None,
            station_id=STATION,
            ingested_at=T0 + timedelta(minutes=n + 1),
            key_id=signer.key_id,
            flags=(),
        ).canonical()
        log("ingested", sha, {"manifest_sha256": hashlib.sha256(manifest).hexdigest()}, n + 1)
        log("seen-again", None, {"note": "another camera"}, n + 1)
        entries.append((spec, sha, content, manifest, signer.sign(manifest), signer))

    for n, kind in extra_events:  # (item number, event kind), logged after every intake
        log(kind, entries[n][1], {"reason": "test"}, 50)

    published_size = len(leaves)
    published_tree = MerkleTree([leaf_hash(leaf) for leaf in leaves])
    published_note = note.sign_checkpoint(
        note.Checkpoint(STATION, published_size, published_tree.root()), log_signer
    )
    for spec, sha, _content, manifest, _sig, _s in entries:
        details = {
            "bundle": BUNDLE_ID,
            "recipient": "Court 3",
            "verified": spec.verified,
            "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        }
        log("exported", sha, details, 100)
    tree = MerkleTree([leaf_hash(leaf) for leaf in leaves])
    size = tree.size
    checkpoint = note.sign_checkpoint(note.Checkpoint(STATION, size, tree.root()), log_signer)

    bundle_items = []
    for spec, sha, content, manifest, sig, _signer in entries:
        folder = root / "items" / sha
        _write(folder / spec.name, content)
        _write(folder / "manifest.json", manifest)
        _write(folder / "manifest.sig", sig)
        events = []
        for index, leaf in enumerate(leaves):
            if json.loads(leaf)["item"] == sha:
                proof = tree.inclusion_proof(index, size)
                events.append(
                    {"index": index, "leaf": _b64(leaf), "proof": [_b64(h) for h in proof]}
                )
        custody = {"checkpoint_size": size, "events": events, "origin": STATION, "sha256": sha}
        _write(folder / "custody.json", canonical_json(custody))
        bundle_items.append(
            {
                "failures": spec.failures,
                "file": f"items/{sha}/{spec.name}",
                "original_path": f"DCIM/100/{spec.name}",
                "sha256": sha,
                "size": len(content),
                "verified": spec.verified,
            }
        )
    bundle_items.sort(key=lambda i: str(i["sha256"]))

    _write(root / "log" / "checkpoint", checkpoint.encode("utf-8"))
    if published:
        consistency = {
            "from_checkpoint": published_note,
            "from_size": published_size,
            "proof": [_b64(h) for h in tree.consistency_proof(published_size, size)],
            "to_size": size,
        }
    else:
        consistency = {"from_checkpoint": None, "from_size": 0, "proof": [], "to_size": size}
    _write(root / "log" / "consistency.json", canonical_json(consistency))

    timestamp = None
    if tsa:
        gen_time = _openssl_tsa(root / "log", tmp_path / f"{name}-tsa")
        timestamp = {"gen_time": gen_time, "tsa_url": "http://tsa.invalid/"}

    used = {station.key_id: station.public_key}
    if any(s.old_key for s in specs):
        used[old.key_id] = old.public_key
    fingerprints = []
    for key_id, pub in sorted(used.items()):
        pem = public_pem(pub).encode("ascii")
        _write(root / "keys" / f"{key_id}.pem", pem)
        der = _pem_der(pem)
        fingerprints.append(f"{hashlib.sha256(der).hexdigest()}  {key_id}.pem\n")
    _write(root / "keys" / "fingerprints.txt", "".join(sorted(fingerprints)).encode("ascii"))

    meta = {
        "actor": "clerk-1",
        "bundle_id": BUNDLE_ID,
        "checkpoint_size": size,
        "created_at": "2026-11-30T09:40:00Z",
        "format": "bwc-bundle/1",
        "items": bundle_items,
        "lang": lang,
        "pdf": "no PDF: exported with --no-pdf",
        "recipient": "Court 3",
        "selection": {"case": "CASE-2026-0042"},
        "station": STATION,
        "sums_key": station.key_id,
        "timestamp": timestamp,
        "timezone": "Asia/Shanghai",
    }
    _write(root / "bundle.json", canonical_json(meta))
    _write(root / "README.txt", "如何核验 / How to check this bundle: ...\n".encode())
    _write(root / "custody-report.html", b"<!doctype html><title>custody</title>\n")
    shutil.copyfile(VERIFY_PY, root / "verify.py")
    reseal(root)
    return root


def _pem_der(pem: bytes) -> bytes:
    import base64

    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    return base64.b64decode(body)


def reseal(root: Path, key: Ed25519PrivateKey = STATION_KEY) -> None:
    """Write SHA256SUMS for every file but itself and its signature, and sign it."""
    lines = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and rel not in ("SHA256SUMS", "SHA256SUMS.sig"):
            lines.append((rel.encode("utf-8"), hashlib.sha256(path.read_bytes()).hexdigest()))
    lines.sort()
    text = "".join(f"{digest}  {rel.decode('utf-8')}\n" for rel, digest in lines)
    (root / "SHA256SUMS").write_text(text, encoding="utf-8")
    (root / "SHA256SUMS.sig").write_bytes(key.sign(text.encode("utf-8")))


def edit_json(path: Path, change: Any) -> None:
    """Rewrite a canonical JSON file after ``change(obj)`` edits it in place."""
    obj = json.loads(path.read_bytes())
    change(obj)
    path.write_bytes(canonical_json(obj))


_TSA_CONFIG = """\
[tsa]
default_tsa = tsa_config1
[tsa_config1]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl_tsa(log_dir: Path, work: Path) -> str:
    """A real RFC 3161 response over log/checkpoint from a throwaway self-signed TSA;
    writes log/checkpoint.tsr and log/tsa.pem; returns genTime as RFC 3339."""
    work.mkdir(parents=True)
    (work / "serial").write_text("01\n")
    (work / "ts.cnf").write_text(_TSA_CONFIG.format(dir=work))

    def run(*args: str) -> str:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "OPENSSL_CONF": str(work / "ts.cnf"),
        }
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, env=env, check=False)
        assert r.returncode == 0, r.stderr
        return r.stdout

    run(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(work / "tsa.key"), "-out", str(work / "tsa.crt"),
        "-subj", "/CN=bwc test TSA",
        "-days", "2", "-addext", "extendedKeyUsage=critical,timeStamping",
        "-addext", "keyUsage=critical,digitalSignature",
    )  # fmt: skip
    run(
        "ts", "-query", "-data", str(log_dir / "checkpoint"), "-sha256", "-cert", "-no_nonce",
        "-out", str(work / "req.tsq"),
    )  # fmt: skip
    run(
        "ts", "-reply", "-queryfile", str(work / "req.tsq"), "-config", str(work / "ts.cnf"),
        "-out", str(log_dir / "checkpoint.tsr"),
    )  # fmt: skip
    shutil.copyfile(work / "tsa.crt", log_dir / "tsa.pem")
    text = run("ts", "-reply", "-in", str(log_dir / "checkpoint.tsr"), "-text")
    m = re.search(r"Time stamp: (\w{3}) +(\d+) (\d\d:\d\d:\d\d)(\.\d+)? (\d{4}) GMT", text)
    assert m is not None, text
    month, day, hms, frac, year = m.groups()
    when = datetime.strptime(f"{month} {day} {hms} {year}", "%b %d %H:%M:%S %Y")
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (frac or "") + "Z"
