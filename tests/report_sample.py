"""A custody report's input for the tests: two items (one verified, one failed with hostile
names), every kind of custody event an item can have, Asia/Shanghai local time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bwc.evidence.bundle.report import Lang, ReportData, ReportEvent, ReportItem

GOOD = "3f2a9c01" + "ab" * 28
BAD = "77" * 32
BUNDLE = "0123456789abcdef0123456789abcdef"
KEY = "a1b2c3d4e5f60718"
KEY_FP = "5d" * 32
HOSTILE_OFFICER = "<script>alert(1)</script>\u202eevil"
HOSTILE_NAME = "DSJ0042_<img src=x onerror=alert(2)>.MP4"
RECIPIENT = '巡回法庭 第二庭 "Circuit court" & <co>'
ROOT_B64 = "q0vXc4Yz2l1e8J0N4gk2oW4vZ6v8i7yqP9cQ5VvHzsE="


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# the kinds an item's events can have, each once (index, kind, UTC time, details)
_EVENTS: list[tuple[int, str, str, dict[str, Any]]] = [
    (
        12,
        "ingested",
        "2026-10-15T09:02:11",
        {
            "path": "DCIM/{name}",
            "size": 5_432_100,
            "device_id": "DSJ0042",
            "officer_id": "{officer}",
            "key_id": KEY,
            "manifest_sha256": "9e" * 32,
            "store": "file:///var/lib/bwc/store",
            "dock_session": 3,
        },
    ),
    (40, "seen-again", "2026-10-16T01:00:00", {"path": "DCIM/{name}"}),
    (
        44,
        "attributed",
        "2026-10-16T02:00:00",
        {"officer_id": "{officer}", "previous_officer_id": None, "reason": "ledger"},
    ),
    (57, "hold-placed", "2026-10-20T02:00:00", {"reason": "案件证据", "store": "object-lock"}),
    (58, "case-linked", "2026-10-20T02:01:00", {"case": "C-2026-0042", "reason": "现场执法"}),
    (
        59,
        "retention-changed",
        "2026-10-20T02:02:00",
        {"from": "standard", "to": "evidence", "case": "C-2026-0042", "forced": False},
    ),
    (60, "viewed", "2026-10-21T06:00:00", {}),
    (61, "case-unlinked", "2026-10-22T06:00:00", {"case": "C-2026-0041", "reason": "typo"}),
    (62, "hold-released", "2026-10-23T06:00:00", {"reason": "released", "store": "catalog"}),
    (63, "source-wiped", "2026-10-23T07:00:00", {"path": "DCIM/{name}"}),
    (
        70,
        "verified",
        "2026-11-01T00:00:00",
        {"ok": False, "run": "r" * 32, "failed": ["object: sha256 mismatch"]},
    ),
]


def _event(
    index: int, kind: str, at: str, details: dict[str, Any], name: str, officer: str
) -> ReportEvent:
    filled = {
        k: v.format(name=name, officer=officer) if isinstance(v, str) else v
        for k, v in details.items()
    }
    return ReportEvent(index, kind, utc(at), "legal-wang", "station-07", filled)


def item(sha: str, name: str, officer: str, *, ok: bool) -> ReportItem:
    start = utc("2026-10-15T01:31:00")
    events = [_event(*e, name=name, officer=officer) for e in _EVENTS]
    exported = {"bundle": BUNDLE, "recipient": RECIPIENT, "verified": ok, "manifest_sha256": "9e"}
    events.append(ReportEvent(99, "exported", utc("2026-12-01T08:00:00"), "exp", "st-9", exported))
    return ReportItem(
        sha256=sha,
        file=f"items/{sha}/{name}",
        original_path=f"DCIM/{name}",
        size=5_432_100,
        device_id="DSJ0042",
        officer_id=officer,
        recorded_start=start,
        recorded_end=start + timedelta(minutes=3, seconds=7),
        ingested_at=utc("2026-10-15T09:02:11"),
        station_id="station-07",
        key_id=KEY,
        media={
            "format": "mov,mp4,m4a,3gp,3g2,mj2",
            "streams": [
                {"type": "video", "codec": "h264", "width": 1920, "height": 1080, "fps": "30/1"},
                {"type": "audio", "codec": "aac", "sample_rate": 48000},
            ],
            "duration_ms": 187_000,
            "creation_time": None,
        },
        verified=ok,
        failures=[] if ok else ["sha256 mismatch: stored object differs from manifest"],
        events=events,
    )


def sample(lang: Lang = "zh", *, failed: bool = True, tz: str = "Asia/Shanghai") -> ReportData:
    items = [item(GOOD, "DSJ0042_110023_20261015093100_0001.MP4", "110023", ok=True)]
    if failed:
        items.append(item(BAD, HOSTILE_NAME, HOSTILE_OFFICER, ok=False))
    return ReportData(
        bundle_id=BUNDLE,
        created_at=utc("2026-12-01T08:00:05"),
        station="station-07",
        actor="legal-wang",
        recipient=RECIPIENT,
        lang=lang,
        tz=ZoneInfo(tz),
        timezone_name=tz,
        selection={"case": "C-2026-0042"},
        checkpoint_size=100,
        checkpoint_root_b64=ROOT_B64,
        keys={KEY: KEY_FP},
        timestamp_gen_time=utc("2026-12-01T08:00:06"),
        tsa_url="http://127.0.0.1:3180/tsr",
        items=items,
    )
