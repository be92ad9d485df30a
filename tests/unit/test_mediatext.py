"""`bwc show`'s media line: the manifest's summary in words, nothing dropped."""

from __future__ import annotations

import pytest

from bwc.evidence.mediatext import media_text

pytestmark = pytest.mark.unit


def test_a_camera_clip_in_words() -> None:
    media = {
        "creation_time": "2026-10-15T01:31:00Z",
        "duration_ms": 3000,
        "format": "mov,mp4,m4a,3gp,3g2,mj2",
        "streams": [
            {"codec": "h264", "fps": "30000/1001", "height": 1080, "type": "video", "width": 1920},
            {"codec": "aac", "sample_rate": 44100, "type": "audio"},
        ],
    }
    assert media_text(media, lambda t: f"<{t}>") == (
        "3.0 s; video h264 1920×1080 at 29.97 fps; audio aac 44.1 kHz; "
        "container mov,mp4,m4a,3gp,3g2,mj2; container time <2026-10-15T01:31:00Z>"
    )


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0.0 s"), (59_999, "60.0 s"), (60_000, "1:00"), (3_725_000, "1:02:05")],
)
def test_durations(ms: int, text: str) -> None:
    assert media_text({"duration_ms": ms}) == text


def test_what_it_does_not_know_is_shown_as_it_is() -> None:
    media = {"streams": [{"type": "data", "codec": "bin_data", "fps": "fast"}], "x": 1}
    assert media_text(media) == "data bin_data at fast fps"
    assert media_text({"duration_ms": None, "streams": "?"}) == "-"
    assert media_text({"streams": [{"type": "video", "codec": "h264", "fps": "0/0"}]}) == (
        "video h264 at 0/0 fps"
    )
