"""C2SP signed notes and tlog checkpoints, Ed25519 only. Pure logic, no I/O.

* Signed notes follow https://c2sp.org/signed-note and the reference implementation
  ``golang.org/x/mod/sumdb/note`` (``note.go``): a text ending in a newline, a blank line, then
  one or more lines ``— <key name> base64(key hash ‖ signature)``. Only signature type 0x01
  (Ed25519) is supported; the key hash is ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]``.
  Signing is deterministic, so :func:`sign_note` reproduces Go's notes byte for byte, and Go
  verifiers and witnesses accept ours.
* Checkpoints follow https://c2sp.org/tlog-checkpoint: ``origin``, decimal tree size (no
  leading zeros), base64 root hash, then optional non-empty extension lines.

Where ``note.go`` is lenient this module is stricter, on purpose (the log is evidence), and
never in a way that rejects a note Go's ``Sign`` produces:

* base64 must be canonical (padding present, unused trailing bits zero), so one signature line
  decodes to exactly one byte string and any edit to it is detected;
* two signatures by the same known key are rejected (Go keeps the first and ignores, without
  verifying, the rest); identical repeated lines from unknown keys are dropped, as in Go;
* key names must also be free of ASCII control characters (a note cannot contain them anyway).

Every failure raises :class:`bwc.errors.NoteError` with a message that says what is wrong.
Messages never include private key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bwc.errors import NoteError

__all__ = [
    "ALG_ED25519",
    "KEY_HASH_SIZE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteSignature",
    "OpenedNote",
    "Signer",
    "Verifier",
    "format_checkpoint",
    "generate_key",
    "is_valid_name",
    "key_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "signer_key",
    "unverified_checkpoint",
    "verifier_key",
]

ALG_ED25519 = 0x01
"""Signature type identifier byte of Ed25519 (c2sp.org/signed-note)."""

KEY_HASH_SIZE = 4
"""Size in bytes of a key hash (key ID)."""

MAX_SIGNATURES = 100
"""Notes with more signature lines than this are rejected (as in ``note.go``)."""

_PUBLIC_KEY_SIZE = 32
_SEED_SIZE = 32
_SIGNATURE_SIZE = 64
_ROOT_HASH_SIZE = 32
_MAX_TREE_SIZE = 2**64 - 1

_SIG_PREFIX = "— "  # em dash U+2014, space
_PRIVATE_PREFIX = "PRIVATE+KEY+"

# Unicode White_Space, exactly the set Go's unicode.IsSpace reports (Python's str.isspace also
# counts U+001C..U+001F, which are control characters and rejected separately).
_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_CONTROL_NOT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f]")
_CONTROL = re.compile(r"[\x00-\x1f]")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


# --------------------------------------------------------------------------- helpers


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode_strict(s: str) -> bytes | None:
    """Strict standard base64 (RFC 4648 §4): padded, canonical. None if ``s`` is not."""
    if _BASE64.fullmatch(s) is None:
        return None
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None
    if _b64encode(raw) != s:  # unused trailing bits must be zero
        return None
    return raw


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str):
        return "not a string"
    if name == "":
        return "empty"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if "+" in name:
        return "contains '+'"
    if any(c in _SPACES for c in name):
        return "contains a space"
    if _CONTROL.search(name):
        return "contains a control character"
    return None


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a valid key name: non-empty, no Unicode spaces, no '+'."""
    return _name_problem(name) is None


