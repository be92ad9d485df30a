"""The tamper matrix: one real bundle, copied, each copy tampered one way (every file kind of
the bundle, plainly and with SHA256SUMS rewritten to match as a forger without the key
would), and every verifier must fail it naming the file; the stock tools must fail it where
they check that part. Verifiers: `bwc verify-bundle`, and the bundle's verify.py (run as
`env -i python3 -I verify.py`) when this tree has it (feat/verifypy)."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bwc.evidence import note
from bwc.evidence.bundle import layout
from bwc.evidence.canonical import canonical_json
from bwc.evidence.signing import public_pem, raw_public
from tests.conftest import make_clip
from tests.integration.bundles import (
    VERIFIERS,
    Ran,
    bwc_cli,
    bwc_verify_bundle,
    info,
    resum,
    run,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha: str  # the item tampered with
    key_id: str
    fingerprint: str  # as the bureau publishes it


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """A home, two clips ingested, a bundle of both (all through the CLI, in subprocesses,
    once for the module)."""
    d = tmp_path_factory.mktemp("matrix")
    cam = d / "cam" / "DCIM"
    for i in range(2):
        make_clip(
            cam / f"DSJ0042_110023_2026101509300{i}_000{i}.MP4",
            tone=500 + 100 * i,
            creation_time=f"2026-10-15T01:30:0{i}Z",
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env |= {"BWC_HOME": str(d / "home"), "BWC_ACTOR": "clerk"}
    for args in (
        ("init", "--station-id", "st-m"),
        ("ingest", d / "cam", "--officer", "110023", "--device", "DSJ0042"),
    ):
        r = bwc_cli(*args, env=env)
        assert r.code == 0, r.out
    r = bwc_cli("list", "--json", env=env)
    ids = sorted(i["sha256"] for i in json.loads(r.out.split("\nwarning")[0]))
    r = bwc_cli("export", *ids, "--out", d / "bundle", "--for", "court", env=env)
    assert r.code == 0, r.out
    b = d / "bundle"
    kid = info(b)["sums_key"]
    fp = (b / layout.FINGERPRINTS).read_text().split()[0]
    assert bwc_verify_bundle(b).code == 0
    return Bundle(b, ids[0], kid, fp)


# ---------------------------------------------------------------------------- the tampers


def _flip(path: Path, at: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def _footage(b: Path, sha: str) -> Path:
    (f,) = [p for p in (b / "items" / sha).iterdir() if p.suffix == ".MP4"]
    return f


def footage_byte(b: Path, x: Bundle) -> str:
    f = _footage(b, x.sha)
    _flip(f)
    return f.relative_to(b).as_posix()


def manifest_field(b: Path, x: Bundle) -> str:
    p = b / "items" / x.sha / "manifest.json"
    m = json.loads(p.read_bytes())
    m["officer_id"] = "110024"
    p.write_bytes(canonical_json(m))
    return f"items/{x.sha}/manifest.json"


def manifest_sig(b: Path, x: Bundle) -> str:
    _flip(b / "items" / x.sha / "manifest.sig", 5)
    return f"items/{x.sha}/manifest.sig"


def _custody(b: Path, x: Bundle, edit: Callable[[dict[str, object]], None]) -> str:
    p = b / "items" / x.sha / "custody.json"
    c = json.loads(p.read_bytes())
    edit(c)
    p.write_bytes(canonical_json(c))
    return f"items/{x.sha}/custody.json"


def custody_leaf(b: Path, x: Bundle) -> str:
    def edit(c: dict[str, object]) -> None:
        ev = c["events"][0]  # type: ignore[index]
        leaf = json.loads(base64.b64decode(ev["leaf"]))
        leaf["actor"] = "someone-else"
        ev["leaf"] = base64.b64encode(canonical_json(leaf)).decode()

    return _custody(b, x, edit)


def proof_hash(b: Path, x: Bundle) -> str:
    def edit(c: dict[str, object]) -> None:
        ev = next(e for e in c["events"] if e["proof"])  # type: ignore[attr-defined]
        h = bytearray(base64.b64decode(ev["proof"][0]))
        h[0] ^= 0x01
        ev["proof"][0] = base64.b64encode(bytes(h)).decode()

    return _custody(b, x, edit)


def proof_base64_variant(b: Path, x: Bundle) -> str:
    """The same proof hash in another base64 spelling (its unused low bits set): the proof
    still holds, the file is not what was exported."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def edit(c: dict[str, object]) -> None:
        ev = next(e for e in c["events"] if e["proof"])  # type: ignore[attr-defined]
        text = ev["proof"][0]
        assert text.endswith("=") and not text.endswith("==")  # 32 bytes: 2 unused bits
        last = alphabet[alphabet.index(text[-2]) | 0b11]
        ev["proof"][0] = text[:-2] + last + "="
        assert base64.b64decode(ev["proof"][0]) == base64.b64decode(text)

    return _custody(b, x, edit)


