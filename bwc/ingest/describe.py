"""What a file says about itself: device, officer and recording times, and where each came
from. Pure: the path, the id file, the profiles, the media summary and a ledger lookup in;
a Description out.

Precedence: an operator's explicit --officer/--device; then the file name (recorder profile)
or the camera's id file; then, for the device only, the device of the file's dock session
(``dock-session``: a zero-byte file or a GPS log whose name carries no device id, on a camera
whose other names or id file say which it is); then, for the officer only, the device
checkout ledger at the recorded start. Start time: the name (profile), else the container's
creation_time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bwc.evidence.timefmt import parse_utc
from bwc.ingest.profiles import IdFile, PathInfo, Profile, match_path

LedgerLookup = Callable[[str, datetime], str | None]


@dataclass(frozen=True)
class Description:
    device_id: str | None
    device_source: str | None  # "operator", "profile", "id-file", "dock-session"
    officer_id: str | None
    officer_source: str | None  # "operator", "profile", "id-file", "ledger"
    profile: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    start_source: str  # "profile", "container", "unknown"
    is_id_file: bool = False  # this file is the camera's id file that was read (ID.TXT)


def describe(
    rel: str,
    *,
    profiles: Sequence[Profile],
    id_file: IdFile | None,
    media: dict[str, Any] | None,
    operator_officer: str | None = None,
    operator_device: str | None = None,
    ledger: LedgerLookup | None = None,
    session_device: str | None = None,
) -> Description:
    info: PathInfo | None = match_path(profiles, rel, id_file)

    device, device_source = operator_device, ("operator" if operator_device else None)
    if device is None and info and info.device_id:
        device, device_source = info.device_id, info.device_source
    if device is None and id_file and id_file.device_id:
        device, device_source = id_file.device_id, "id-file"
    if device is None and session_device:
        device, device_source = session_device, "dock-session"

    start: datetime | None = info.start if info else None
    start_source = "profile" if start else "unknown"
    created = media.get("creation_time") if media else None
    if start is None and isinstance(created, str):
        try:
            start, start_source = parse_utc(created), "container"
        except ValueError:
            start = None
    duration = media.get("duration_ms") if media else None
    end = None
    if start is not None and isinstance(duration, int):
        try:
            end = start + timedelta(milliseconds=duration)
        except OverflowError:  # a start near 9999-12-31 (a device clock): no end, not a crash
            end = None

    officer, officer_source = operator_officer, ("operator" if operator_officer else None)
    if officer is None and info and info.officer_id:
        officer, officer_source = info.officer_id, info.officer_source
    if officer is None and id_file and id_file.officer_id:
        officer, officer_source = id_file.officer_id, "id-file"
    if officer is None and device and start and ledger is not None:
        held_by = ledger(device, start)
        if held_by:
            officer, officer_source = held_by, "ledger"

    return Description(
        device_id=device,
        device_source=device_source,
        officer_id=officer,
        officer_source=officer_source,
        profile=info.profile if info else None,
        recorded_start=start,
        recorded_end=end,
        start_source=start_source,
        is_id_file=id_file is not None and id_file.name is not None and rel == id_file.name,
    )