def _check_name(name: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        raise NoteError(f"invalid key name {name!r}: {problem}")


def _key_label(name: str, hash_: bytes) -> str:
    return f"{name}+{hash_.hex()}"


def _check_public_key(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != _PUBLIC_KEY_SIZE:
        raise NoteError(f"an Ed25519 public key is {_PUBLIC_KEY_SIZE} bytes")


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _hex(b: object) -> str:
    return b.hex() if isinstance(b, bytes) else repr(b)


# --------------------------------------------------------------------------- keys


def key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte key hash (key ID): ``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public_key)[:4]``."""
    _check_name(name)
    _check_public_key(public_key)
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key
    ).digest()
    return digest[:KEY_HASH_SIZE]


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 note verifier key: a name, its key hash and the raw 32-byte public key."""

    name: str
    key_hash: bytes
    public_key: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        _check_public_key(self.public_key)
        expected = key_hash(self.name, self.public_key)
        if self.key_hash != expected:
            raise NoteError(
                f"key hash {_hex(self.key_hash)} does not match the key of {self.name!r} "
                f"(expected {expected.hex()})"
            )
        try:
            pub = Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError as e:
            raise NoteError(f"invalid Ed25519 public key for {self.name!r}: {e}") from None
        object.__setattr__(self, "_key", pub)

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes | Ed25519PublicKey) -> Verifier:
        """A verifier for ``name`` from a raw 32-byte public key or an ``Ed25519PublicKey``."""
        raw = (
            public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
            if isinstance(public_key, Ed25519PublicKey)
            else public_key
        )
        return cls(name, key_hash(name, raw), raw)

    @property
    def label(self) -> str:
        """``name+hex(key hash)``, as in error messages."""
        return _key_label(self.name, self.key_hash)

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Whether ``sig`` (64 bytes, without the key hash) is a valid signature of ``msg``."""
        if len(sig) != _SIGNATURE_SIZE:
            return False
        try:
            self._key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """An Ed25519 note signer: a name, its key hash and the private key."""

    name: str
    key_hash: bytes
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise NoteError("a note signer needs an Ed25519 private key")
        expected = key_hash(self.name, _raw_public(self.private_key))
        if self.key_hash != expected:
            raise NoteError(
                f"key hash {_hex(self.key_hash)} does not match the key of {self.name!r} "
                f"(expected {expected.hex()})"
            )

    @classmethod
    def from_private_key(cls, name: str, private_key: Ed25519PrivateKey) -> Signer:
        """A signer for ``name``; the key hash is derived from the public key."""
        if not isinstance(private_key, Ed25519PrivateKey):
            raise NoteError("a note signer needs an Ed25519 private key")
        return cls(name, key_hash(name, _raw_public(private_key)), private_key)

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return _raw_public(self.private_key)

    @property
    def label(self) -> str:
        """``name+hex(key hash)``, as in error messages."""
        return _key_label(self.name, self.key_hash)

    def verifier(self) -> Verifier:
        """The matching verifier."""
        return Verifier(self.name, self.key_hash, self.public_key)

    def sign(self, msg: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``msg`` (deterministic)."""
        return self.private_key.sign(msg)


def verifier_key(name: str, public_key: bytes) -> str:
    """The encoded verifier key ``name+hex8(key hash)+base64(0x01 ‖ public key)``."""
    h = key_hash(name, public_key)
    return f"{name}+{h.hex()}+{_b64encode(bytes([ALG_ED25519]) + public_key)}"


def signer_key(name: str, seed: bytes) -> str:
    """The encoded signer key ``PRIVATE+KEY+name+hex8(key hash)+base64(0x01 ‖ seed)``.

    The result is secret: anyone holding it can sign as ``name``."""
    _check_name(name)
    if not isinstance(seed, bytes) or len(seed) != _SEED_SIZE:
        raise NoteError(f"an Ed25519 private key seed is {_SEED_SIZE} bytes")
    h = key_hash(name, _raw_public(Ed25519PrivateKey.from_private_bytes(seed)))
    return f"{_PRIVATE_PREFIX}{name}+{h.hex()}+{_b64encode(bytes([ALG_ED25519]) + seed)}"


def generate_key(name: str) -> tuple[str, str]:
    """A fresh key pair for ``name``: ``(signer key, verifier key)``, as Go's GenerateKey."""
    _check_name(name)
    key = Ed25519PrivateKey.generate()
    return signer_key(name, key.private_bytes_raw()), verifier_key(name, _raw_public(key))