def custody_not_canonical(b: Path, x: Bundle) -> str:
    """custody.json pretty-printed: the same values, other bytes."""
    p = b / "items" / x.sha / "custody.json"
    p.write_text(json.dumps(json.loads(p.read_bytes()), indent=2))
    return f"items/{x.sha}/custody.json"


def checkpoint(b: Path, x: Bundle) -> str:
    p = b / layout.CHECKPOINT
    lines = p.read_text().split("\n")
    lines[1] = str(int(lines[1]) + 1)  # claims one more event
    p.write_text("\n".join(lines))
    return layout.CHECKPOINT


def key_swapped(b: Path, x: Bundle) -> str:
    """The station's key replaced by a forger's, everything it signs re-signed by it:
    SHA256SUMS, the checkpoint, every manifest. Stock tools accept the signatures; the
    fingerprint against the published one (and --key) catches it, and bwc sees the key is
    not the one its file is named after."""
    forger = Ed25519PrivateKey.generate()
    (b / layout.key_path(x.key_id)).write_text(public_pem(raw_public(forger)))
    for sig in (b / "items").glob("*/manifest.sig"):
        sig.write_bytes(forger.sign((sig.parent / "manifest.json").read_bytes()))
    cp = (b / layout.CHECKPOINT).read_text()
    body = cp.split("\n\n", 1)[0] + "\n"
    name = cp.split("\n\n", 1)[1].split(" ")[1]
    (b / layout.CHECKPOINT).write_text(
        note.sign_note(body, [note.Signer.from_private_key(name, forger)])
    )
    (b / layout.FINGERPRINTS).write_text(
        f"{layout.fingerprint(raw_public(forger))}  {x.key_id}.pem\n"
    )
    resum(b)
    (b / layout.SUMS_SIG).write_bytes(forger.sign((b / layout.SUMS).read_bytes()))
    return layout.key_path(x.key_id)


def sums_edited(b: Path, x: Bundle) -> str:
    p = b / layout.SUMS
    text = p.read_text()
    p.write_text(text.replace(x.sha + "  items", "0" * 64 + "  items", 1))
    return layout.SUMS_SIG


def file_added(b: Path, x: Bundle) -> str:
    (b / "items" / x.sha / "extra.MP4").write_bytes(b"not evidence")
    return f"items/{x.sha}/extra.MP4"


def file_removed(b: Path, x: Bundle) -> str:
    (b / "items" / x.sha / "custody.json").unlink()
    return f"items/{x.sha}/custody.json"


def bundle_json(b: Path, x: Bundle) -> str:
    p = b / layout.BUNDLE_JSON
    data = json.loads(p.read_bytes())
    data["recipient"] = "someone else"
    p.write_bytes(canonical_json(data))
    return layout.BUNDLE_JSON


@dataclass(frozen=True)
class Tamper:
    fn: Callable[[Path, Bundle], str]
    resummed: bool  # SHA256SUMS rewritten to match (as a forger without the key would)
    # which stock checks catch it: sha256sum -c, openssl on SHA256SUMS.sig, on the manifest
    sums: bool
    sums_sig: bool
    manifest: bool


T = Tamper
TAMPERS = {
    "footage byte": T(footage_byte, False, True, False, False),
    "footage byte, sums rewritten": T(footage_byte, True, False, True, False),
    "manifest field": T(manifest_field, False, True, False, True),
    "manifest field, sums rewritten": T(manifest_field, True, False, True, True),
    "manifest.sig": T(manifest_sig, False, True, False, True),
    "custody leaf": T(custody_leaf, False, True, False, False),
    "custody leaf, sums rewritten": T(custody_leaf, True, False, True, False),
    "proof hash": T(proof_hash, False, True, False, False),
    "proof hash, sums rewritten": T(proof_hash, True, False, True, False),
    "proof in other base64, sums rewritten": T(proof_base64_variant, True, False, True, False),
    "custody.json not canonical, sums rewritten": T(
        custody_not_canonical, True, False, True, False
    ),
    "checkpoint": T(checkpoint, False, True, False, False),
    "checkpoint, sums rewritten": T(checkpoint, True, False, True, False),
    "key swapped, all re-signed": T(key_swapped, False, False, False, False),
    "SHA256SUMS edited": T(sums_edited, False, True, True, False),
    "file added": T(file_added, False, False, False, False),
    "file added, sums rewritten": T(file_added, True, False, True, False),
    "file removed": T(file_removed, False, True, False, False),
    "bundle.json, sums rewritten": T(bundle_json, True, False, True, False),
}


def _tampered(bundle: Bundle, tmp_path: Path, t: Tamper) -> tuple[Path, str]:
    b = tmp_path / "bundle"
    shutil.copytree(bundle.path, b)
    where = t.fn(b, bundle)
    if t.resummed:
        resum(b)
    return b, where


