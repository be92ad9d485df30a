"""A manifest's media summary in words for people (`bwc show`): "3.0 s; video h264
320×240 at 15 fps; audio aac 44.1 kHz; container mov,mp4,…". Pure. The manifest keeps the
summary as data (JSON shows it as is); this only reads it, and anything it does not
recognise is shown as the value it is, never dropped."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any


def media_text(media: dict[str, Any], time_text: Callable[[str], str] = str) -> str:
    """``time_text`` shows the container's creation time (UTC text) in the reader's zone."""
    parts: list[str] = []
    ms = media.get("duration_ms")
    if isinstance(ms, int) and not isinstance(ms, bool):
        parts.append(_duration(ms))
    streams = media.get("streams")
    for s in streams if isinstance(streams, list) else []:
        if isinstance(s, dict):
            parts.append(_stream(s))
    fmt = media.get("format")
    if isinstance(fmt, str):
        parts.append(f"container {fmt}")
    created = media.get("creation_time")
    if isinstance(created, str):
        parts.append(f"container time {time_text(created)}")
    return "; ".join(parts) or "-"


def _duration(ms: int) -> str:
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, rest = divmod(ms // 1000, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


def _stream(s: dict[str, Any]) -> str:
    words = [str(s.get("type", "stream")), str(s.get("codec", "unknown"))]
    w, h = s.get("width"), s.get("height")
    if isinstance(w, int) and isinstance(h, int):
        words.append(f"{w}×{h}")
    fps = _fps(s.get("fps"))
    if fps:
        words.append(f"at {fps} fps")
    rate = s.get("sample_rate")
    if isinstance(rate, int) and not isinstance(rate, bool):
        words.append(f"{rate / 1000:g} kHz")
    return " ".join(words)


def _fps(value: object) -> str | None:
    """ffprobe's frame rate ("30000/1001") as a number ("29.97"); as given if not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        return value
    return f"{float(rate):.2f}".rstrip("0").rstrip(".")
