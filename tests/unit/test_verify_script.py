"""The standalone bundle verifier (bwc/evidence/bundle/verify.py): Python 3.8 and the standard
library only; its Ed25519 against RFC 8032's vectors and `cryptography`; its Merkle proofs
against the RFC 9162 vectors; its note parsing against Go's reference note and bwc's own."""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bwc.errors import NoteError, ProofError
from bwc.evidence import merkle, note
from bwc.evidence.bundle import verify as vp
from bwc.evidence.signing import public_pem

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SOURCE = Path(vp.__file__).read_text(encoding="utf-8")
L = vp._L


# --------------------------------------------------------------------------- the source


def test_parses_as_python_38() -> None:
    ast.parse(SOURCE, feature_version=(3, 8))
    # annotations stay strings on 3.8 (builtin generics and X | None in them are fine)
    assert "from __future__ import annotations" in SOURCE


def test_imports_only_the_standard_library_and_never_bwc() -> None:
    tree = ast.parse(SOURCE)
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            modules.add((node.module or "").split(".")[0])
    assert modules, "no imports found: the walk is wrong"
    assert "bwc" not in modules
    assert modules - {"__future__"} <= sys.stdlib_module_names, modules - sys.stdlib_module_names


# Library calls newer than Python 3.8 that ast.parse(feature_version=(3, 8)) cannot see.
NEWER_THAN_38 = [
    ".removeprefix(",
    ".removesuffix(",
    ".bit_count(",
    "file_digest(",
    "zoneinfo",
    "datetime.UTC",
    "functools.cache(",
    "math.lcm(",
    "strict=True",
    "str | None)",
    "int | None)",
    "isinstance(v, int | ",
]


@pytest.mark.parametrize("api", NEWER_THAN_38)
def test_uses_nothing_newer_than_python_38(api: str) -> None:
    code = "\n".join(
        line
        for line in SOURCE.splitlines()
        if "int.bit_count" not in line  # the comment saying why it is not used
    )
    assert api not in code


def test_vermin_finds_nothing_newer_than_python_38() -> None:
    """vermin knows, per standard library call, the Python that introduced it (annotations
    left unevaluated: they are strings here)."""
    vermin = Path(sys.executable).with_name("vermin")
    r = subprocess.run(
        [str(vermin), "-t=3.8-", "--violations", "--no-tips", "--no-parse-comments", vp.__file__],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_runs_under_isolated_mode_without_bwc(tmp_path: Path) -> None:
    """`python3 -I verify.py --help` outside the repository: nothing but the stdlib needed."""
    script = tmp_path / "verify.py"
    script.write_text(SOURCE, encoding="utf-8")
    r = subprocess.run(
        ["env", "-i", sys.executable, "-I", str(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "--quiet" in r.stdout and "--lang" in r.stdout


# --------------------------------------------------------------------------- Ed25519


def _rfc8032() -> list[dict[str, str]]:
    doc = json.loads((VECTORS / "ed25519-rfc8032" / "rfc8032-7.1.json").read_text())
    vectors: list[dict[str, str]] = doc["vectors"]
    assert len(vectors) == 5
    return vectors


RFC8032 = _rfc8032()


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.mark.parametrize("v", RFC8032, ids=[v["name"] for v in RFC8032])
def test_rfc8032_vectors(v: dict[str, str]) -> None:
    pub, msg, sig = (bytes.fromhex(v[k]) for k in ("public_key", "message", "signature"))
    # the transcription is right: cryptography derives and signs the same
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["secret_key"]))
    assert _raw(key) == pub and key.sign(msg) == sig
    assert vp.ed25519_verify(pub, msg, sig)
    assert vp.ed25519_verify(pub, msg, sig)  # second use: the per-key table path
    assert not vp.ed25519_verify(pub, msg + b"\x00", sig)
    for bit in (0, 7, 255, 256, 511):  # in R, in S, S's top bit
        flipped = bytearray(sig)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not vp.ed25519_verify(pub, msg, bytes(flipped))
    other = bytes.fromhex(RFC8032[(RFC8032.index(v) + 1) % 5]["public_key"])
    assert not vp.ed25519_verify(other, msg, sig)


def test_s_at_or_above_the_group_order_is_rejected() -> None:
    v = RFC8032[0]
    pub, msg, sig = (bytes.fromhex(v[k]) for k in ("public_key", "message", "signature"))
    s = int.from_bytes(sig[32:], "little")
    # S + L satisfies the group equation as well as S does: only the range check refuses it
    malleated = sig[:32] + (s + L).to_bytes(32, "little")
    assert not vp.ed25519_verify(pub, msg, malleated)
    assert not vp.ed25519_verify(pub, msg, sig[:32] + L.to_bytes(32, "little"))
    assert not vp.ed25519_verify(pub, msg, sig[:32] + b"\xff" * 32)


def test_non_canonical_point_encodings_are_rejected() -> None:
    p = vp._P
    # y = 1 (the neutral point) has x = 0: the "negative zero" encoding is not canonical
    assert vp._decode_point((1).to_bytes(32, "little")) is not None
    assert vp._decode_point((1 | 1 << 255).to_bytes(32, "little")) is None
    # y + p for a small y: the same point, written non-canonically
    for y in range(19):
        if vp._decode_point(y.to_bytes(32, "little")) is not None:
            assert vp._decode_point((y + p).to_bytes(32, "little")) is None
    # not on the curve at all: y = 2 has no x
    assert vp._decode_point((2).to_bytes(32, "little")) is None
    assert not vp.ed25519_verify((2).to_bytes(32, "little"), b"", bytes(64))
    assert not vp.ed25519_verify(b"\x00" * 31, b"", bytes(64))
    assert not vp.ed25519_verify(_raw(Ed25519PrivateKey.generate()), b"", bytes(63))


def test_non_canonical_r_is_rejected() -> None:
    """With A the neutral point (y = 1) and S = 0, [S]B = R + [k]A holds for R = the neutral
    point: written canonically (y = 1) it verifies; written as y = 1 + p it must not."""
    neutral = (1).to_bytes(32, "little")
    zero = bytes(32)
    assert vp.ed25519_verify(neutral, b"any", neutral + zero)
    non_canonical = (1 + vp._P).to_bytes(32, "little")
    assert not vp.ed25519_verify(neutral, b"any", non_canonical + zero)
    # and the same non-canonical encoding as a public key is refused outright
    assert not vp.ed25519_verify(non_canonical, b"any", neutral + zero)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=300), st.data())
