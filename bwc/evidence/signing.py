"""Ed25519 signing and verification of exact bytes (manifests, checkpoints).

``Signer`` is the protocol the core signs through; the real one wraps a private key loaded by
``bwc.evidence.keys``. Key ids are derived from the public key, never chosen.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def key_id_for(public_key: bytes) -> str:
    """Key id: the first 16 hex digits of SHA-256 of the raw 32-byte public key."""
    if len(public_key) != 32:
        raise ValueError("Ed25519 public keys are 32 bytes")
    return hashlib.sha256(public_key).hexdigest()[:16]


def raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_pem(public_key: bytes) -> str:
    pub = Ed25519PublicKey.from_public_bytes(public_key)
    return pub.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


class Signer(Protocol):
    @property
    def key_id(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


class Ed25519Signer:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = raw_public(private_key)
        self._key_id = key_id_for(self._public)

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:  # never show key material
        return f"Ed25519Signer(key_id={self._key_id!r})"


def verify_signature(public_key: bytes, data: bytes, signature: bytes) -> bool:
    if len(signature) != 64 or len(public_key) != 32:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except InvalidSignature:
        return False
    return True
