"""Station key material on disk: ``<home>/keys/<key_id>.pem`` (PKCS#8, encrypted when a
passphrase is given) and ``<home>/keys/active`` naming the key that signs from now on.

The passphrase is found by ``bwc.config.secrets``; it is never logged or stored.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from bwc.errors import KeyMaterialError
from bwc.evidence.signing import Ed25519Signer
from bwc.fsutil import PRIVATE_DIR, make_dir, write_atomic


def generate_key(keys_dir: Path, passphrase: bytes | None) -> Ed25519Signer:
    """Create a new key, write it (0600, atomically) and return its signer."""
    key = Ed25519PrivateKey.generate()
    signer = Ed25519Signer(key)
    enc = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, enc)
    make_dir(keys_dir, PRIVATE_DIR, parents=True)
    write_atomic(keys_dir / f"{signer.key_id}.pem", pem, mode=0o600)
    return signer


def set_active(keys_dir: Path, key_id: str) -> None:
    write_atomic(keys_dir / "active", (key_id + "\n").encode("ascii"), mode=0o600)


def active_key_id(keys_dir: Path) -> str:
    path = keys_dir / "active"
    try:
        return path.read_text("ascii").strip()
    except OSError as e:
        raise KeyMaterialError(
            f"no active signing key in {keys_dir}", hint="run `bwc init` or `bwc keys rotate`"
        ) from e


def load_signer(keys_dir: Path, key_id: str, passphrase: bytes | None) -> Ed25519Signer:
    path = keys_dir / f"{key_id}.pem"
    try:
        pem = path.read_bytes()
    except OSError as e:
        raise KeyMaterialError(
            f"cannot read signing key {key_id}: {e.strerror}", hint=f"restore {path}"
        ) from e
    encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0]
    if encrypted and not passphrase:
        raise KeyMaterialError(
            f"signing key {key_id} is encrypted and no passphrase was given",
            hint="set BWC_KEY_PASSPHRASE (or the systemd credential bwc-key-passphrase)",
        )
    try:
        key = load_pem_private_key(pem, password=passphrase if encrypted else None)
    except ValueError as e:
        if encrypted:
            raise KeyMaterialError(
                f"wrong passphrase for signing key {key_id}", hint="check BWC_KEY_PASSPHRASE"
            ) from e
        raise KeyMaterialError(f"signing key {key_id} is malformed", hint=f"restore {path}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyMaterialError(
            f"signing key {key_id} is not an Ed25519 key", hint=f"restore {path}"
        )
    signer = Ed25519Signer(key)
    if signer.key_id != key_id:
        raise KeyMaterialError(f"key file {path.name} holds key {signer.key_id}, not {key_id}")
    return signer