def test_agrees_with_cryptography(seed: bytes, msg: bytes, data: st.DataObject) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub, sig = _raw(key), key.sign(msg)
    assert vp.ed25519_verify(pub, msg, sig)
    bit = data.draw(st.integers(0, 511), label="bit")
    flipped = bytearray(sig)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not vp.ed25519_verify(pub, msg, bytes(flipped))
    wrong = _raw(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()))
    assert not vp.ed25519_verify(wrong, msg, sig)
    if msg:
        assert not vp.ed25519_verify(pub, msg[:-1], sig)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64))
def test_random_signatures_rejected_like_cryptography(pub: bytes, sig: bytes) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, b"m")
        theirs = True
    except (InvalidSignature, ValueError):
        theirs = False
    assert vp.ed25519_verify(pub, b"m", sig) == theirs


def test_verification_speed_is_usable() -> None:
    """Hundreds of signatures per bundle: well above 100 a second even on a slow machine."""
    import time

    key = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    pub, sig = _raw(key), key.sign(b"speed")
    start = time.perf_counter()
    for _ in range(50):
        assert vp.ed25519_verify(pub, b"speed", sig)
    assert 50 / (time.perf_counter() - start) > 100


# --------------------------------------------------------------------------- Merkle

MERKLE = VECTORS / "merkle-rfc9162"
MERKLE_FILES = sorted(MERKLE.rglob("*.json"))


