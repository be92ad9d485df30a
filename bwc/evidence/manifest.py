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

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "sha256": self.sha256,
            "size": self.size,
            "path": self.path,
            "path_encoding": self.path_encoding,
            "device_id": self.device_id,
            "officer_id": self.officer_id,
            "recorded_start": format_utc(self.recorded_start) if self.recorded_start else None,
            "recorded_end": format_utc(self.recorded_end) if self.recorded_end else None,
            "start_source": self.start_source,
            "media": self.media,
            "station_id": self.station_id,
            "ingested_at": format_utc(self.ingested_at),
            "key_id": self.key_id,
            "flags": sorted(set(self.flags)),
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


def parse_manifest(data: bytes) -> Manifest:
    """Parse signed manifest bytes; raise VerificationError when malformed."""
    try:
        obj = loads(data)
        if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
            raise ValueError(
                f"unknown schema {obj.get('schema') if isinstance(obj, dict) else None!r}"
            )
        sha = obj["sha256"]
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            raise ValueError("bad sha256")
        size = obj["size"]
        if not isinstance(size, int) or size < 0:
            raise ValueError("bad size")
        rs, re_ = obj["recorded_start"], obj["recorded_end"]
        return Manifest(
            sha256=sha,
            size=size,
            path=str(obj["path"]),
            path_encoding=str(obj["path_encoding"]),
            device_id=obj["device_id"],
            officer_id=obj["officer_id"],
            recorded_start=parse_utc(rs) if rs else None,
            recorded_end=parse_utc(re_) if re_ else None,
            start_source=str(obj["start_source"]),
            media=obj["media"],
            station_id=str(obj["station_id"]),
            ingested_at=parse_utc(obj["ingested_at"]),
            key_id=str(obj["key_id"]),
            flags=tuple(obj["flags"]),
        )
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as e:
        raise VerificationError(f"malformed manifest: {e}") from e