def _split_key(rest: str, what: str) -> tuple[str, bytes, bytes]:
    """Parse ``name+hex8+base64(0x01 ‖ 32 bytes)``; the name, key hash and the 32 bytes."""
    parts = rest.split("+", 2)  # base64 may itself contain '+'
    if len(parts) != 3:
        raise NoteError(f"malformed {what}: expected name+hash+key")
    name, hash16, key64 = parts
    _check_name(name)
    if _HEX8.fullmatch(hash16) is None:
        raise NoteError(f"malformed {what} for {name!r}: key hash must be 8 hex digits")
    raw = b64decode_strict(key64)
    if raw is None:
        raise NoteError(f"malformed {what} for {name!r}: key is not canonical base64")
    if len(raw) == 0:
        raise NoteError(f"malformed {what} for {name!r}: key is empty")
    if raw[0] != ALG_ED25519:
        raise NoteError(
            f"unsupported {what} for {name!r}: signature type 0x{raw[0]:02x} "
            f"(only 0x01, Ed25519, is supported)"
        )
    if len(raw) != 1 + _PUBLIC_KEY_SIZE:
        raise NoteError(f"malformed {what} for {name!r}: Ed25519 key must be 32 bytes")
    return name, bytes.fromhex(hash16), raw[1:]


def parse_verifier_key(s: str) -> Verifier:
    """Parse an encoded verifier key (``name+hex8+base64(0x01 ‖ public key)``)."""
    if not isinstance(s, str):
        raise NoteError("a verifier key must be a string")
    if s.startswith(_PRIVATE_PREFIX):
        raise NoteError("this is a signer (private) key, not a verifier key")
    name, h, pub = _split_key(s, "verifier key")
    expected = key_hash(name, pub)
    if h != expected:
        raise NoteError(
            f"verifier key for {name!r}: key hash {h.hex()} does not match the key "
            f"(expected {expected.hex()})"
        )
    return Verifier(name, h, pub)


def parse_signer_key(s: str) -> Signer:
    """Parse an encoded signer key (``PRIVATE+KEY+name+hex8+base64(0x01 ‖ seed)``)."""
    if not isinstance(s, str) or not s.startswith(_PRIVATE_PREFIX):
        raise NoteError("malformed signer key: must start with PRIVATE+KEY+")
    name, h, seed = _split_key(s[len(_PRIVATE_PREFIX) :], "signer key")
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    expected = key_hash(name, _raw_public(private_key))
    if h != expected:
        raise NoteError(
            f"signer key for {name!r}: key hash {h.hex()} does not match the key "
            f"(expected {expected.hex()})"
        )
    return Signer(name, h, private_key)


# --------------------------------------------------------------------------- notes


