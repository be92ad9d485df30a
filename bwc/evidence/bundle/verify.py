#!/usr/bin/env python3
"""verify.py: checks a court bundle of body-worn-camera evidence, with nothing but Python.

For the reader at a court (本文件供法院及其他接收方阅读):

This program is part of the bundle it checks. It needs Python 3.8 or newer and nothing else:
no network, no account, no other software. Run it inside the unpacked bundle folder:

    python3 verify.py            (or: python3 verify.py /path/to/bundle)

It prints one line per check, "ok" or "FAIL" (Chinese: 通过 / 失败), then a verdict. Exit
status 0: every check passed; 1: at least one failed; 2: the folder is not a bundle.
`--quiet` prints only failures and the verdict; `--lang en|zh` chooses the language (by
default the one the bundle was made in).

What it checks, and how (the format is docs/bundle.md of bwc, "bwc-bundle/1"):

1. Every file. SHA256SUMS lists the SHA-256 fingerprint of every file in the bundle; each
   listed file is read and its fingerprint computed (footage is read once, in 1 MiB pieces,
   whatever its size). A changed, missing or added file, a symbolic link or a folder that
   does not belong is a failure. SHA256SUMS.sig is an Ed25519 signature over SHA256SUMS by
   the exporting station's key (keys/<sums_key>.pem).
2. The keys. Each keys/<id>.pem is an Ed25519 public key whose id (the first 16 hex digits
   of the SHA-256 of the key) is its file name; keys/fingerprints.txt matches them. Whether
   these keys are really the bureau's is NOT something a bundle can prove about itself:
   compare keys/fingerprints.txt with the fingerprints the bureau publishes separately.
3. Each item (items/<sha256>/): the footage's SHA-256 and size equal what its manifest
   states; manifest.sig is a valid Ed25519 signature over manifest.json by the key the
   manifest names; custody.json's events are entries of the custody log, each proved to be
   in the log by an RFC 9162 Merkle inclusion proof to the signed checkpoint; the first is
   its intake ("ingested"), the manifest is the one the log recorded, the log records this
   export, and no deletion. An item the exporter itself marked as failed is reported failed.
4. The custody log's checkpoint (log/checkpoint) is a signed note (C2SP signed-note) by a
   bundle key; log/consistency.json proves (RFC 9162 consistency proof) that the log at
   export time extends the checkpoint the station had published before: nothing that was
   logged then was removed or changed since.
5. The trusted timestamp, when there is one (log/checkpoint.tsr): its message imprint is the
   SHA-256 of log/checkpoint, and its time is printed. The time-stamping authority's own
   signature is checked with `openssl ts -verify`, as README.txt explains, not here.

The signature arithmetic (Ed25519, RFC 8032) and the Merkle proofs (RFC 9162) are written
out below in plain Python so that anyone can read what is computed; they were tested against
the RFCs' published test vectors and against independent implementations.
"""

# Standard library only, and Python 3.8 syntax and library (no match, no X | Y at run time,
# no str.removeprefix, no int.bit_count...): the clerk's machine may be old. Annotations are
# strings (the __future__ import), so builtin generics in them are fine on 3.8.
from __future__ import annotations

import argparse
import base64
import binascii
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import os
import re
import stat
import sys
from typing import Any, Callable, NoReturn, Sequence

FORMAT = "bwc-bundle/1"
CHUNK = 1 << 20  # 1 MiB reads: footage may be many GB
SMALL = 64 << 20  # metadata files (JSON, notes, keys) are read whole, up to this size
MAX_DEPTH = 4  # items/<sha>/<file> is the deepest a bundle goes

EXIT_OK, EXIT_FAILED, EXIT_NOT_A_BUNDLE = 0, 1, 2

# --------------------------------------------------------------------------- Ed25519 (RFC 8032)
# Verification only, in extended homogeneous coordinates (X:Y:Z:T), x = X/Z, y = Y/Z,
# x*y = T/Z (RFC 8032 §5.1.4). Everything here is public data, so no constant-time care.

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # order of the base point
_D = -121665 * pow(121666, _P - 2, _P) % _P
_D2 = 2 * _D % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _recover_x(y: int, sign: int) -> int | None:
    """x from y and x's low bit (RFC 8032 §5.1.3), or None when there is no such point."""
    if y >= _P:
        return None  # non-canonical encoding of y
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    vxx = v * x * x % _P
    if vxx == u:
        pass
    elif vxx == (-u) % _P:
        x = x * _SQRT_M1 % _P
    else:
        return None
    if x == 0 and sign:
        return None  # -0 is a non-canonical encoding
    if x & 1 != sign:
        x = _P - x
    return x


