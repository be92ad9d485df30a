"""Station signing keys: listing, rotation (old signatures and checkpoints stay valid), public
keys that stock openssl accepts, and private keys encrypted at rest."""

from __future__ import annotations

import base64
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from sqlmodel import select

from bwc.evidence.models import Checkpoint
from bwc.evidence.station import Station

pytestmark = pytest.mark.integration

PASSPHRASE = "correct horse battery staple"


def _keys(bwc) -> list[dict[str, object]]:
    r = bwc("keys", "list", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert isinstance(data, list)
    return data


def _ingest_one(bwc, src: Path) -> str:
    r = bwc("ingest", src, "--officer", "110023", "--json")
    assert r.code == 0, r.out + r.err
    data = json.loads(r.out)
    assert data["ingested"] == 1, data
    return str(data["results"][0]["sha256"])


def _show(bwc, sha: str, *more: str) -> dict[str, object]:
    r = bwc("show", sha, "--json", *more)
    assert r.code == 0, r.out + r.err
    data = json.loads(r.out)
    assert isinstance(data, dict)
    return data


def _openssl_verify(tmp: Path, pem: str, manifest: bytes, signature: bytes) -> bool:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "KEY.pem").write_text(pem)
    (tmp / "manifest.json").write_bytes(manifest)
    (tmp / "manifest.sig").write_bytes(signature)
    p = subprocess.run(
        [
            "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "KEY.pem", "-rawin",
            "-in", "manifest.json", "-sigfile", "manifest.sig",
        ],
        cwd=tmp,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if p.returncode == 0:
        assert "Signature Verified Successfully" in p.stdout, p.stdout + p.stderr
    return p.returncode == 0


@pytest.fixture(scope="session")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("openssl is not installed (court bundles are checked with it)")
    return path


def _clip(camera: Path, n: int) -> Path:
    return sorted((camera / "DCIM").iterdir())[n]


def test_list_after_init_shows_one_active_key(bwc, home: Path) -> None:
    keys = _keys(bwc)
    assert len(keys) == 1
    k = keys[0]
    assert k["active"] is True
    assert k["retired_at"] is None
    assert k["station_id"] == "st-test"
    assert k["key_id"] == (home / "keys" / "active").read_text().strip()
    assert str(k["created_at"]).endswith("Z")
    assert str(k["verifier_key"]).startswith("st-test+")
    # Without a passphrase the key is stored unencrypted, but still private to its owner.
    pem = (home / "keys" / f"{k['key_id']}.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE((home / "keys" / f"{k['key_id']}.pem").stat().st_mode) == 0o600


def test_rotate(bwc, home: Path, camera: Path, tmp_path: Path, openssl: str) -> None:
    old_id = str(_keys(bwc)[0]["key_id"])
    sha_before = _ingest_one(bwc, _clip(camera, 0))

    r = bwc("keys", "rotate")
    assert r.code == 0, r.out + r.err
    keys = {str(k["key_id"]): k for k in _keys(bwc)}
    assert len(keys) == 2
    new_id = next(k for k in keys if k != old_id)
    assert f"{old_id} -> {new_id}" in r.out
    assert keys[new_id]["active"] is True
    assert keys[new_id]["retired_at"] is None
    assert keys[old_id]["active"] is False
    assert keys[old_id]["retired_at"] is not None
    assert (home / "keys" / "active").read_text().strip() == new_id
    # The retired private key stays on disk (a retired key is never deleted silently).
    assert (home / "keys" / f"{old_id}.pem").is_file()

    r = bwc("log", "events", "--json")
    assert r.code == 0, r.err
    rotations = [e for e in json.loads(r.out) if e["kind"] == "key-rotated"]
    assert [e["details"]["key_id"] for e in rotations] == [old_id, new_id]
    assert rotations[0]["details"]["previous_key_id"] is None
    assert rotations[1]["details"]["previous_key_id"] == old_id
    pub_new = base64.b64decode(rotations[1]["details"]["public_key"])
    assert len(pub_new) == 32

    sha_after = _ingest_one(bwc, _clip(camera, 1))
    before, after = _show(bwc, sha_before), _show(bwc, sha_after)
    assert before["key_id"] == old_id
    assert json.loads(str(before["manifest"]))["key_id"] == old_id
    assert after["key_id"] == new_id
    assert json.loads(str(after["manifest"]))["key_id"] == new_id
    assert before["verified"] is True
    assert after["verified"] is True

    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    assert "2 of 2 items verified" in r.out
    r = bwc("log", "verify", "--json")
    assert r.code == 0, r.out + r.err
    assert json.loads(r.out)["ok"] is True

    # Checkpoints signed by both keys are in the log, and both verify.
    station = Station.open(home, actor="t", passphrase=None)
    try:
        with station.session() as s:
            signed_by = {c.key_id for c in s.exec(select(Checkpoint))}
    finally:
        station.engine.dispose()
    assert signed_by == {old_id, new_id}

    # Each public key verifies exactly what it signed, with stock openssl.
    pems = {}
    for kid in (old_id, new_id):
        r = bwc("keys", "export-public", kid)
        assert r.code == 0, r.err
        pems[kid] = r.out
    r = bwc("keys", "export-public")
    assert r.code == 0, r.err
    assert r.out == pems[new_id]
    for n, (data, kid) in enumerate(((before, old_id), (after, new_id))):
        manifest = str(data["manifest"]).encode("utf-8")
        sig = base64.b64decode(str(data["signature"]))
        other = new_id if kid == old_id else old_id
        assert _openssl_verify(tmp_path / f"ok{n}", pems[kid], manifest, sig)
        assert not _openssl_verify(tmp_path / f"other{n}", pems[other], manifest, sig)


def test_export_public_verifies_manifest_with_openssl(
    bwc, home: Path, camera: Path, tmp_path: Path, openssl: str
) -> None:
    sha = _ingest_one(bwc, _clip(camera, 2))
    data = _show(bwc, sha)
    manifest = str(data["manifest"]).encode("utf-8")
    sig = base64.b64decode(str(data["signature"]))
    assert len(sig) == 64

    r = bwc("keys", "export-public")
    assert r.code == 0, r.err
    pem = r.out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert pem.rstrip().endswith("-----END PUBLIC KEY-----")

    # The exact bytes the store holds beside the object are the ones `show` printed.
    stored = {p.name.rsplit(".", 1)[-1]: p for p in (home / "store").rglob(f"{sha}*.manifest.*")}
    assert stored["json"].read_bytes() == manifest
    assert stored["sig"].read_bytes() == sig

    assert _openssl_verify(tmp_path / "good", pem, manifest, sig)
    tampered = manifest.replace(b'"110023"', b'"110024"')
    assert tampered != manifest
    assert not _openssl_verify(tmp_path / "tampered", pem, tampered, sig)
    bad_sig = bytes([sig[0] ^ 1]) + sig[1:]
    assert not _openssl_verify(tmp_path / "badsig", pem, manifest, bad_sig)


def test_export_public_unknown_key(bwc, home: Path) -> None:
    r = bwc("keys", "export-public", "0123456789abcdef")
    assert r.code == 3, r.out + r.err
    assert "0123456789abcdef" in r.err
    assert r.out == ""


def test_encrypted_keys(bwc, tmp_path: Path, camera: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BWC_KEY_PASSPHRASE", PASSPHRASE)
    r = bwc("init", "--station-id", "st-enc")
    assert r.code == 0, r.err
    assert "unencrypted" not in r.err
    home = tmp_path / "home"
    keys_dir = home / "keys"
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    first = (keys_dir / "active").read_text().strip()

    def assert_encrypted(key_id: str) -> None:
        path = keys_dir / f"{key_id}.pem"
        pem = path.read_bytes()
        assert pem.splitlines()[0] == b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert_encrypted(first)
    sha = _ingest_one(bwc, _clip(camera, 0))

    r = bwc("keys", "rotate")
    assert r.code == 0, r.out + r.err
    assert "unencrypted" not in r.err
    second = (keys_dir / "active").read_text().strip()
    assert second != first
    assert_encrypted(first)
    assert_encrypted(second)
    sha2 = _ingest_one(bwc, _clip(camera, 1))
    assert _show(bwc, sha2)["key_id"] == second
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    assert "2 of 2 items verified" in r.out

    # The passphrase is never written anywhere in the home.
    secret = PASSPHRASE.encode()
    for p in home.rglob("*"):
        if p.is_file():
            assert secret not in p.read_bytes(), p

    # Without the passphrase, or with a wrong one, signing refuses (exit 5) and changes nothing.
    monkeypatch.delenv("BWC_KEY_PASSPHRASE")
    r = bwc("keys", "rotate")
    assert r.code == 5, r.out + r.err
    assert "passphrase" in r.err
    monkeypatch.setenv("BWC_KEY_PASSPHRASE", "wrong")
    r = bwc("keys", "rotate")
    assert r.code == 5, r.out + r.err
    assert "wrong passphrase" in r.err
    assert PASSPHRASE not in r.err
    assert (keys_dir / "active").read_text().strip() == second
    assert len(list(keys_dir.glob("*.pem"))) == 2
    assert len(_keys(bwc)) == 2

    # Read-only work needs no passphrase; old items still verify with the old key.
    monkeypatch.delenv("BWC_KEY_PASSPHRASE")
    r = bwc("verify", sha, "--no-record")
    assert r.code == 0, r.out + r.err
    assert _show(bwc, sha, "--no-record")["key_id"] == first
    # A view is logged and signed into a checkpoint: without the key it fails, showing
    # nothing, rather than leave no trace (issue 14).
    r = bwc("show", sha, "--json")
    assert r.code == 5, r.out + r.err
    assert r.out == ""

    # The passphrase from a systemd credential works the same way.
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "bwc-key-passphrase").write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    r = bwc("keys", "rotate")
    assert r.code == 0, r.out + r.err
    third = (keys_dir / "active").read_text().strip()
    assert third not in (first, second)
    assert_encrypted(third)
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err
