"""probe.summarize on canned ffprobe JSON, and the real ffprobe on a clip and a non-media file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bwc.evidence.canonical import canonical_json
from bwc.ingest.probe import FFprobe, summarize
from tests.conftest import make_clip

pytestmark = pytest.mark.unit

# Trimmed from `ffprobe -print_format json -show_format -show_streams` of a camera clip.
CLIP: dict[str, Any] = {
    "streams": [
        {
            "index": 0,
            "codec_name": "h264",
            "codec_type": "video",
            "width": 1920,
            "height": 1080,
            "r_frame_rate": "30/1",
            "avg_frame_rate": "30000/1001",
            "duration": "300.266667",
            "tags": {"creation_time": "2026-10-15T01:30:00.000000Z", "language": "und"},
        },
        {
            "index": 1,
            "codec_name": "aac",
            "codec_type": "audio",
            "sample_rate": "48000",
            "channels": 2,
            "tags": {"creation_time": "2026-10-15T01:30:00.000000Z"},
        },
        {"index": 2, "codec_name": "bin_data", "codec_type": "data"},
        {"index": 3, "codec_type": "attachment", "codec_name": "ttf"},
    ],
    "format": {
        "filename": "/spool/x.part",
        "nb_streams": 4,
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration": "300.266667",
        "size": "187654321",
        "bit_rate": "4999000",
        "tags": {
            "major_brand": "isom",
            "creation_time": "2026-10-15T09:30:00+08:00",
        },
    },
}

JPEG: dict[str, Any] = {
    "streams": [
        {
            "index": 0,
            "codec_name": "mjpeg",
            "codec_type": "video",
            "width": 4000,
            "height": 3000,
            "r_frame_rate": "25/1",
            "avg_frame_rate": "0/0",
        }
    ],
    "format": {"format_name": "image2", "size": "2345678", "probe_score": 50},
}


def clip(**format_changes: Any) -> dict[str, Any]:
    info = copy.deepcopy(CLIP)
    info["format"].update(format_changes)
    return info


def test_video_and_audio() -> None:
    assert summarize(CLIP) == {
        "format": "mov,mp4,m4a,3gp,3g2,mj2",
        "streams": [
            {"type": "video", "codec": "h264", "width": 1920, "height": 1080, "fps": "30000/1001"},
            {"type": "audio", "codec": "aac", "sample_rate": 48000},
            {"type": "data", "codec": "bin_data"},
        ],
        "duration_ms": 300267,
        "creation_time": "2026-10-15T01:30:00Z",
    }


def test_summary_is_signable() -> None:
    """Only integers, strings, None, lists and dicts: canonical JSON accepts it as is."""
    for info in (CLIP, JPEG):
        summary = summarize(info)
        assert summary is not None
        canonical_json(summary)


def test_image_without_duration() -> None:
    assert summarize(JPEG) == {
        "format": "image2",
        "streams": [{"type": "video", "codec": "mjpeg", "width": 4000, "height": 3000}],
        "duration_ms": None,
        "creation_time": None,
    }


def test_audio_only() -> None:
    info = {
        "streams": [{"codec_type": "audio", "codec_name": "pcm_s16le", "sample_rate": "8000"}],
        "format": {"format_name": "wav", "duration": "12.5"},
    }
    assert summarize(info) == {
        "format": "wav",
        "streams": [{"type": "audio", "codec": "pcm_s16le", "sample_rate": 8000}],
        "duration_ms": 12500,
        "creation_time": None,
    }


@pytest.mark.parametrize(
    "info",
    [
        {},
        {"streams": []},
        {"streams": [], "format": {"format_name": "tty", "duration": "1.0"}},
        {"streams": [{"codec_type": "attachment", "codec_name": "ttf"}]},
        {"format": {"format_name": "mov,mp4"}},
    ],
    ids=["empty", "no-streams", "no-streams-with-format", "attachment-only", "format-only"],
)
def test_no_streams_is_not_media(info: dict[str, Any]) -> None:
    assert summarize(info) is None


@pytest.mark.parametrize(
    "value",
    [
        "1970-01-01T00:00:00.000000Z",
        "1970-01-01T08:00:00+08:00",
        "1904-01-01T00:00:00Z",
        "1989-12-31T23:59:59Z",
    ],
)
def test_unset_camera_clock_is_no_time(value: str) -> None:
    info = clip(tags={"creation_time": value})
    for s in info["streams"]:
        s["tags"] = {"creation_time": value}
    summary = summarize(info)
    assert summary is not None
    assert summary["creation_time"] is None


@pytest.mark.parametrize("value", ["2026-10-15T01:30:00", "2026-10-15 01:30:00", "2026-10-15"])
def test_naive_time_is_no_time(value: str) -> None:
    info = clip(tags={"creation_time": value})
    for s in info["streams"]:
        s.pop("tags", None)
    summary = summarize(info)
    assert summary is not None
    assert summary["creation_time"] is None


@pytest.mark.parametrize("value", ["yesterday", "", 1760522400, None, "2026-13-45T00:00:00Z"])
def test_garbage_time_is_no_time(value: Any) -> None:
    info = clip(tags={"creation_time": value})
    for s in info["streams"]:
        s.pop("tags", None)
    summary = summarize(info)
    assert summary is not None
    assert summary["creation_time"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-10-15T01:30:00Z", "2026-10-15T01:30:00Z"),
        ("2026-10-15T01:30:00.000000Z", "2026-10-15T01:30:00Z"),
        ("2026-10-15T01:30:00.250000Z", "2026-10-15T01:30:00.250000Z"),
        ("2026-10-15T09:30:00+08:00", "2026-10-15T01:30:00Z"),
        ("2026-10-14T20:30:00-05:00", "2026-10-15T01:30:00Z"),
    ],
)
def test_creation_time_in_utc(value: str, expected: str) -> None:
    summary = summarize(clip(tags={"creation_time": value}))
    assert summary is not None
    assert summary["creation_time"] == expected


def test_stream_time_used_when_container_time_is_unset() -> None:
    info = clip(tags={"creation_time": "1970-01-01T00:00:00Z"})
    info["streams"][0]["tags"] = {"creation_time": "1970-01-01T00:00:00Z"}
    info["streams"][1]["tags"] = {"creation_time": "2026-10-15T01:30:05Z"}
    summary = summarize(info)
    assert summary is not None
    assert summary["creation_time"] == "2026-10-15T01:30:05Z"


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("N/A", None),
        ("-1.0", None),
        ("inf", None),
        ("nan", None),
        ("0.0", 0),
        ("0.0005", 0),
        ("1.5", 1500),
        ("3600.000001", 3600000),
        (None, None),
    ],
)
def test_duration(duration: Any, expected: int | None) -> None:
    info = clip(duration=duration)
    summary = summarize(info)
    assert summary is not None
    assert summary["duration_ms"] == expected
    assert summary["duration_ms"] is None or isinstance(summary["duration_ms"], int)


def test_missing_or_odd_stream_fields() -> None:
    info = {
        "streams": [
            {"codec_type": "video", "width": 1920.0, "height": "1080", "avg_frame_rate": ""},
            {"codec_type": "audio", "codec_name": None, "sample_rate": "N/A"},
            {"codec_type": "subtitle", "codec_name": "mov_text"},
        ],
        "format": {},
    }
    summary = summarize(info)
    assert summary == {
        "format": "unknown",
        "streams": [
            {"type": "video", "codec": "unknown"},
            {"type": "audio", "codec": "unknown"},
            {"type": "subtitle", "codec": "mov_text"},
        ],
        "duration_ms": None,
        "creation_time": None,
    }
    canonical_json(summary)


# ---------------------------------------------------------------------------- real ffprobe


def test_real_ffprobe_on_a_clip(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "CLIP.MP4", seconds=1.0, creation_time="2026-10-15T01:30:00Z")
    summary = FFprobe().probe(path)
    assert summary is not None
    assert "mp4" in summary["format"]
    types = {s["type"]: s for s in summary["streams"]}
    assert types["video"]["codec"] == "h264"
    assert (types["video"]["width"], types["video"]["height"]) == (160, 120)
    assert types["video"]["fps"] == "10/1"
    assert types["audio"]["codec"] == "aac"
    assert isinstance(types["audio"]["sample_rate"], int)
    assert 900 <= summary["duration_ms"] <= 1200
    assert summary["creation_time"] == "2026-10-15T01:30:00Z"
    canonical_json(summary)


def test_real_ffprobe_on_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "GPS0001.MP4"
    path.write_text("time,lat,lon\n2026-10-15T01:31:00Z,31.23,121.47\n")
    assert FFprobe().probe(path) is None


def test_real_ffprobe_on_random_bytes_and_empty(tmp_path: Path) -> None:
    junk = tmp_path / "junk.part"
    junk.write_bytes(bytes(range(256)) * 64)
    assert FFprobe().probe(junk) is None
    empty = tmp_path / "empty.part"
    empty.write_bytes(b"")
    assert FFprobe().probe(empty) is None


def test_missing_ffprobe_is_no_summary(tmp_path: Path) -> None:
    path = tmp_path / "x.MP4"
    path.write_bytes(b"x")
    assert not FFprobe.available("bwc-no-such-ffprobe")
    assert FFprobe("bwc-no-such-ffprobe").probe(path) is None
