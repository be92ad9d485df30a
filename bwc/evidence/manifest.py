"""The manifest: the signed statement about one evidence item (RFC 8785 canonical JSON).

Pure: values in, bytes or values out. The exact signed bytes are stored (catalog and store)
and never re-serialised for verification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bwc.errors import VerificationError
from bwc.evidence.canonical import canonical_json, loads
from bwc.evidence.timefmt import format_utc, parse_utc

SCHEMA = "bwc.manifest/1"

# Flags say what a reader must know about an item; they never make it less of an item.
FLAG_ZERO_BYTE = "zero-byte"
FLAG_NOT_MEDIA = "not-media"
FLAG_NO_RECORDED_TIME = "no-recorded-time"
FLAG_NON_UTF8_NAME = "non-utf8-name"
FLAG_UNATTRIBUTED = "unattributed"
# the camera's id file (ID.TXT at its root, read for the device and officer ids): camera
# metadata, kept as evidence like every file on the card, but not footage to attribute
FLAG_ID_FILE = "id-file"
# the device id claimed disagrees with the camera's USB serial (bwc.ingest.identity)
FLAG_DEVICE_MISMATCH = "device-mismatch"

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Manifest:
    sha256: str
    size: int
    path: str
    path_encoding: str  # "utf-8" or "percent-encoded-bytes"
    device_id: str | None
    officer_id: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    start_source: str  # "profile", "container", "operator" or "unknown"
    media: dict[str, Any] | None
    station_id: str
    ingested_at: datetime
    key_id: str
    flags: tuple[str, ...]
    # Where device and officer came from ("operator", "profile", "id-file", "ledger") and the
    # recorder profile that matched the name, if any.
    device_source: str | None = None
    officer_source: str | None = None
    profile: str | None = None

    def __post_init__(self) -> None:
        # One spelling of a flag set (sorted, no repeats), the one that is signed.
        object.__setattr__(self, "flags", tuple(sorted(set(self.flags))))

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "sha256": self.sha256,
            "size": self.size,
            "path": self.path,
            "path_encoding": self.path_encoding,
            "device_id": self.device_id,
            "device_source": self.device_source,
            "officer_id": self.officer_id,
            "officer_source": self.officer_source,
            "profile": self.profile,
            "recorded_start": format_utc(self.recorded_start) if self.recorded_start else None,
            "recorded_end": format_utc(self.recorded_end) if self.recorded_end else None,
            "start_source": self.start_source,
            "media": self.media,
            "station_id": self.station_id,
            "ingested_at": format_utc(self.ingested_at),
            "key_id": self.key_id,
            "flags": list(self.flags),
        }

    def canonical(self) -> bytes:
        return canonical_json(self.to_json())


def encode_path(raw: bytes) -> tuple[str, str]:
    """A path as text for the manifest, losslessly: UTF-8 when it is valid UTF-8, else every
    byte outside printable ASCII (and '%') percent-encoded."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        out = "".join(chr(b) if 0x20 < b < 0x7F and b != 0x25 else f"%{b:02X}" for b in raw)
        return out, "percent-encoded-bytes"


def decode_path(text: str, encoding: str) -> bytes:
    if encoding == "utf-8":
        return text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(ord(text[i]))
            i += 1
    return bytes(out)


def recorded_end(start: datetime | None, media: dict[str, Any] | None) -> datetime | None:
    if start is None or not media or media.get("duration_ms") is None:
        return None
    return start + timedelta(milliseconds=int(media["duration_ms"]))


def _str(obj: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    v = obj[key]
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise ValueError(f"{key} must be a string")
    return v


def _time(obj: dict[str, Any], key: str, *, optional: bool = False) -> datetime | None:
    v = _str(obj, key, optional=optional)
    return None if v is None else parse_utc(v)


def parse_manifest(data: bytes) -> Manifest:
    """Parse signed manifest bytes strictly (every field present, of its type); raise
    VerificationError when malformed."""
    try:
        obj = loads(data)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        if obj.get("schema") != SCHEMA:
            raise ValueError(f"unknown schema {obj.get('schema')!r}")
        sha = _str(obj, "sha256")
        if sha is None or not _SHA_RE.match(sha):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        size = obj["size"]
        if type(size) is not int or size < 0:
            raise ValueError("size must be a whole number >= 0")
        encoding = _str(obj, "path_encoding")
        if encoding not in ("utf-8", "percent-encoded-bytes"):
            raise ValueError(f"unknown path_encoding {encoding!r}")
        flags = obj["flags"]
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise ValueError("flags must be a list of strings")
        media = obj["media"]
        if media is not None and not isinstance(media, dict):
            raise ValueError("media must be an object or null")
        ingested_at = _time(obj, "ingested_at")
        assert ingested_at is not None
        return Manifest(
            sha256=sha,
            size=size,
            path=str(_str(obj, "path")),
            path_encoding=encoding,
            device_id=_str(obj, "device_id", optional=True),
            officer_id=_str(obj, "officer_id", optional=True),
            recorded_start=_time(obj, "recorded_start", optional=True),
            recorded_end=_time(obj, "recorded_end", optional=True),
            start_source=str(_str(obj, "start_source")),
            media=media,
            station_id=str(_str(obj, "station_id")),
            ingested_at=ingested_at,
            key_id=str(_str(obj, "key_id")),
            flags=tuple(flags),
            device_source=_str(obj, "device_source", optional=True),
            officer_source=_str(obj, "officer_source", optional=True),
            profile=_str(obj, "profile", optional=True),
        )
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as e:
        raise VerificationError(f"malformed manifest: {e}") from e
