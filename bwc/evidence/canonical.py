"""RFC 8785 (JSON Canonicalization Scheme) bytes for everything that is signed or logged."""

from __future__ import annotations

import json
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    """Canonical bytes of ``value``. Floats are refused: signed data uses integers and strings
    so that every implementation reproduces the same bytes."""
    _reject_floats(value)
    return bytes(rfc8785.dumps(value))


def loads(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))


def is_canonical(data: bytes) -> bool:
    try:
        return canonical_json(loads(data)) == data
    except (ValueError, TypeError, UnicodeDecodeError):
        return False


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in signed data")
    if isinstance(value, dict):
        for v in value.values():
            _reject_floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _reject_floats(v)