def _decode_point(data: bytes) -> tuple[int, int, int, int] | None:
    if len(data) != 32:
        return None
    n = int.from_bytes(data, "little")
    y = n & ((1 << 255) - 1)
    x = _recover_x(y, n >> 255)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _encode_point(p: tuple[int, int, int, int]) -> bytes:
    x, y, z, _ = p
    zi = pow(z, _P - 2, _P)
    x, y = x * zi % _P, y * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _add(p: tuple[int, int, int, int], q: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * _D2 * t2 % _P
    d = 2 * z1 * z2 % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(p: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x1, y1, z1, _ = p
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _add_affine(p: tuple[int, int, int, int], q: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """p + q where q is a precomputed point with Z = 1, as (y+x, y-x, 2*d*x*y)."""
    x1, y1, z1, t1 = p
    ypx, ymx, t2d = q
    a = (y1 - x1) * ymx % _P
    b = (y1 + x1) * ypx % _P
    c = t1 * t2d % _P
    d = 2 * z1
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


_IDENTITY = (0, 1, 1, 0)
_BY = 4 * pow(5, _P - 2, _P) % _P
_BX = _recover_x(_BY, 0) or 0
_BASE = (_BX, _BY, 1, _BX * _BY % _P)
_tables: dict[bytes, list[list[tuple[int, int, int]]]] = {}
_uses: dict[bytes, int] = {}


def _radix16_table(p: tuple[int, int, int, int]) -> list[list[tuple[int, int, int]]]:
    """table[j][i] = i * 16**j * p in precomputed affine form, for the 64 hex digits of a
    scalar below 2**256: a multiplication is then at most 64 additions and no doublings.
    About 1,000 point additions and one inversion (Montgomery's batch trick) to build."""
    points = []
    row_base = p
    for _ in range(64):
        acc = row_base
        for _i in range(1, 16):
            points.append(acc)
            acc = _add(acc, row_base)
        row_base = acc  # 16 * row_base
    # batch inversion of every Z: one modular exponentiation instead of 960
    prefix = [1]
    for pt in points:
        prefix.append(prefix[-1] * pt[2] % _P)
    inv = pow(prefix[-1], _P - 2, _P)
    z_inv = [0] * len(points)
    for i in range(len(points) - 1, -1, -1):
        z_inv[i] = inv * prefix[i] % _P
        inv = inv * points[i][2] % _P
    table = []
    for j in range(64):
        row: list[tuple[int, int, int]] = [(1, 1, 0)]
        for i in range(15):
            n = j * 15 + i
            x, y = points[n][0] * z_inv[n] % _P, points[n][1] * z_inv[n] % _P
            row.append(((y + x) % _P, (y - x) % _P, _D2 * x * y % _P))
        table.append(row)
    return table


def _mul_table(s: int, table: list[list[tuple[int, int, int]]]) -> tuple[int, int, int, int]:
    acc = _IDENTITY
    j = 0
    while s:
        digit = s & 15
        if digit:
            acc = _add_affine(acc, table[j][digit])
        s >>= 4
        j += 1
    return acc


def _mul_base(s: int) -> tuple[int, int, int, int]:
    if b"" not in _tables:
        _tables[b""] = _radix16_table(_BASE)
    return _mul_table(s, _tables[b""])


def _mul(k: int, p: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """[k]p with a fixed 4-bit window: 15 precomputed multiples, 4 doublings per digit."""
    multiples = [_IDENTITY, p]
    for _ in range(14):
        multiples.append(_add(multiples[-1], p))
    digits = []
    while k:
        digits.append(k & 15)
        k >>= 4
    acc = _IDENTITY
    for digit in reversed(digits):
        acc = _double(_double(_double(_double(acc))))
        if digit:
            acc = _add(acc, multiples[digit])
    return acc


def ed25519_public_key_ok(public_key: bytes) -> bool:
    """Whether ``public_key`` is the canonical encoding of a point on the curve."""
    return _decode_point(public_key) is not None


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 §5.1.7 (cofactorless): [S]B = R + [k]A, k = SHA-512(R || A || M) mod L.

    Rejects S >= L and non-canonical encodings of A and R: [S]B - [k]A is computed and its
    (canonical) encoding compared with the 32 bytes of R, so an R that is not the canonical
    encoding of a point can never match."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public_key)
    if a is None:
        return False
    r_bytes, s = signature[:32], int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + public_key + message).digest(), "little") % _L
    x, y, z, t = a
    minus_a = ((-x) % _P, y, z, (-t) % _P)
    # A bundle's signatures come from a few keys, hundreds of times: from a key's second use
    # on, [k]A goes through a table like the base point's (about 3 times faster).
    _uses[public_key] = _uses.get(public_key, 0) + 1
    if public_key in _tables:
        minus_ka = _mul_table(k, _tables[public_key])
    elif _uses[public_key] >= 2 and len(_tables) < 64:
        _tables[public_key] = _radix16_table(minus_a)
        minus_ka = _mul_table(k, _tables[public_key])
    else:
        minus_ka = _mul(k, minus_a)
    check = _add(_mul_base(s), minus_ka)
    return hmac.compare_digest(_encode_point(check), r_bytes)


# --------------------------------------------------------------------------- Merkle (RFC 9162)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _ones(n: int) -> int:
    return bin(n).count("1")  # int.bit_count is 3.10+


def _inclusion_length(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + _ones(index >> inner)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> str | None:
    """RFC 9162 §2.1.3.2. None when the proof holds, else what is wrong (in English)."""
    if index < 0 or size < 0 or index >= size:
        return "index %d is not in a tree of size %d" % (index, size)
    if len(leaf) != 32 or len(root) != 32 or any(len(p) != 32 for p in proof):
        return "a hash is not 32 bytes"
    expected = _inclusion_length(index, size)
    if len(proof) != expected:
        return "proof has %d hashes, expected %d" % (len(proof), expected)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "proof is shorter than the path to the root"
    if not hmac.compare_digest(r, root):
        return "the proof leads to a different root"
    return None


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> str | None:
    """RFC 9162 §2.1.4.2 (size1 = 0 rejected). None when it holds, else what is wrong."""
    if size1 <= 0 or size2 < 0:
        return "tree size must be at least 1 (size1 %d, size2 %d)" % (size1, size2)
    if size1 > size2:
        return "size1 (%d) is greater than size2 (%d)" % (size1, size2)
    if len(root1) != 32 or len(root2) != 32 or any(len(p) != 32 for p in proof):
        return "a hash is not 32 bytes"
    if size1 == size2:
        if proof:
            return "proof has %d hashes, expected 0 (equal sizes)" % len(proof)
        if not hmac.compare_digest(root1, root2):
            return "the roots differ although the sizes are equal"
        return None
    shift = (size1 & -size1).bit_length() - 1
    seed_index = (size1 - 1) >> shift
    last_index = (size2 - 1) >> shift
    expected = _inclusion_length(seed_index, last_index + 1) + (1 if seed_index else 0)
    if len(proof) != expected:
        return "proof has %d hashes, expected %d" % (len(proof), expected)
    path = list(proof)
    if seed_index == 0:  # size1 is a power of two: the old root is the first node
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "proof is shorter than the path to the root"
    if not hmac.compare_digest(fr, root1):
        return "the proof does not lead to the earlier root"
    if not hmac.compare_digest(sr, root2):
        return "the proof does not lead to the later root"
    return None


# --------------------------------------------------------------------------- small parsers

_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_SUMS_LINE = re.compile(r"([0-9a-f]{64})  ([^\n]+)")
_CONTROL = re.compile(r"[\x00-\x1f]")
_CONTROL_NOT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # Ed25519 SubjectPublicKeyInfo


class Bad(Exception):
    """Something in the bundle is malformed: the message says what (already translated)."""


def b64decode_strict(text: object) -> bytes | None:
    """Standard, padded, canonical base64 (one text for one byte string), or None."""
    if not isinstance(text, str) or _B64.fullmatch(text) is None:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == text else None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError("duplicate key %r" % k)
        obj[k] = v
    return obj


def _no_constant(name: str) -> NoReturn:
    raise ValueError("%s is not JSON" % name)


def parse_json(data: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity. Raises ValueError."""
    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def is_canonical(obj: Any, data: bytes) -> bool:
    """Whether ``data`` is the RFC 8785 form of ``obj``: for the integers and strings of a
    bundle that is json.dumps with sorted keys, no spaces and no ASCII escaping."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return False
    return text.encode("utf-8") == data


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def key_id_of(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def parse_spki_pem(data: bytes) -> tuple[bytes, bytes] | None:
    """(raw 32-byte key, DER) of an Ed25519 'PUBLIC KEY' PEM; None for anything else."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 3:
        return None
    if lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        return None
    der = b64decode_strict("".join(lines[1:-1]))
    if der is None or len(der) != 44 or der[:12] != _SPKI_PREFIX:
        return None
    return der[12:], der


def note_key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + public_key).digest()[:4]


def _name_problem(name: str) -> str | None:
    if name == "":
        return "empty"
    if "+" in name:
        return "contains '+'"
    if any(c in _SPACES for c in name):
        return "contains a space"
    if _CONTROL.search(name):
        return "contains a control character"
    return None


def open_note(data: bytes, keys: dict[str, bytes]) -> tuple[str, list[str]]:
    """Parse a C2SP signed note as bwc/evidence/note.py does, check every signature by a
    known key, need at least one. Returns (text, names of the keys that signed). Raises
    ValueError with what is wrong."""
    try:
        msg = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    m = _CONTROL_NOT_NEWLINE.search(msg)
    if m is not None:
        raise ValueError("control character at offset %d" % m.start())
    split = msg.rfind("\n\n")
    if split < 0:
        raise ValueError("no blank line between text and signatures")
    text, sigs = msg[: split + 1], msg[split + 2 :]
    if sigs == "" or not sigs.endswith("\n"):
        raise ValueError("signature lines missing or not ending in a newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > 100:
        raise ValueError("more than 100 signature lines")
    body = text.encode("utf-8")
    signed: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for number, line in enumerate(lines, 1):
        if not line.startswith("\u2014 "):
            raise ValueError("signature line %d does not start with '\u2014 '" % number)
        name, _, b64 = line[2:].partition(" ")
        problem = _name_problem(name)
        if problem is not None:
            raise ValueError("signature line %d: key name %s" % (number, problem))
        raw = b64decode_strict(b64)
        if raw is None or len(raw) <= 4:
            raise ValueError("signature line %d: malformed signature" % number)
        khash, sig = raw[:4], raw[4:]
        matches = [pub for pub in keys.values() if note_key_hash(name, pub) == khash]
        if not matches:
            continue  # a signature by a key the bundle does not carry (a witness): ignored
        if (name, khash) in seen:
            raise ValueError("two signatures by the key of %s" % name)
        seen.add((name, khash))
        if not any(ed25519_verify(pub, body, sig) for pub in matches):
            raise ValueError("the signature by %s (%s) is not valid" % (name, khash.hex()))
        signed.append(name)
    if not signed:
        raise ValueError("no signature by a key in keys/")
    return text, signed


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    """(origin, size, root) of c2sp.org/tlog-checkpoint text. Raises ValueError."""
    if not text.endswith("\n"):
        raise ValueError("checkpoint text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise ValueError("checkpoint needs origin, size and root hash")
    origin, size, root = lines[0], lines[1], lines[2]
    if origin == "" or any(line == "" for line in lines[3:]):
        raise ValueError("checkpoint has an empty line")
    if _DECIMAL.fullmatch(size) is None or len(size) > 20 or int(size) > 2**64 - 1:
        raise ValueError("checkpoint size %r is not a decimal tree size" % size)
    raw = b64decode_strict(root)
    if raw is None or len(raw) != 32:
        raise ValueError("checkpoint root is not a base64 SHA-256 hash")
    return origin, int(size), raw


# --------------------------------------------------------------------------- DER (RFC 3161)

_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
_OID_TST_INFO = bytes.fromhex("2a864886f70d0109100104")
_OID_SHA256 = bytes.fromhex("608648016503040201")


def _der(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at ``pos``."""
    if pos + 2 > end:
        raise ValueError("truncated DER")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("unsupported DER tag")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > end:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise ValueError("non-minimal DER length")
        pos += count
    if pos + length > end:
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, s, e = _der(data, pos, end)
        out.append((tag, s, e))
        pos = e
    return out


def tsr_imprint(data: bytes) -> tuple[bytes, str]:
    """(SHA-256 message imprint, genTime text) of an RFC 3161 TimeStampResp, by a minimal
    walk: TimeStampResp -> ContentInfo -> SignedData -> encapContentInfo -> TSTInfo. It
    does not check the TSA's signature (openssl ts -verify does). Raises ValueError."""
    tag, s, e = _der(data, 0, len(data))
    if tag != 0x30 or e != len(data):
        raise ValueError("not a DER TimeStampResp")
    resp = _children(data, s, e)
    if not resp or resp[0][0] != 0x30:
        raise ValueError("no status")
    status = _children(data, resp[0][1], resp[0][2])
    if (
        not status
        or status[0][0] != 0x02
        or data[status[0][1] : status[0][2]] not in (b"\0", b"\1")
    ):
        raise ValueError("the TSA did not grant the timestamp")
    if len(resp) < 2 or resp[1][0] != 0x30:
        raise ValueError("no timestamp token")
    content_info = _children(data, resp[1][1], resp[1][2])
    if (
        len(content_info) < 2
        or content_info[0][0] != 0x06
        or data[content_info[0][1] : content_info[0][2]] != _OID_SIGNED_DATA
        or content_info[1][0] != 0xA0
    ):
        raise ValueError("the token is not CMS SignedData")
    inner = _children(data, content_info[1][1], content_info[1][2])
    if not inner or inner[0][0] != 0x30:
        raise ValueError("malformed SignedData")
    signed_data = _children(data, inner[0][1], inner[0][2])
    if len(signed_data) < 3 or signed_data[2][0] != 0x30:
        raise ValueError("malformed SignedData")
    encap = _children(data, signed_data[2][1], signed_data[2][2])
    if (
        len(encap) != 2
        or encap[0][0] != 0x06
        or data[encap[0][1] : encap[0][2]] != _OID_TST_INFO
        or encap[1][0] != 0xA0
    ):
        raise ValueError("the token does not hold a TSTInfo")
    octets = _children(data, encap[1][1], encap[1][2])
    if len(octets) != 1 or octets[0][0] != 0x04:
        raise ValueError("malformed TSTInfo")
    tag, s, e = _der(data, octets[0][1], octets[0][2])
    if tag != 0x30 or e != octets[0][2]:
        raise ValueError("malformed TSTInfo")
    tst = _children(data, s, e)
    # version, policy, messageImprint, serialNumber, genTime, ...
    if len(tst) < 5 or tst[2][0] != 0x30 or tst[4][0] != 0x18:
        raise ValueError("malformed TSTInfo")
    imprint = _children(data, tst[2][1], tst[2][2])
    if len(imprint) != 2 or imprint[0][0] != 0x30 or imprint[1][0] != 0x04:
        raise ValueError("malformed messageImprint")
    algorithm = _children(data, imprint[0][1], imprint[0][2])
    if not algorithm or algorithm[0][0] != 0x06:
        raise ValueError("malformed messageImprint")
    if data[algorithm[0][1] : algorithm[0][2]] != _OID_SHA256:
        raise ValueError("the imprint is not SHA-256")
    digest = data[imprint[1][1] : imprint[1][2]]
    gen_time = data[tst[4][1] : tst[4][2]].decode("ascii", "replace")
    return digest, gen_time


def generalized_time_iso(text: str) -> str | None:
    """'20261204030000.5Z' -> '2026-12-04T03:00:00.5Z'; None if not that form."""
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d+)?Z", text)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac = m.groups()
    return "%s-%s-%sT%s:%s:%s%sZ" % (y, mo, d, h, mi, s, frac or "")


def _same_time(a: str, b: str) -> bool:
    """Equal RFC 3339 'Z' times, whatever trailing zeros the fractions carry."""

    def norm(t: str) -> str:
        head, _, frac = t[:-1].partition(".")
        frac = frac.rstrip("0")
        return head + ("." + frac if frac else "")

    return norm(a) == norm(b)


# --------------------------------------------------------------------------- output


def _show(text: str) -> str:
    """A name as safe text for a terminal: control characters and undecodable bytes escaped."""
    out = []
    for c in text:
        o = ord(c)
        if o < 0x20 or o == 0x7F or 0xD800 <= o <= 0xDFFF:
            out.append("\\x%02x" % (o & 0xFF) if o >= 0xD800 else "\\x%02x" % o)
        else:
            out.append(c)
    return "".join(out)


class Report:
    """Prints one line per check as it completes; counts failures."""

    def __init__(self, lang: str, quiet: bool, stream: Any) -> None:
        self.lang = lang
        self.quiet = quiet
        self.stream = stream
        self.passed = 0
        self.failed = 0

    def t(self, en: str, zh: str) -> str:
        return zh if self.lang == "zh" else en

    def ok(self, en: str, zh: str) -> None:
        self.passed += 1
        if not self.quiet:
            self._print(self.t("ok", "通过"), self.t(en, zh))

    def fail(self, en: str, zh: str) -> None:
        self.failed += 1
        self._print(self.t("FAIL", "失败"), self.t(en, zh))

    def check(self, good: bool, en: str, zh: str) -> bool:
        (self.ok if good else self.fail)(en, zh)
        return good

    def note(self, en: str, zh: str) -> None:
        """Information, not a check (shown unless --quiet)."""
        if not self.quiet:
            self.stream.write("      %s\n" % self.t(en, zh))
            self.stream.flush()

    def _print(self, status: str, text: str) -> None:
        self.stream.write("%-5s %s\n" % (status, text))
        self.stream.flush()


# --------------------------------------------------------------------------- the bundle


class Bundle:
    """The bundle folder: what is in it (without following links) and each file's bytes or
    SHA-256, each read once."""

    def __init__(self, root: str, report: Report) -> None:
        self.root = root
        self.r = report
        self.files: dict[str, int] = {}  # relative path -> size, regular files only
        self.dirs: set[str] = set()
        self.links: list[str] = []
        self.odd: list[str] = []  # neither file, folder nor link (fifo, device...)
        self.digest: dict[str, str] = {}  # relative path -> sha256 hex, as read
        self.content: dict[str, bytes] = {}  # small metadata files, the bytes that were hashed
        self.unreadable: dict[str, str] = {}

    def walk(self, rel: str = "", depth: int = 0) -> None:
        path = os.path.join(self.root, *rel.split("/")) if rel else self.root
        try:
            with os.scandir(path) as entries:
                names = sorted(entries, key=lambda e: e.name)
        except OSError as e:
            self.unreadable[rel or "."] = e.strerror or str(e)
            return
        for entry in names:
            sub = rel + "/" + entry.name if rel else entry.name
            if entry.is_symlink():
                self.links.append(sub)
            elif entry.is_dir(follow_symlinks=False):
                self.dirs.add(sub)
                if depth < MAX_DEPTH:
                    self.walk(sub, depth + 1)
                else:
                    self.odd.append(sub)
            elif entry.is_file(follow_symlinks=False):
                self.files[sub] = entry.stat(follow_symlinks=False).st_size
            else:
                self.odd.append(sub)

    def _open(self, rel: str) -> Any:
        path = os.path.join(self.root, *rel.split("/"))
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError("not a regular file")
            return os.fdopen(fd, "rb", buffering=0)
        except BaseException:
            os.close(fd)
            raise

    def read_small(self, rel: str) -> bytes:
        """Read a metadata file whole (before hashing it, so the bytes checked by SHA256SUMS
        are the bytes parsed)."""
        if rel in self.content:
            return self.content[rel]
        if rel not in self.files:
            raise OSError("missing")
        with self._open(rel) as f:
            data = bytes(f.read(SMALL + 1))
        if len(data) > SMALL:
            raise OSError("larger than %d bytes" % SMALL)
        self.content[rel] = data
        return data

    def _hash_stream(self, rel: str) -> tuple[str, str | None]:
        h = hashlib.sha256()
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        try:
            with self._open(rel) as f:
                while True:
                    n = f.readinto(buf)
                    if not n:
                        break
                    h.update(view[:n])
        except OSError as e:
            return rel, e.strerror or str(e)
        return rel, h.hexdigest()

    def hash_all(self, paths: list[str], small: Callable[[str], bool], threads: int) -> None:
        """SHA-256 of every path: small metadata files from memory, the rest streamed in
        ``threads`` threads (hashlib and file reads release the GIL)."""
        big = []
        for rel in paths:
            if small(rel) and self.files.get(rel, SMALL + 1) <= SMALL:
                try:
                    self.digest[rel] = hashlib.sha256(self.read_small(rel)).hexdigest()
                except OSError as e:
                    self.unreadable[rel] = e.strerror or str(e)
            else:
                big.append(rel)
        big.sort(key=lambda p: -self.files.get(p, 0))  # largest first: threads finish together
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for rel, result in pool.map(self._hash_stream, big):
                if result is not None and _HEX64.fullmatch(result):
                    self.digest[rel] = result
                else:
                    self.unreadable[rel] = result or "?"


_ITEM_FILE = re.compile(r"items/([0-9a-f]{64})/([^/]+)")
_TOP_FILES = (
    "README.txt",
    "verify.py",
    "bundle.json",
    "custody-report.html",
    "custody-report.pdf",
    "SHA256SUMS",
    "SHA256SUMS.sig",
    "log/checkpoint",
    "log/consistency.json",
    "log/checkpoint.tsr",
    "log/tsa.pem",
    "keys/fingerprints.txt",
)
_RESERVED = ("manifest.json", "manifest.sig", "custody.json")


def portable_name(name: str) -> bool:
    """docs/bundle.md's portable name: 1-200 UTF-8 bytes, no control character, no slash or
    backslash, no leading dot, not a reserved item file name."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return (
        0 < size <= 200
        and not any(ord(c) < 0x20 or c in "\x7f/\\" for c in name)
        and not name.startswith(".")
        and name not in _RESERVED
    )


def _is_metadata(rel: str) -> bool:
    if rel.startswith(("log/", "keys/")) or rel in ("bundle.json", "SHA256SUMS.sig"):
        return True
    m = _ITEM_FILE.fullmatch(rel)
    return m is not None and m.group(2) in _RESERVED


class Verifier:
    def __init__(self, root: str, report: Report, threads: int) -> None:
        self.b = Bundle(root, report)
        self.r = report
        self.threads = threads
        self.meta: dict[str, Any] = {}
        self.keys: dict[str, bytes] = {}
        self.listed: dict[str, str] = {}
        self.checkpoint: tuple[str, int, bytes] | None = None

    # ---- helpers

    def _content(self, rel: str) -> bytes | None:
        """The bytes of a listed metadata file (hashed in the same read), or None when it
        cannot be had (already reported by the SHA256SUMS checks)."""
        if rel in self.b.content:
            return self.b.content[rel]
        if rel not in self.b.files:
            return None
        try:
            data = self.b.read_small(rel)
        except OSError as e:
            self.r.fail(
                "%s: cannot be read (%s)" % (_show(rel), e),
                "%s：无法读取（%s）" % (_show(rel), e),
            )
            return None
        digest = self.b.digest.get(rel)
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            self.r.fail(
                "%s changed while it was being checked" % _show(rel),
                "%s 在检查过程中被改动" % _show(rel),
            )
            return None
        return data

    def _json(self, rel: str, data: bytes, canonical: bool = True) -> Any:
        try:
            obj = parse_json(data)
        except ValueError as e:
            raise Bad(
                self.r.t(
                    "%s is not valid JSON (%s)" % (rel, e), "%s 不是有效的 JSON（%s）" % (rel, e)
                )
            ) from None
        if canonical and not is_canonical(obj, data):
            raise Bad(
                self.r.t(
                    "%s is not in canonical form (RFC 8785)" % rel,
                    "%s 不是规范格式（RFC 8785）" % rel,
                )
            )
        return obj

    def _sig_ok(self, key_id: str, data: bytes, sig: bytes | None) -> bool:
        pub = self.keys.get(key_id)
        return pub is not None and sig is not None and ed25519_verify(pub, data, sig)

    # ---- 1. files

    def check_files(self) -> None:
        r, b = self.r, self.b
        for rel in b.links:
            r.fail(
                "%s is a symbolic link (a bundle has none; it was not followed)" % _show(rel),
                "%s 是符号链接（包中不应有链接；未跟随）" % _show(rel),
            )
        for rel in b.odd:
            r.fail(
                "%s is not a regular file or folder of a bundle" % _show(rel),
                "%s 不是包中应有的普通文件或文件夹" % _show(rel),
            )
        for rel in sorted(p for p in b.unreadable if p == "." or p in b.dirs):
            r.fail(
                "folder %s cannot be read (%s)" % (_show(rel), b.unreadable[rel]),
                "文件夹 %s 无法读取（%s）" % (_show(rel), b.unreadable[rel]),
            )
        allowed_dirs = {"items", "log", "keys"}
        for item in self.meta.get("items", []) if isinstance(self.meta.get("items"), list) else []:
            if isinstance(item, dict) and isinstance(item.get("sha256"), str):
                allowed_dirs.add("items/" + item["sha256"])
        for rel in sorted(b.dirs - allowed_dirs):
            r.fail(
                "folder %s does not belong in a bundle" % _show(rel),
                "文件夹 %s 不属于本包" % _show(rel),
            )

        data = self._content("SHA256SUMS")
        if data is None:
            return
        listed: dict[str, str] = {}
        problems = []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
            problems.append(r.t("not UTF-8", "不是 UTF-8 编码"))
        if text is not None:
            if text and not text.endswith("\n"):
                problems.append(r.t("last line has no newline", "最后一行没有换行符"))
            previous = None
            for number, line in enumerate(text.split("\n")[:-1], 1):
                m = _SUMS_LINE.fullmatch(line)
                rel = m.group(2) if m else ""
                parts = rel.split("/")
                if m is None or any(p in ("", ".", "..") for p in parts) or "\\" in rel:
                    problems.append(
                        r.t("line %d is malformed" % number, "第 %d 行格式错误" % number)
                    )
                    continue
                if rel in ("SHA256SUMS", "SHA256SUMS.sig"):
                    problems.append(
                        r.t("line %d lists %s" % (number, rel), "第 %d 行列出了 %s" % (number, rel))
                    )
                    continue
                key = rel.encode("utf-8")
                if previous is not None and key <= previous:
                    problems.append(
                        r.t(
                            "line %d is out of order or repeated" % number,
                            "第 %d 行顺序错误或重复" % number,
                        )
                    )
                previous = key
                listed[rel] = m.group(1)
        if problems:
            r.fail(
                "SHA256SUMS is malformed: %s" % "; ".join(problems),
                "SHA256SUMS 格式错误：%s" % "；".join(problems),
            )
        self.listed = listed

        present = [p for p in listed if p in b.files]
        b.hash_all(present, _is_metadata, self.threads)
        bad = 0
        for rel in sorted(listed):
            if rel not in b.files:
                bad += 1
                r.fail(
                    "%s is listed in SHA256SUMS but missing" % _show(rel),
                    "%s 列在 SHA256SUMS 中，但文件缺失" % _show(rel),
                )
            elif rel in b.unreadable:
                bad += 1
                r.fail(
                    "%s cannot be read (%s)" % (_show(rel), b.unreadable[rel]),
                    "%s 无法读取（%s）" % (_show(rel), b.unreadable[rel]),
                )
            elif not hmac.compare_digest(b.digest.get(rel, ""), listed[rel]):
                bad += 1
                r.fail(
                    "%s: SHA-256 differs from SHA256SUMS (the file was changed)" % _show(rel),
                    "%s：SHA-256 与 SHA256SUMS 不符（文件已被改动）" % _show(rel),
                )
        for rel in sorted(set(b.files) - set(listed) - {"SHA256SUMS", "SHA256SUMS.sig"}):
            bad += 1
            r.fail(
                "%s is in the folder but not in SHA256SUMS (a file was added)" % _show(rel),
                "%s 在文件夹中但不在 SHA256SUMS 中（有文件被添加）" % _show(rel),
            )
        if not bad:
            r.ok(
                "SHA256SUMS: all %d files present, none added, each SHA-256 matches" % len(listed),
                "SHA256SUMS：全部 %d 个文件齐全、无多余文件、SHA-256 均一致" % len(listed),
            )
        self._check_layout()

    def _item_files(self) -> set[str]:
        items = self.meta.get("items")
        if not isinstance(items, list):
            return set()
        return {i["file"] for i in items if isinstance(i, dict) and isinstance(i.get("file"), str)}

    def _check_layout(self) -> None:
        """Every listed file is one the format has, and the ones it must have are there."""
        r = self.r
        for rel in sorted(self.listed):
            m = _ITEM_FILE.fullmatch(rel)
            ok = rel in _TOP_FILES or (
                rel.startswith("keys/") and re.fullmatch(r"keys/[0-9a-f]{16}\.pem", rel)
            )
            if m is not None:
                # an item's folder holds its footage (the name bundle.json gives) and the
                # three files of its record, nothing else
                ok = m.group(2) in _RESERVED or rel in self._item_files()
            if not ok:
                r.fail(
                    "%s is not a file a bundle has (docs/bundle.md)" % _show(rel),
                    "%s 不是包格式中应有的文件" % _show(rel),
                )
        required = [
            "README.txt",
            "verify.py",
            "bundle.json",
            "custody-report.html",
            "log/checkpoint",
            "log/consistency.json",
            "keys/fingerprints.txt",
        ]
        if self.meta.get("pdf") is True:
            required.append("custody-report.pdf")
        if self.meta.get("timestamp") is not None:
            required += ["log/checkpoint.tsr", "log/tsa.pem"]
        for footage in sorted(self._item_files()):
            folder = footage.rsplit("/", 1)[0] + "/"
            required += [footage] + [folder + name for name in _RESERVED]
        missing = [p for p in required if p not in self.listed]
        if "SHA256SUMS.sig" not in self.b.files:
            missing.append("SHA256SUMS.sig")
        if missing:
            r.fail(
                "the bundle lacks %s" % ", ".join(missing),
                "包中缺少 %s" % "、".join(missing),
            )

    # ---- bundle.json

    def check_meta(self) -> None:
        r, m = self.r, self.meta
        problems = []

        def need(key: str, good: bool) -> None:
            if not good:
                problems.append(key)

        need(
            "bundle_id",
            isinstance(m.get("bundle_id"), str) and bool(_HEX32.fullmatch(m["bundle_id"])),
        )
        need(
            "created_at",
            isinstance(m.get("created_at"), str) and bool(_TIME.fullmatch(m["created_at"])),
        )
        for key in ("station", "actor", "recipient", "timezone"):
            need(key, isinstance(m.get(key), str))
        need("lang", m.get("lang") in ("zh", "en"))
        need("selection", isinstance(m.get("selection"), dict))
        need(
            "sums_key",
            isinstance(m.get("sums_key"), str) and bool(_KEY_ID.fullmatch(m["sums_key"])),
        )
        need("checkpoint_size", _is_int(m.get("checkpoint_size")) and m["checkpoint_size"] >= 0)
        need("pdf", m.get("pdf") is True or isinstance(m.get("pdf"), str))
        ts = m.get("timestamp", 0)
        need(
            "timestamp",
            ts is None
            or (
                isinstance(ts, dict)
                and isinstance(ts.get("tsa_url"), str)
                and isinstance(ts.get("gen_time"), str)
                and bool(_TIME.fullmatch(ts["gen_time"]))
            ),
        )
        items = m.get("items")
        good_items = isinstance(items, list)
        if isinstance(items, list):
            shas = []
            for item in items:
                if not (
                    isinstance(item, dict)
                    and isinstance(item.get("sha256"), str)
                    and _HEX64.fullmatch(item["sha256"])
                    and isinstance(item.get("file"), str)
                    and isinstance(item.get("original_path"), str)
                    and _is_int(item.get("size"))
                    and isinstance(item.get("verified"), bool)
                    and isinstance(item.get("failures"), list)
                    and all(isinstance(f, str) for f in item["failures"])
                ):
                    good_items = False
                    continue
                shas.append(item["sha256"])
                fm = _ITEM_FILE.fullmatch(item["file"])
                if fm is None or fm.group(1) != item["sha256"] or not portable_name(fm.group(2)):
                    good_items = False
            if shas != sorted(set(shas)):
                good_items = False
        need("items", good_items)
        if problems:
            r.fail(
                "bundle.json: missing or malformed %s" % ", ".join(problems),
                "bundle.json：缺少或格式错误的字段 %s" % "、".join(problems),
            )
        else:
            r.ok(
                "bundle.json: %s, bundle %s, %d item(s), exported %s by %s for %s"
                % (
                    FORMAT,
                    m["bundle_id"],
                    len(m["items"]),
                    m["created_at"],
                    _show(m["actor"]),
                    _show(m["recipient"]),
                ),
                "bundle.json：%s，包编号 %s，%d 件证据，%s 由 %s 为 %s 导出"
                % (
                    FORMAT,
                    m["bundle_id"],
                    len(m["items"]),
                    m["created_at"],
                    _show(m["actor"]),
                    _show(m["recipient"]),
                ),
            )

    # ---- 2. keys, SHA256SUMS.sig

    def check_keys(self) -> None:
        r = self.r
        ders: dict[str, bytes] = {}
        for rel in sorted(p for p in self.listed if p.startswith("keys/") and p.endswith(".pem")):
            name = rel[len("keys/") : -len(".pem")]
            data = self._content(rel)
            if data is None:
                continue
            parsed = parse_spki_pem(data)
            if parsed is None:
                r.fail(
                    "%s is not an Ed25519 public key (SubjectPublicKeyInfo PEM)" % rel,
                    "%s 不是 Ed25519 公钥（SubjectPublicKeyInfo PEM）" % rel,
                )
                continue
            raw, der = parsed
            if key_id_of(raw) != name:
                r.fail(
                    "%s: the key's id is %s, not its file name" % (rel, key_id_of(raw)),
                    "%s：密钥编号为 %s，与文件名不符" % (rel, key_id_of(raw)),
                )
                continue
            if not ed25519_public_key_ok(raw):
                r.fail("%s is not a valid Ed25519 key" % rel, "%s 不是有效的 Ed25519 密钥" % rel)
                continue
            self.keys[name] = raw
            ders[name] = der
            r.ok(
                "%s: Ed25519 public key, its id matches its file name" % rel,
                "%s：Ed25519 公钥，编号与文件名一致" % rel,
            )
        data = self._content("keys/fingerprints.txt")
        if data is not None:
            want = "".join(
                "%s  %s.pem\n" % (hashlib.sha256(der).hexdigest(), k) for k, der in ders.items()
            )
            want_lines = sorted(want.splitlines(True))
            listed_keys = {
                p[5:-4] for p in self.listed if re.fullmatch(r"keys/[0-9a-f]{16}\.pem", p)
            }
            r.check(
                data == "".join(want_lines).encode("ascii") and listed_keys == set(ders),
                "keys/fingerprints.txt: the SHA-256 of each key's DER, as openssl prints it",
                "keys/fingerprints.txt：与每个密钥 DER 的 SHA-256 一致（与 openssl 输出相同）",
            )
        sums_key = self.meta.get("sums_key")
        sums = self.b.content.get("SHA256SUMS")
        sig = self._content("SHA256SUMS.sig")
        r.check(
            isinstance(sums_key, str) and sums is not None and self._sig_ok(sums_key, sums, sig),
            "SHA256SUMS.sig: Ed25519 signature over SHA256SUMS by keys/%s.pem"
            % _show(str(sums_key)),
            "SHA256SUMS.sig：keys/%s.pem 对 SHA256SUMS 的 Ed25519 签名有效" % _show(str(sums_key)),
        )

    # ---- 4. checkpoint, consistency, timestamp

    def check_checkpoint(self) -> None:
        r = self.r
        data = self._content("log/checkpoint")
        if data is None:
            return
        try:
            text, names = open_note(data, self.keys)
            origin, size, root = parse_checkpoint(text)
        except ValueError as e:
            r.fail(
                "log/checkpoint: not a valid signed checkpoint (%s)" % e,
                "log/checkpoint：不是有效的签名检查点（%s）" % e,
            )
            return
        station = self.meta.get("station")
        if station not in names:
            r.fail(
                "log/checkpoint: not signed by the exporting station %s (signed by %s)"
                % (_show(str(station)), ", ".join(map(_show, names))),
                "log/checkpoint：未由导出工作站 %s 签名（签名者 %s）"
                % (_show(str(station)), "、".join(map(_show, names))),
            )
            return
        if size != self.meta.get("checkpoint_size"):
            r.fail(
                "log/checkpoint: tree size %d, bundle.json says %s"
                % (size, self.meta.get("checkpoint_size")),
                "log/checkpoint：树大小 %d，而 bundle.json 为 %s"
                % (size, self.meta.get("checkpoint_size")),
            )
            return
        self.checkpoint = (origin, size, root)
        r.ok(
            "log/checkpoint: signed by %s; log %s, %d entries, root %s"
            % (_show(str(station)), _show(origin), size, root.hex()),
            "log/checkpoint：由 %s 签名；日志 %s，%d 条记录，根哈希 %s"
            % (_show(str(station)), _show(origin), size, root.hex()),
        )

    def check_consistency(self) -> None:
        r = self.r
        rel = "log/consistency.json"
        data = self._content(rel)
        if data is None or self.checkpoint is None:
            if data is not None:
                r.fail(
                    "%s: not checked, the checkpoint is not valid" % rel,
                    "%s：检查点无效，无法检查" % rel,
                )
            return
        origin, size, root = self.checkpoint
        try:
            obj = self._json(rel, data)
            if not isinstance(obj, dict) or set(obj) != {
                "from_checkpoint",
                "from_size",
                "proof",
                "to_size",
            }:
                raise Bad(r.t("%s: unexpected fields" % rel, "%s：字段不符" % rel))
            m, n, note = obj["from_size"], obj["to_size"], obj["from_checkpoint"]
            proof = obj["proof"]
            hashes = [b64decode_strict(h) for h in proof] if isinstance(proof, list) else [None]
            if (
                not _is_int(m)
                or not _is_int(n)
                or any(h is None for h in hashes)
                or not (note is None or isinstance(note, str))
            ):
                raise Bad(r.t("%s: malformed fields" % rel, "%s：字段格式错误" % rel))
            if n != size:
                raise Bad(
                    r.t(
                        "%s: to_size %d is not the checkpoint's size %d" % (rel, n, size),
                        "%s：to_size %d 与检查点大小 %d 不符" % (rel, n, size),
                    )
                )
            if note is None:
                if m != 0 or hashes:
                    raise Bad(
                        r.t(
                            "%s: no earlier checkpoint, yet from_size %d" % (rel, m),
                            "%s：没有先前检查点，但 from_size 为 %d" % (rel, m),
                        )
                    )
                r.ok(
                    "%s: no checkpoint was published before this export (nothing to compare)" % rel,
                    "%s：此次导出前未发布过检查点（无可比对）" % rel,
                )
                return
            try:
                text, names = open_note(note.encode("utf-8"), self.keys)
                old_origin, old_size, old_root = parse_checkpoint(text)
            except (ValueError, UnicodeEncodeError) as e:
                raise Bad(
                    r.t(
                        "%s: the earlier checkpoint is not validly signed (%s)" % (rel, e),
                        "%s：先前检查点签名无效（%s）" % (rel, e),
                    )
                ) from None
            if old_origin != origin or old_size != m:
                raise Bad(
                    r.t(
                        "%s: the earlier checkpoint is of log %s size %d, not %s size %d"
                        % (rel, _show(old_origin), old_size, _show(origin), m),
                        "%s：先前检查点为日志 %s 大小 %d，而非 %s 大小 %d"
                        % (rel, _show(old_origin), old_size, _show(origin), m),
                    )
                )
            if m == 0:
                # An earlier checkpoint of the empty log: every log extends it.
                good = not hashes and old_root == hashlib.sha256(b"").digest()
                problem = None if good else "an empty tree has the empty root and no proof"
            else:
                problem = verify_consistency(
                    m, n, [h for h in hashes if h is not None], old_root, root
                )
            if problem is not None:
                raise Bad(
                    r.t(
                        "%s: consistency proof from size %d to %d fails: %s" % (rel, m, n, problem),
                        "%s：从 %d 到 %d 的一致性证明不成立：%s" % (rel, m, n, problem),
                    )
                )
            r.ok(
                "%s: the log at export (%d entries) extends the checkpoint published before "
                "(%d entries, signed by %s)" % (rel, n, m, ", ".join(map(_show, names))),
                "%s：导出时的日志（%d 条）是先前发布检查点（%d 条，%s 签名）的延续"
                % (rel, n, m, "、".join(map(_show, names))),
            )
        except Bad as e:
            r.fail(str(e), str(e))

    def check_timestamp(self) -> None:
        r = self.r
        rel = "log/checkpoint.tsr"
        ts = self.meta.get("timestamp")
        if rel not in self.listed:
            if ts is not None:
                r.fail(
                    "bundle.json records a timestamp but log/checkpoint.tsr is missing",
                    "bundle.json 记录了时间戳，但缺少 log/checkpoint.tsr",
                )
            return
        data = self._content(rel)
        checkpoint = self.b.content.get("log/checkpoint")
        if data is None or checkpoint is None:
            return
        try:
            digest, gen_time = tsr_imprint(data)
        except (ValueError, IndexError) as e:
            r.fail(
                "%s: not a readable RFC 3161 timestamp (%s)" % (rel, e),
                "%s：不是可读的 RFC 3161 时间戳（%s）" % (rel, e),
            )
            return
        if not hmac.compare_digest(digest, hashlib.sha256(checkpoint).digest()):
            r.fail(
                "%s: its message imprint is not the SHA-256 of log/checkpoint" % rel,
                "%s：消息摘要与 log/checkpoint 的 SHA-256 不符" % rel,
            )
            return
        iso = generalized_time_iso(gen_time)
        if not isinstance(ts, dict) or iso is None or not _same_time(iso, str(ts.get("gen_time"))):
            r.fail(
                "%s: time %s, but bundle.json records %s"
                % (
                    rel,
                    _show(gen_time),
                    _show(str(ts.get("gen_time") if isinstance(ts, dict) else None)),
                ),
                "%s：时间为 %s，而 bundle.json 记录为 %s"
                % (
                    rel,
                    _show(gen_time),
                    _show(str(ts.get("gen_time") if isinstance(ts, dict) else None)),
                ),
            )
            return
        r.ok(
            "%s: a timestamp of log/checkpoint (SHA-256 imprint), time %s UTC" % (rel, iso),
            "%s：对 log/checkpoint 的时间戳（SHA-256 摘要一致），时间 %s UTC" % (rel, iso),
        )
        r.note(
            "The time-stamping authority's signature is not checked by verify.py: check it with "
            "`openssl ts -verify` as README.txt explains.",
            "时间戳机构的签名不由 verify.py 检查：请按 README.txt 用 `openssl ts -verify` 检查。",
        )

    # ---- 3. items

    def check_items(self) -> None:
        items = self.meta.get("items")
        if not isinstance(items, list):
            return
        for item in items:
            if (
                isinstance(item, dict)
                and isinstance(item.get("sha256"), str)
                and _HEX64.fullmatch(item["sha256"])
            ):
                try:
                    self.check_item(item)
                except Bad as e:
                    self.r.fail(str(e), str(e))

    def check_item(self, item: dict[str, Any]) -> None:
        r = self.r
        sha = item["sha256"]
        short = sha[:12]
        folder = "items/%s/" % sha
        footage = item.get("file")
        if not isinstance(footage, str) or not footage.startswith(folder):
            raise Bad(
                r.t(
                    "item %s: bad file name in bundle.json" % short,
                    "证据 %s：bundle.json 中文件名错误" % short,
                )
            )

        # the footage against the manifest
        mrel = folder + "manifest.json"
        manifest_bytes = self._content(mrel)
        if manifest_bytes is None:
            raise Bad(
                r.t(
                    "item %s: %s cannot be checked" % (short, mrel),
                    "证据 %s：无法检查 %s" % (short, mrel),
                )
            )
        manifest = self._json(mrel, manifest_bytes)
        if not isinstance(manifest, dict) or manifest.get("schema") != "bwc.manifest/1":
            raise Bad(r.t("%s is not a bwc manifest" % mrel, "%s 不是 bwc 清单" % mrel))
        size = self.b.files.get(footage)
        digest = self.b.digest.get(footage)
        if digest is None or size is None:
            r.fail(
                "item %s: footage %s missing or unreadable" % (short, _show(footage)),
                "证据 %s：影像文件 %s 缺失或无法读取" % (short, _show(footage)),
            )
        else:
            name = _show(footage[len(folder) :])
            wrong = []
            if not (manifest.get("sha256") == sha == digest):
                wrong.append(r.t("its SHA-256 is %s" % digest, "其 SHA-256 为 %s" % digest))
            if not (_is_int(manifest.get("size")) and manifest.get("size") == size):
                wrong.append(r.t("its size is %d" % size, "其大小为 %d" % size))
            if item.get("size") != size or item.get("original_path") != manifest.get("path"):
                wrong.append(r.t("bundle.json differs", "bundle.json 不一致"))
            if wrong:
                # a failure names the whole path, for the clerk to find the file
                r.fail(
                    "item %s: %s is not what its manifest states: %s"
                    % (short, _show(footage), "; ".join(wrong)),
                    "证据 %s：%s 与清单不符：%s" % (short, _show(footage), "；".join(wrong)),
                )
            else:
                r.ok(
                    "item %s: %s has the SHA-256 and size (%d bytes) its manifest states"
                    % (short, name, size),
                    "证据 %s：%s 的 SHA-256 和大小（%d 字节）与清单一致" % (short, name, size),
                )

        key_id = manifest.get("key_id")
        srel = folder + "manifest.sig"
        sig = self._content(srel)
        if not isinstance(key_id, str) or key_id not in self.keys:
            r.fail(
                "item %s: %s names key %s, which is not in keys/"
                % (short, mrel, _show(str(key_id))),
                "证据 %s：%s 指定的密钥 %s 不在 keys/ 中" % (short, mrel, _show(str(key_id))),
            )
        elif sig is None:
            r.fail(
                "item %s: manifest.sig is missing or unreadable" % short,
                "证据 %s：manifest.sig 缺失或无法读取" % short,
            )
        else:
            if self._sig_ok(key_id, manifest_bytes, sig):
                r.ok(
                    "item %s: manifest.sig is a valid Ed25519 signature by keys/%s.pem"
                    % (short, key_id),
                    "证据 %s：manifest.sig 是 keys/%s.pem 的有效 Ed25519 签名" % (short, key_id),
                )
            else:
                r.fail(
                    "item %s: %s is not a valid Ed25519 signature of %s by keys/%s.pem"
                    % (short, srel, mrel, key_id),
                    "证据 %s：%s 不是 keys/%s.pem 对 %s 的有效 Ed25519 签名"
                    % (short, srel, key_id, mrel),
                )

        try:
            self._check_custody(sha, short, hashlib.sha256(manifest_bytes).hexdigest())
        except Bad as e:  # reported; the item's other checks still run
            r.fail(str(e), str(e))

        if item.get("verified") is not True:
            failures = "; ".join(_show(f) for f in item.get("failures", []) if isinstance(f, str))
            r.fail(
                "item %s: the exporter marked it as failed its own checks: %s"
                % (short, failures or "?"),
                "证据 %s：导出时的校验未通过：%s" % (short, failures or "?"),
            )

    def _check_custody(self, sha: str, short: str, manifest_sha: str) -> None:
        r = self.r
        rel = "items/%s/custody.json" % sha
        data = self._content(rel)
        if data is None:
            raise Bad(
                r.t(
                    "item %s: custody.json is missing or unreadable" % short,
                    "证据 %s：custody.json 缺失或无法读取" % short,
                )
            )
        if self.checkpoint is None:
            r.fail(
                "item %s: custody events not checked, the checkpoint is not valid" % short,
                "证据 %s：检查点无效，未检查保管记录" % short,
            )
            return
        origin, size, root = self.checkpoint
        obj = self._json(rel, data)
        if not isinstance(obj, dict) or set(obj) != {
            "checkpoint_size",
            "events",
            "origin",
            "sha256",
        }:
            raise Bad(r.t("%s: unexpected fields" % rel, "%s：字段不符" % rel))
        if obj["sha256"] != sha or obj["origin"] != origin or obj["checkpoint_size"] != size:
            raise Bad(
                r.t(
                    "%s: names another item, log or checkpoint size" % rel,
                    "%s：所指证据、日志或检查点大小不符" % rel,
                )
            )
        events = obj["events"]
        if not isinstance(events, list) or not events:
            raise Bad(r.t("%s: no events" % rel, "%s：没有保管事件" % rel))
        decoded = []
        previous = -1
        for n, ev in enumerate(events):
            where = r.t("%s event %d" % (rel, n + 1), "%s 第 %d 个事件" % (rel, n + 1))
            if not isinstance(ev, dict) or set(ev) != {"index", "leaf", "proof"}:
                raise Bad(r.t("%s: unexpected fields" % where, "%s：字段不符" % where))
            index, leaf = ev["index"], b64decode_strict(ev["leaf"])
            proof = ev["proof"]
            hashes = [b64decode_strict(h) for h in proof] if isinstance(proof, list) else [None]
            if not _is_int(index) or leaf is None or any(h is None for h in hashes):
                raise Bad(
                    r.t(
                        "%s: malformed index, leaf or proof" % where,
                        "%s：索引、叶或证明格式错误" % where,
                    )
                )
            if index <= previous:
                raise Bad(
                    r.t(
                        "%s: events are not in log order" % where,
                        "%s：事件未按日志顺序排列" % where,
                    )
                )
            previous = index
            try:
                event = parse_json(leaf)
            except ValueError as e:
                raise Bad(
                    r.t(
                        "%s: the leaf is not JSON (%s)" % (where, e),
                        "%s：叶不是 JSON（%s）" % (where, e),
                    )
                ) from None
            if not isinstance(event, dict) or event.get("v") != 1 or not is_canonical(event, leaf):
                raise Bad(
                    r.t("%s: the leaf is not a bwc event" % where, "%s：叶不是 bwc 事件" % where)
                )
            if event.get("index") != index or event.get("item") != sha:
                raise Bad(
                    r.t(
                        "%s: the leaf is of index %s, item %s"
                        % (where, event.get("index"), _show(str(event.get("item")))[:16]),
                        "%s：叶的索引为 %s，证据为 %s"
                        % (where, event.get("index"), _show(str(event.get("item")))[:16]),
                    )
                )
            problem = verify_inclusion(
                leaf_hash(leaf), index, size, [h for h in hashes if h is not None], root
            )
            if problem is not None:
                raise Bad(
                    r.t(
                        "%s (log entry %d): inclusion proof fails: %s" % (where, index, problem),
                        "%s（日志第 %d 条）：包含证明不成立：%s" % (where, index, problem),
                    )
                )
            decoded.append(event)
        r.ok(
            "item %s: %d custody event(s), each proved to be in the log at the checkpoint"
            % (short, len(decoded)),
            "证据 %s：%d 个保管事件，均已证明在检查点时的日志中" % (short, len(decoded)),
        )

        def details(ev: dict[str, Any]) -> dict[str, Any]:
            d = ev.get("details")
            return d if isinstance(d, dict) else {}

        kinds = [ev.get("kind") for ev in decoded]
        # The manifest the log recorded for the item: the last intake or attribution (an
        # `exported` event repeats what the exporter sent, so it must agree, not decide).
        logged = [
            details(ev).get("manifest_sha256")
            for ev in decoded
            if ev.get("kind") in ("ingested", "attributed") and "manifest_sha256" in details(ev)
        ]
        bundle_id = self.meta.get("bundle_id")
        exports = [ev for ev in decoded if ev.get("kind") == "exported"]
        this_export = [ev for ev in exports if details(ev).get("bundle") == bundle_id]
        problems = []
        if kinds[0] != "ingested":
            problems.append(
                r.t(
                    "the first event is %s, not ingested" % _show(str(kinds[0])),
                    "第一个事件为 %s，不是入库（ingested）" % _show(str(kinds[0])),
                )
            )
        if not logged or logged[-1] != manifest_sha:
            problems.append(
                r.t(
                    "items/%s/manifest.json is not the manifest the log recorded" % sha,
                    "items/%s/manifest.json 不是日志记录的清单" % sha,
                )
            )
        elif any(
            details(ev).get("manifest_sha256", manifest_sha) != manifest_sha for ev in this_export
        ):
            problems.append(
                r.t(
                    "the log records another manifest exported in this bundle",
                    "日志记录的本次导出清单与 manifest.json 不符",
                )
            )
        if not this_export:
            problems.append(r.t("the log does not record this export", "日志中没有本次导出的记录"))
        # what bundle.json says about the export is what the log recorded
        items = self.meta.get("items")
        item = (
            next((i for i in items if isinstance(i, dict) and i.get("sha256") == sha), {})
            if isinstance(items, list)
            else {}
        )
        said = {"recipient": self.meta.get("recipient"), "verified": item.get("verified")}
        for ev in this_export:
            for key, value in said.items():
                if key in details(ev) and details(ev)[key] != value:
                    problems.append(
                        r.t(
                            "bundle.json's %s differs from the logged export's" % key,
                            "bundle.json 的 %s 与日志记录的导出不符" % key,
                        )
                    )
            if ev.get("actor") != self.meta.get("actor"):
                problems.append(
                    r.t(
                        "bundle.json's actor differs from the logged export's",
                        "bundle.json 的 actor 与日志记录的导出不符",
                    )
                )
        if "deleted-by-policy" in kinds:
            problems.append(r.t("the log records its deletion", "日志记录了其删除"))
        if problems:
            r.fail(
                "item %s: custody: %s" % (short, "; ".join(problems)),
                "证据 %s：保管链：%s" % (short, "；".join(problems)),
            )
        else:
            r.ok(
                "item %s: custody: ingested first, manifest as logged, this export logged, "
                "not deleted" % short,
                "证据 %s：保管链：首个事件为入库、清单与日志一致、本次导出已记录、未被删除" % short,
            )

    # ---- all

    def run(self) -> None:
        self.check_meta()
        self.check_files()
        self.check_keys()
        self.check_checkpoint()
        self.check_consistency()
        self.check_timestamp()
        self.check_items()


# --------------------------------------------------------------------------- entry point


def _not_a_bundle(lang: str | None, en: str, zh: str) -> int:
    if lang == "en":
        text = en
    elif lang == "zh":
        text = zh
    else:
        text = "%s / %s" % (zh, en)
    sys.stdout.write("%s\n" % text)
    return EXIT_NOT_A_BUNDLE


def main(argv: Sequence[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(
        prog="verify.py",
        description="Check a bwc court bundle (bwc-bundle/1) with the Python standard library "
        "only. 仅用 Python 标准库检查 bwc 法庭证据包。",
    )
    parser.add_argument(
        "bundle",
        nargs="?",
        default=here,
        help="the bundle folder (default: the folder verify.py is in) / 证据包文件夹",
    )
    parser.add_argument(
        "--lang",
        choices=("zh", "en"),
        help="language of the output (default: the bundle's) / 输出语言（默认为包的语言）",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="print only failures and the verdict / 只输出失败项和结论",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="files hashed at the same time (default 2) / 同时计算哈希的文件数（默认 2）",
    )
    args = parser.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):
        # a console that cannot show Chinese gets escapes, not a crash
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]

    root = args.bundle
    lang = args.lang
    meta_path = os.path.join(root, "bundle.json")
    try:
        st = os.lstat(meta_path)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("bundle.json is not a regular file")
        with open(meta_path, "rb") as f:
            meta_bytes = f.read(SMALL + 1)
    except OSError:
        return _not_a_bundle(
            lang,
            "%s is not a bundle: no readable bundle.json" % _show(root),
            "%s 不是证据包：没有可读的 bundle.json" % _show(root),
        )
    try:
        meta = parse_json(meta_bytes)
    except ValueError as e:
        return _not_a_bundle(
            lang, "bundle.json is not valid JSON (%s)" % e, "bundle.json 不是有效的 JSON（%s）" % e
        )
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return _not_a_bundle(
            lang,
            "bundle.json: not a %s bundle" % FORMAT,
            "bundle.json：不是 %s 格式的证据包" % FORMAT,
        )
    try:
        has_sums = stat.S_ISREG(os.lstat(os.path.join(root, "SHA256SUMS")).st_mode)
    except OSError:
        has_sums = False
    if not has_sums:
        return _not_a_bundle(
            lang,
            "%s is not a bundle: no SHA256SUMS" % _show(root),
            "%s 不是证据包：没有 SHA256SUMS" % _show(root),
        )
    if lang is None:
        lang = meta.get("lang") if meta.get("lang") in ("zh", "en") else "en"

    report = Report(lang, args.quiet, sys.stdout)
    v = Verifier(root, report, args.threads)
    v.meta = meta
    v.b.content["bundle.json"] = bytes(meta_bytes)
    if not is_canonical(meta, meta_bytes):
        report.fail(
            "bundle.json is not in canonical form (RFC 8785)",
            "bundle.json 不是规范格式（RFC 8785）",
        )
    try:
        v.b.walk()
        v.run()
    except Exception as e:  # a defect of verify.py itself, or an unforeseen bundle: never "ok"
        report.fail(
            "verify.py could not finish (%s: %s): the bundle is NOT verified"
            % (type(e).__name__, _show(str(e))),
            "verify.py 未能完成检查（%s：%s）：证据包未经验证" % (type(e).__name__, _show(str(e))),
        )
    total = report.passed + report.failed
    if report.failed:
        report._print(
            report.t("FAIL", "失败"),
            report.t(
                "VERDICT: %d of %d checks FAILED. Do not rely on this bundle as it is."
                % (report.failed, total),
                "结论：%d 项检查中有 %d 项失败。不应按现状采信本证据包。" % (total, report.failed),
            ),
        )
        return EXIT_FAILED
    report._print(
        report.t("ok", "通过"),
        report.t(
            "VERDICT: all %d checks passed. The bundle is intact and self-consistent; compare "
            "keys/fingerprints.txt with the bureau's published key fingerprints." % total,
            "结论：全部 %d 项检查通过。证据包完整且自洽；请将 keys/fingerprints.txt 与执法机关"
            "公布的密钥指纹比对。" % total,
        ),
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
