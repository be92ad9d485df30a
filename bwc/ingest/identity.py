"""A docked camera's two identities, and when they disagree.

The USB serial of the device behind a dock mount (read from sysfs) is the hardware's own
identity, hard to change. The device id is what the camera's files claim: in their names (a
recorder profile) or in the id file at the root of its card, both easy to change, and wrong
when a card moves to another camera. The catalog remembers the device id each serial was
first seen with (trust on first use, shared by every station on one catalog); a later claim
of another device id for that serial is a mismatch: the file is still evidence, and its
signed manifest carries the flag ``device-mismatch`` (DESIGN.md, the docking station).

``mismatch`` is pure; ``first_seen_as`` and ``remember`` read and write the catalog in the
caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session

from bwc.evidence.models import DeviceSerial

# where a device id was read, as the messages name it
_WHERE = {
    "profile": "its file name",
    "id-file": "the id file",
    "operator": "the operator",
    "dock-session": "its dock session",
}


def mismatch(serial: str, first_seen_as: str, claims: Mapping[str, str | None]) -> str | None:
    """Why ``claims`` (source -> device id, e.g. {"profile": "DSJ0042", "id-file": None})
    disagree with the device id the camera with USB serial ``serial`` was first seen as, or
    None when none does."""
    wrong = [
        f"{_WHERE.get(source, source)} says {device}"
        for source, device in sorted(claims.items())
        if device is not None and device != first_seen_as
    ]
    if not wrong:
        return None
    return f"the camera with USB serial {serial} was first seen as device {first_seen_as}, " + (
        " and ".join(wrong)
    )


def first_seen_as(s: Session, serial: str) -> str | None:
    row = s.get(DeviceSerial, serial)
    return row.device_id if row is not None else None


def remember(
    s: Session, serial: str, device: str, *, station_id: str, dock_session: int, now: datetime
) -> str:
    """The device id ``serial`` was first seen as, recording ``device`` if it is the first."""
    known = first_seen_as(s, serial)
    if known is not None:
        return known
    s.add(
        DeviceSerial(
            usb_serial=serial,
            device_id=device,
            station_id=station_id,
            dock_session=dock_session,
            first_seen=now,
        )
    )
    return device