@pytest.mark.slow  # its module's bundle takes ~20 s: early in `make test` (tests/conftest.py)
@pytest.mark.parametrize("verifier", [v for _, v in VERIFIERS], ids=[n for n, _ in VERIFIERS])
@pytest.mark.parametrize("name", list(TAMPERS))
def test_each_tamper_is_detected_and_named(
    bundle: Bundle, tmp_path: Path, name: str, verifier: Callable[..., Ran]
) -> None:
    b, where = _tampered(bundle, tmp_path, TAMPERS[name])
    ran = verifier(b)
    assert ran.code == 1, ran.out
    fails = [line for line in ran.out.splitlines() if line.startswith(("FAIL", "失败"))]
    assert any(where in line for line in fails), f"{where} not named in:\n{ran.out}"


@pytest.mark.parametrize("name", list(TAMPERS))
def test_stock_tools_catch_what_they_check(bundle: Bundle, tmp_path: Path, name: str) -> None:
    t = TAMPERS[name]
    b, _ = _tampered(bundle, tmp_path, t)
    kid, sha = bundle.key_id, bundle.sha
    sums = run(["sha256sum", "--quiet", "-c", layout.SUMS], b)
    assert (sums.code != 0) == t.sums, sums.out
    pk = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f"keys/{kid}.pem", "-rawin"]
    sig = run([*pk, "-in", layout.SUMS, "-sigfile", layout.SUMS_SIG], b)
    assert (sig.code != 0) == t.sums_sig, sig.out
    m = f"items/{sha}/manifest"
    man = run([*pk, "-in", f"{m}.json", "-sigfile", f"{m}.sig"], b)
    assert (man.code != 0) == t.manifest, man.out
    # the clerk's fingerprint check (README step 4): only a swapped key changes it
    fp = run(f"openssl pkey -pubin -in keys/{kid}.pem -outform DER | sha256sum", b, shell=True)
    assert (fp.out.split()[0] != bundle.fingerprint) == (t.fn is key_swapped)


def test_pinned_keys(bundle: Bundle, tmp_path: Path) -> None:
    """--key: the bureau's published fingerprint. The untouched bundle passes with it; a
    bundle whose keys were swapped fails on the key; another fingerprint fails it."""
    ran = bwc_verify_bundle(bundle.path, bundle.fingerprint)
    assert ran.code == 0, ran.out
    assert f"ok    keys/{bundle.key_id}.pem: fingerprint" in ran.out
    ran = bwc_verify_bundle(bundle.path, "ab" * 32)
    assert ran.code == 1 and f"FAIL  keys/{bundle.key_id}.pem" in ran.out
    b, _ = _tampered(bundle, tmp_path, TAMPERS["key swapped, all re-signed"])
    ran = bwc_verify_bundle(b, bundle.fingerprint)
    assert ran.code == 1 and "not one of the --key fingerprints" in ran.out
    ran = bwc_verify_bundle(bundle.path, "not-a-fingerprint")
    assert ran.code == 2


def test_a_whole_bundle_from_another_station_fails_only_on_the_pinned_key(  # type: ignore[no-untyped-def]
    bwc, home: Path, camera: Path, tmp_path: Path, bundle: Bundle
) -> None:
    """A forger with a bwc station of their own makes a bundle that is consistent in every
    way: only the out-of-band fingerprint tells it is not the bureau's."""
    r = bwc("ingest", camera, "--officer", "110023", "--device", "DSJ0042")
    assert r.code == 0, r.err
    r = bwc("list", "--json")
    out = tmp_path / "forged"
    r = bwc("export", json.loads(r.out)[0]["sha256"], "--out", out, "--for", "court")
    assert r.code == 0, r.err
    assert bwc_verify_bundle(out).code == 0
    ran = bwc_verify_bundle(out, bundle.fingerprint)
    assert ran.code == 1
    fails = [x for x in ran.out.splitlines() if x.startswith("FAIL")]
    assert fails and all("not one of the --key fingerprints" in x for x in fails)


def test_not_a_bundle(tmp_path: Path) -> None:
    ran = bwc_verify_bundle(tmp_path)
    assert ran.code == 2 and "bundle.json is missing" in ran.out
    (tmp_path / "bundle.json").write_text("{")
    assert bwc_verify_bundle(tmp_path).code == 2
    (tmp_path / "bundle.json").write_text('{"format":"other/9"}')
    ran = bwc_verify_bundle(tmp_path)
    assert ran.code == 2 and "format" in ran.out
    (tmp_path / "x.zip").write_bytes(b"PK not a zip")
    assert bwc_verify_bundle(tmp_path / "x.zip").code == 2
    assert bwc_verify_bundle(tmp_path / "missing").code == 2
