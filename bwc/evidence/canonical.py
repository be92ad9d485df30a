"""RFC 8785 (JSON Canonicalization Scheme) bytes for everything that is signed or logged.

Signed data holds no floats, so its canonical form is what ``json.dumps`` writes with sorted
keys, no spaces and no ASCII escaping, provided every key sorts the same by code point as by
UTF-16 code unit (true below U+D800) and every integer is one JCS can carry (|n| < 2**53).
Those values take that path, ~5 times faster than the ``rfc8785`` package, which is the
reference and handles everything else; a property test holds the two to the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_MAX_SAFE = 2**53 - 1  # the reference refuses 2**53 and beyond
_encode = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
).encode


def canonical_json(value: Any) -> bytes:
    """Canonical bytes of ``value``. Floats are refused: signed data uses integers and strings
    so that every implementation reproduces the same bytes."""
    if _plain(value):
        return _encode(value).encode("utf-8")
    _reject_floats(value)
    return bytes(rfc8785.dumps(value))


def loads(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError as e:  # a tampered row nested past the stack: malformed, not a crash
        raise ValueError("JSON nested too deeply") from e


def is_canonical(data: bytes) -> bool:
    try:
        return canonical_json(loads(data)) == data
    except (ValueError, TypeError, UnicodeDecodeError):
        return False


def _plain(value: Any) -> bool:
    """Whether ``value`` is one the fast path writes exactly as RFC 8785 does."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or v is None or t is bool:
            continue
        if t is int:
            if -_MAX_SAFE <= v <= _MAX_SAFE:
                continue
            return False
        if t is dict:
            for k, x in v.items():
                if type(k) is not str or not (k.isascii() or max(k) < "\ud800"):
                    return False
                stack.append(x)
        elif t is list or t is tuple:
            stack.extend(v)
        else:
            return False  # floats, and anything json would convert on its own
    return True


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in signed data")
    if isinstance(value, dict):
        for v in value.values():
            _reject_floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _reject_floats(v)