def _b(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _bwc_says_ok(kind: str, v: dict[str, Any]) -> bool:
    proof = [_b(h) for h in v.get("proof") or []]
    try:
        if kind == "inclusion":
            merkle.verify_inclusion(
                _b(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b(v["root"])
            )
        else:
            merkle.verify_consistency(v["size1"], v["size2"], proof, _b(v["root1"]), _b(v["root2"]))
    except ProofError:
        return False
    return True


@pytest.mark.parametrize(
    "path", MERKLE_FILES, ids=[p.relative_to(MERKLE).as_posix() for p in MERKLE_FILES]
)
def test_merkle_vectors_like_bwc(path: Path) -> None:
    kind = path.relative_to(MERKLE).parts[0]
    v = json.loads(path.read_text(encoding="utf-8"))
    proof = [_b(h) for h in v.get("proof") or []]
    if kind == "inclusion":
        problem = vp.verify_inclusion(
            _b(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b(v["root"])
        )
    else:
        problem = vp.verify_consistency(
            v["size1"], v["size2"], proof, _b(v["root1"]), _b(v["root2"])
        )
    ok = problem is None
    assert ok == _bwc_says_ok(kind, v)
    # and like upstream, except where bwc is knowingly stricter (see test_merkle.py)
    if "sizes-are-equal-one-and-proof-is-empty" not in path.name:
        assert ok == (not v["wantErr"])


def test_merkle_vector_folder_is_there() -> None:
    assert len(MERKLE_FILES) > 100


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 70), st.data())
def test_merkle_proofs_from_bwc_trees(size: int, data: st.DataObject) -> None:
    leaves = [hashlib.sha256(b"\x00" + str(i).encode()).digest() for i in range(size)]
    tree = merkle.MerkleTree(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = tree.inclusion_proof(index)
    assert vp.verify_inclusion(leaves[index], index, size, proof, tree.root()) is None
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="j")
        bad = list(proof)
        bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
        assert vp.verify_inclusion(leaves[index], index, size, bad, tree.root()) is not None
        assert vp.verify_inclusion(leaves[index], index, size, proof[:-1], tree.root()) is not None
    assert vp.verify_inclusion(leaves[index], index, size, [*proof, leaves[0]], tree.root())
    m = data.draw(st.integers(1, size), label="m")
    cproof = tree.consistency_proof(m)
    assert vp.verify_consistency(m, size, cproof, tree.root(m), tree.root()) is None
    if cproof:
        assert vp.verify_consistency(m, size, cproof[1:], tree.root(m), tree.root()) is not None
    assert vp.verify_consistency(0, size, [], merkle.EMPTY_ROOT, tree.root()) is not None


# --------------------------------------------------------------------------- notes

GO = json.loads((VECTORS / "signed-note" / "peterneumann.json").read_text(encoding="utf-8"))
GO_PUB = base64.b64decode(GO["verifier_key"].rsplit("+", 1)[1])[1:]


def test_go_reference_note_verifies() -> None:
    text, names = vp.open_note(GO["note"].encode("utf-8"), {"k": GO_PUB})
    assert text == GO["text"]
    assert names == ["PeterNeumann"]
    assert vp.note_key_hash("PeterNeumann", GO_PUB).hex() == "c74f20a3"


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_go_note_mutations_fail(data: st.DataObject) -> None:
    raw = GO["note"].encode("utf-8")
    i = data.draw(st.integers(0, len(raw) - 1), label="i")
    b = data.draw(st.integers(0, 255).filter(lambda x: x != raw[i]), label="b")
    with pytest.raises(ValueError):
        vp.open_note(raw[:i] + bytes([b]) + raw[i + 1 :], {"k": GO_PUB})


SIGNER = note.Signer.from_private_key(
    "bwc.example/log", Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
)
WITNESS = note.Signer.from_private_key(
    "witness", Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
)
ROOT = hashlib.sha256(b"root").digest()


def _bwc_opens(raw: bytes) -> bool:
    try:
        note.open_checkpoint(raw, [SIGNER.verifier()])
    except NoteError:
        return False
    return True


def _vp_opens(raw: bytes) -> bool:
    try:
        text, _ = vp.open_note(raw, {"k": SIGNER.public_key})
        vp.parse_checkpoint(text)
    except ValueError:
        return False
    return True


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**64 - 1), st.data())
def test_checkpoint_mutations_judged_like_bwc(size: int, data: st.DataObject) -> None:
    raw = note.sign_note(
        note.format_checkpoint(note.Checkpoint(SIGNER.name, size, ROOT)), [SIGNER, WITNESS]
    ).encode()
    assert _vp_opens(raw) and _bwc_opens(raw)
    i = data.draw(st.integers(0, len(raw) - 1), label="i")
    how = data.draw(st.sampled_from(["replace", "delete", "insert"]), label="how")
    b = data.draw(st.integers(0, 255), label="b")
    if how == "replace":
        mutated = raw[:i] + bytes([b]) + raw[i + 1 :]
    elif how == "delete":
        mutated = raw[:i] + raw[i + 1 :]
    else:
        mutated = raw[:i] + bytes([b]) + raw[i:]
    assert _vp_opens(mutated) == _bwc_opens(mutated)