class NoteSignature(NamedTuple):
    """One signature line of a note: key name, 4-byte key hash, signature bytes (after the
    key hash; 64 bytes for Ed25519, any length >= 1 for unknown keys)."""

    name: str
    key_hash: bytes
    signature: bytes

    @property
    def label(self) -> str:
        return _key_label(self.name, self.key_hash)


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked: the text (ending in a newline), the signatures
    that verified (at least one), and the signatures from unknown keys (not checked)."""

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...] = ()


def _check_text(text: str) -> None:
    if not isinstance(text, str):
        raise NoteError("note text must be a string")
    if text == "":
        raise NoteError("note text is empty")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("note text is not valid UTF-8 (lone surrogate)") from None
    m = _CONTROL_NOT_NEWLINE.search(text)
    if m is not None:
        raise NoteError(
            f"note text contains control character U+{ord(m.group()):04X} at offset {m.start()}"
        )


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """The signed note: ``text``, a blank line, and one signature line per signer, in order."""
    _check_text(text)
    if isinstance(signers, Signer) or len(signers) == 0:
        raise NoteError("sign_note needs a sequence of at least one signer")
    msg = text.encode("utf-8")
    seen: set[tuple[str, bytes]] = set()
    lines: list[str] = []
    for s in signers:
        if not isinstance(s, Signer):
            raise NoteError(f"not a note signer: {type(s).__name__}")
        ident = (s.name, s.key_hash)
        if ident in seen:
            raise NoteError(f"duplicate signer {s.label}")
        seen.add(ident)
        sig = s.sign(msg)
        lines.append(f"{_SIG_PREFIX}{s.name} {_b64encode(s.key_hash + sig)}\n")
    return text + "\n" + "".join(lines)


def _as_text(note: str | bytes) -> str:
    if isinstance(note, bytes | bytearray | memoryview):
        try:
            return bytes(note).decode("utf-8")
        except UnicodeDecodeError as e:
            raise NoteError(f"note is not valid UTF-8 (byte offset {e.start})") from None
    if isinstance(note, str):
        try:
            note.encode("utf-8")
        except UnicodeEncodeError:
            raise NoteError("note is not valid UTF-8 (lone surrogate)") from None
        return note
    raise NoteError(f"a note must be str or bytes, not {type(note).__name__}")


def _parse_sig_line(line: str, number: int) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(f"malformed note: signature line {number} does not start with '— '")
    name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    problem = _name_problem(name)
    if problem is not None:
        raise NoteError(f"malformed note: signature line {number}: key name {problem}")
    if b64 == "":
        raise NoteError(f"malformed note: signature line {number} has no signature")
    raw = b64decode_strict(b64)
    if raw is None:
        raise NoteError(
            f"malformed note: signature line {number}: signature is not canonical base64"
        )
    if len(raw) <= KEY_HASH_SIZE:
        raise NoteError(f"malformed note: signature line {number}: signature too short")
    return NoteSignature(name, raw[:KEY_HASH_SIZE], raw[KEY_HASH_SIZE:])


def open_note(note: str | bytes, verifiers: Sequence[Verifier]) -> OpenedNote:
    """Parse a signed note and verify its signatures against the known ``verifiers``.

    Raises NoteError if the note is malformed, if a signature by a known key does not verify,
    or if no signature by a known key is present. Signatures by unknown keys are ignored
    (returned in ``unverified``)."""
    if isinstance(verifiers, Verifier):
        raise NoteError("open_note needs a sequence of verifiers")
    known: dict[tuple[str, bytes], list[Verifier]] = {}
    for v in verifiers:
        if not isinstance(v, Verifier):
            raise NoteError(f"not a note verifier: {type(v).__name__}")
        entries = known.setdefault((v.name, v.key_hash), [])
        if v not in entries:
            entries.append(v)

    msg = _as_text(note)
    m = _CONTROL_NOT_NEWLINE.search(msg)
    if m is not None:
        raise NoteError(
            f"malformed note: control character U+{ord(m.group()):04X} at offset {m.start()}"
        )
    split = msg.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line between text and signatures")
    text, sigs = msg[: split + 1], msg[split + 2 :]
    if sigs == "":
        raise NoteError("malformed note: no signature lines after the blank line")
    if not sigs.endswith("\n"):
        raise NoteError("malformed note: last signature line does not end with a newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: {len(lines)} signatures (more than {MAX_SIGNATURES})")

    text_bytes = text.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    seen_known: set[tuple[str, bytes]] = set()
    seen_unknown: set[str] = set()
    for number, line in enumerate(lines, start=1):
        sig = _parse_sig_line(line, number)
        ident = (sig.name, sig.key_hash)
        candidates = known.get(ident)
        if candidates is None:
            if line not in seen_unknown:  # drop repeated identical lines, as note.go does
                seen_unknown.add(line)
                unverified.append(sig)
            continue
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {sig.label}: several verifiers share name and hash")
        if ident in seen_known:
            raise NoteError(f"malformed note: duplicate signature for key {sig.label}")
        seen_known.add(ident)
        if not candidates[0].verify(text_bytes, sig.signature):
            raise NoteError(f"invalid signature for key {sig.label}")
        verified.append(sig)

    if not verified:
        unknown = ", ".join(dict.fromkeys(s.label for s in unverified))
        raise NoteError(f"no verifiable signature: unknown key {unknown}")
    return OpenedNote(text, tuple(verified), tuple(unverified))


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A tlog checkpoint (c2sp.org/tlog-checkpoint): log origin, tree size, 32-byte root hash
    and optional extension lines (without their newlines)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError("checkpoint size must be an integer")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size} out of range 0..2^64-1")
        if not isinstance(self.root, bytes) or len(self.root) != _ROOT_HASH_SIZE:
            length = len(self.root) if isinstance(self.root, bytes) else "?"
            raise NoteError(f"checkpoint root hash must be {_ROOT_HASH_SIZE} bytes, got {length}")
        if isinstance(self.extensions, list):
            object.__setattr__(self, "extensions", tuple(self.extensions))
        if not isinstance(self.extensions, tuple):
            raise NoteError("checkpoint extensions must be a tuple of strings")
        for i, ext in enumerate(self.extensions, start=1):
            _check_line(ext, f"extension line {i}")


def _check_line(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise NoteError(f"checkpoint {what} must be a string")
    if value == "":
        raise NoteError(f"checkpoint {what} is empty")
    if "\n" in value:
        raise NoteError(f"checkpoint {what} contains a newline")
    m = _CONTROL.search(value)
    if m is not None:
        raise NoteError(f"checkpoint {what} contains control character U+{ord(m.group()):04X}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"checkpoint {what} is not valid UTF-8 (lone surrogate)") from None


def format_checkpoint(cp: Checkpoint) -> str:
    """The checkpoint note text: ``origin\\nsize\\nbase64(root)\\n`` then extension lines."""
    if not isinstance(cp, Checkpoint):
        raise NoteError(f"not a checkpoint: {type(cp).__name__}")
    head = f"{cp.origin}\n{cp.size}\n{_b64encode(cp.root)}\n"
    return head + "".join(f"{ext}\n" for ext in cp.extensions)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly; ``format_checkpoint`` of the result is ``text``."""
    if not isinstance(text, str):
        raise NoteError("checkpoint text must be a string")
    if not text.endswith("\n"):
        raise NoteError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(f"checkpoint has {len(lines)} line(s); needs origin, size and root hash")
    origin, size_line, root_line, *extensions = lines
    if origin == "":
        raise NoteError("checkpoint origin is empty")
    if _DECIMAL.fullmatch(size_line) is None:
        raise NoteError(
            f"checkpoint size {size_line!r} is not a decimal number without leading zeros"
        )
    if len(size_line) > len(str(_MAX_TREE_SIZE)) or int(size_line) > _MAX_TREE_SIZE:
        raise NoteError(f"checkpoint size {size_line} out of range 0..2^64-1")
    root = b64decode_strict(root_line)
    if root is None:
        raise NoteError(f"checkpoint root hash {root_line!r} is not canonical base64")
    if len(root) != _ROOT_HASH_SIZE:
        raise NoteError(f"checkpoint root hash must be {_ROOT_HASH_SIZE} bytes, got {len(root)}")
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def unverified_checkpoint(note: str) -> Checkpoint:
    """The checkpoint a signed note states, read without checking its signatures: only a
    size to aim at or a text to show (``open_checkpoint`` checks them)."""
    return parse_checkpoint(note.split("\n\n", 1)[0] + "\n")


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a signed note, signed by ``signer``."""
    return sign_note(format_checkpoint(cp), [signer])


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[Verifier], *, origin: str | None = None
) -> Checkpoint:
    """Open a signed checkpoint (see :func:`open_note`) and parse its text.

    If ``origin`` is given, the checkpoint's origin must be exactly that."""
    cp = parse_checkpoint(open_note(note, verifiers).text)
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    return cp
