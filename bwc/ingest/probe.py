"""Media summaries from ffprobe (Debian's ffmpeg) through ffmpeg-python.

The only module that runs ffmpeg. A file ffprobe cannot read is still evidence: the probe
returns ``None`` and the caller flags the item ``not-media``.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import ffmpeg

from bwc.evidence.timefmt import format_utc

logger = logging.getLogger(__name__)

MediaSummary = dict[str, Any]


class MediaProbe(Protocol):
    def probe(self, path: Path) -> MediaSummary | None: ...


def _duration_ms(value: Any) -> int | None:
    try:
        d = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return round(d * 1000) if d >= 0 else None


def _creation_time(tags: dict[str, Any]) -> str | None:
    raw = tags.get("creation_time")
    if not isinstance(raw, str):
        return None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None  # a time without a zone cannot be placed: treat as unknown
    if dt.year < 1990:
        return None  # cameras with an unset clock write 1970/1904 epochs
    return format_utc(dt)


def summarize(info: dict[str, Any]) -> MediaSummary | None:
    """Turn ffprobe's JSON into the manifest's media summary (integers and strings only)."""
    fmt = info.get("format") or {}
    streams_in = info.get("streams") or []
    streams: list[dict[str, Any]] = []
    for s in streams_in:
        kind = s.get("codec_type")
        if kind not in ("video", "audio", "subtitle", "data"):
            continue
        entry: dict[str, Any] = {"type": kind, "codec": str(s.get("codec_name") or "unknown")}
        if kind == "video":
            if isinstance(s.get("width"), int) and isinstance(s.get("height"), int):
                entry["width"] = s["width"]
                entry["height"] = s["height"]
            rate = s.get("avg_frame_rate") or s.get("r_frame_rate")
            if isinstance(rate, str) and rate not in ("0/0", ""):
                entry["fps"] = rate
        if kind == "audio" and str(s.get("sample_rate", "")).isdigit():
            entry["sample_rate"] = int(s["sample_rate"])
        streams.append(entry)
    if not streams:
        return None
    duration = _duration_ms(fmt.get("duration")) if fmt.get("duration") is not None else None
    tags = fmt.get("tags") or {}
    creation = _creation_time(tags)
    if creation is None:
        for s in streams_in:
            creation = _creation_time(s.get("tags") or {})
            if creation:
                break
    summary: MediaSummary = {
        "format": str(fmt.get("format_name") or "unknown"),
        "streams": streams,
        "duration_ms": duration,
        "creation_time": creation,
    }
    # Image formats report no duration; a single still frame is media without a duration.
    return summary


_SNIFF = 8192


def looks_like_text(head: bytes) -> bool:
    """Plain text (GPS logs, sidecar notes, CSV): UTF-8 without NULs or control bytes. Such
    files are not media; ffprobe is not started for them (it costs ~0.1 s a file, and a
    camera can carry thousands of them). A multi-byte character cut at the end is fine."""
    if not head or b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:
            return False
        text = head[: e.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r\f\b" for c in text)


class FFprobe:
    def __init__(self, cmd: str = "ffprobe") -> None:
        self.cmd = cmd

    @staticmethod
    def available(cmd: str = "ffprobe") -> bool:
        return shutil.which(cmd) is not None

    def probe(self, path: Path) -> MediaSummary | None:
        try:
            with open(path, "rb") as f:
                if looks_like_text(f.read(_SNIFF)):
                    return None
        except OSError:
            return None
        try:
            info = ffmpeg.probe(str(path), cmd=self.cmd)
        except ffmpeg.Error as e:
            logger.debug("ffprobe cannot read %s: %s", path, e.stderr[-300:] if e.stderr else e)
            return None
        except (OSError, ValueError) as e:  # bad JSON, bad text, a number past the int limit
            logger.debug("ffprobe failed on %s: %s", path, e)
            return None
        if not isinstance(info, dict):
            return None
        return summarize(info)