@pytest.mark.parametrize(
    "text",
    [
        "log\n007\n%s\n",
        "log\n-1\n%s\n",
        "log\n1e3\n%s\n",
        "log\n18446744073709551616\n%s\n",
        "log\n5\n%s",
        "\n5\n%s\n",
        "log\n5\n%s\n\n",
        "log\n5\n",
    ],
)
def test_bad_checkpoint_text(text: str) -> None:
    body = text % base64.b64encode(ROOT).decode() if "%s" in text else text
    with pytest.raises(ValueError):
        vp.parse_checkpoint(body)
    with pytest.raises(NoteError):
        note.parse_checkpoint(body)


def test_duplicate_signature_by_a_known_key_is_rejected() -> None:
    raw = note.sign_note(f"log\n1\n{base64.b64encode(ROOT).decode()}\n", [SIGNER])
    sig_line = raw.split("\n\n", 1)[1]
    with pytest.raises(ValueError, match="two signatures"):
        vp.open_note((raw + sig_line).encode(), {"k": SIGNER.public_key})
    with pytest.raises(ValueError, match="no signature by a key"):
        vp.open_note(raw.encode(), {"k": WITNESS.public_key})


# --------------------------------------------------------------------------- keys, base64, DER


def test_pem_of_ed25519_keys_only() -> None:
    key = Ed25519PrivateKey.from_private_bytes(b"\x03" * 32)
    pem = public_pem(_raw(key)).encode()
    parsed = vp.parse_spki_pem(pem)
    assert parsed is not None and parsed[0] == _raw(key)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    lines = pem.decode().splitlines()
    for bad in [
        ec_pem,
        pem.replace(b"PUBLIC KEY", b"PRIVATE KEY"),
        pem[:-30] + pem[-29:],
        pem.replace(b"\n", b"\r\n"),
        ("\n".join([lines[0], lines[1][:-4] + "AAAA", lines[2]]) + "\n").encode(),
        b"",
        b"\xff" * 10,
    ]:
        assert vp.parse_spki_pem(bad) is None, bad


def test_strict_base64() -> None:
    assert vp.b64decode_strict("AAEC") == b"\x00\x01\x02"
    for bad in ["AAE", "AAF=", "AA==AA==", "AAEC\n", "-_8=", "AB==", 5, None]:
        assert vp.b64decode_strict(bad) is None, bad


def test_tsr_parser_never_raises_anything_but_value_error() -> None:
    for data in [
        b"",
        b"\x30",
        b"\x30\x80\x00\x00",
        b"\x30\x84\xff\xff\xff\xff",
        b"\x1f\x00",
        b"\x30\x03\x02\x01\x00",
    ]:
        with pytest.raises(ValueError):
            vp.tsr_imprint(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_tsr_parser_on_random_bytes(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        vp.tsr_imprint(data)


def test_generalized_time() -> None:
    assert vp.generalized_time_iso("20261204030000Z") == "2026-12-04T03:00:00Z"
    assert vp.generalized_time_iso("20261204030000.25Z") == "2026-12-04T03:00:00.25Z"
    assert vp.generalized_time_iso("261204030000Z") is None
    assert vp._same_time("2026-12-04T03:00:00.250Z", "2026-12-04T03:00:00.25Z")
    assert not vp._same_time("2026-12-04T03:00:01Z", "2026-12-04T03:00:00Z")


def test_strict_json() -> None:
    assert vp.parse_json(b'{"a":1}') == {"a": 1}
    for bad in [b'{"a":1,"a":2}', b"NaN", b'{"a":Infinity}', b"\xff", b"[" * 100000]:
        with pytest.raises(ValueError):
            vp.parse_json(bad)
    assert vp.is_canonical({"b": 1, "a": "é"}, '{"a":"é","b":1}'.encode())
    assert not vp.is_canonical({"a": 1}, b'{"a": 1}')


def test_portable_names() -> None:
    for good in ["clip.mp4", "录像 01.MP4", "a" * 200]:
        assert vp.portable_name(good)
    for bad in [
        "",
        ".hidden",
        "a/b",
        "a\\b",
        "tab\t",
        "manifest.json",
        "custody.json",
        "é" * 101,
        "\x7f",
    ]:
        assert not vp.portable_name(bad), bad
