"""DESIGN's USB serial check, in process: a dock scanner whose cameras have USB serials (read
through an injected lookup instead of sysfs), and the job runner that signs their files.
The first dock teaches the catalog the device id of a serial; a later claim of another id,
by the id file or by file names, is flagged on the `docked` event and in every manifest
(`device-mismatch`), and the files are still ingested."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bwc.evidence.manifest import FLAG_DEVICE_MISMATCH, parse_manifest
from bwc.evidence.models import DeviceSerial, Event, Item
from bwc.evidence.station import Station
from bwc.ingest.docks import DockScanner
from bwc.ingest.jobs import JobRunner, RunnerConfig
from bwc.ingest.probe import MediaSummary
from bwc.ingest.profiles import all_profiles
from bwc.ingest.steps import ledger_lookup

pytestmark = pytest.mark.integration


class NoMedia:
    """The probe: these files are not media (what is tested here does not need ffprobe)."""

    def probe(self, path: Path) -> MediaSummary | None:
        return None


class Dock:
    def __init__(self, home: Path, root: Path) -> None:
        self.station = Station.open(home, actor="test-clerk", passphrase=None)
        self.root = root
        self.serials: dict[str, str] = {}  # camera folder name -> its USB serial
        st = self.station
        profiles = all_profiles(st.settings.profiles, st.settings.timezone)
        self.scanner = DockScanner(
            st,
            [str(root)],
            ignore=st.settings.ignore,
            stable_seconds=0.0,
            profiles=profiles,
            serial_of=lambda mount: self.serials.get(os.path.basename(os.fsdecode(mount))),
        )
        self.runner = JobRunner(st, NoMedia(), profiles, ledger_lookup(st.engine), RunnerConfig())

    def camera(self, name: str, serial: str | None, files: dict[str, bytes]) -> None:
        """Dock a camera: its folder appears with its files already there."""
        if serial is not None:
            self.serials[name] = serial
        staging = self.root.parent / f".{name}"
        for rel, data in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(data)
        past = time.time() - 3600  # written during the shift, long before docking
        for p in staging.rglob("*"):
            os.utime(p, (past, past))
        staging.rename(self.root / name)

    def undock(self, name: str) -> None:
        (self.root / name).rename(self.root.parent / f".gone-{name}")

    def run(self) -> None:
        for job in self.scanner.scan(time.time(), time.monotonic()):
            assert self.runner.advance(job) == "released"

    def flags(self, data: bytes) -> tuple[str, ...]:
        import hashlib

        with Session(self.station.engine) as s:
            item = s.get(Item, hashlib.sha256(data).hexdigest())
            assert item is not None
            return parse_manifest(item.manifest).flags

    def docked_events(self) -> list[dict[str, object]]:
        with Session(self.station.engine) as s:
            rows = s.exec(select(Event).where(Event.kind == "docked").order_by(Event.idx))
            return [json.loads(e.leaf)["details"] for e in rows]


def _clip(device: str, n: int) -> tuple[str, bytes]:
    return f"DCIM/{device}_110023_2026101509{n:04d}_{n:04d}.MP4", os.urandom(1000 + n)


@pytest.fixture
def dock(home: Path, tmp_path: Path) -> Dock:
    root = tmp_path / "dock"
    root.mkdir()
    return Dock(home, root)


def test_a_card_in_another_camera_is_flagged(dock: Dock) -> None:
    first = dict([_clip("DSJ0042", 1), _clip("DSJ0042", 2)])
    dock.camera("cam-a", "SER-A", {"ID.TXT": b"device=DSJ0042\n", **first})
    dock.run()
    with Session(dock.station.engine) as s:
        learned = s.get(DeviceSerial, "SER-A")
        assert learned is not None and learned.device_id == "DSJ0042"
    assert all(FLAG_DEVICE_MISMATCH not in dock.flags(d) for d in first.values())
    dock.undock("cam-a")
    dock.run()

    # The same camera (serial SER-A) comes back with DSJ0099's card: id file and names.
    moved = dict([_clip("DSJ0099", 3), _clip("DSJ0099", 4)])
    dock.camera("cam-b", "SER-A", {"ID.TXT": b"device=DSJ0099\n", **moved})
    dock.run()
    for data in moved.values():
        assert FLAG_DEVICE_MISMATCH in dock.flags(data)  # flagged, and still evidence
    last = dock.docked_events()[-1]
    assert last["usb_serial"] == "SER-A"
    assert last["device_mismatch"] == (
        "the camera with USB serial SER-A was first seen as device DSJ0042, "
        "the id file says DSJ0099"
    )
    with Session(dock.station.engine) as s:  # what was learned first stays
        learned = s.get(DeviceSerial, "SER-A")
        assert learned is not None and learned.device_id == "DSJ0042"


def test_names_that_disagree_with_the_id_file_are_flagged(dock: Dock) -> None:
    right, wrong = _clip("DSJ0042", 1), _clip("DSJ0077", 2)
    dock.camera("cam", "SER-B", {"ID.TXT": b"device=DSJ0042\n", **dict([right, wrong])})
    dock.run()
    assert FLAG_DEVICE_MISMATCH not in dock.flags(right[1])
    assert FLAG_DEVICE_MISMATCH in dock.flags(wrong[1])
    assert "device_mismatch" not in dock.docked_events()[-1]


def test_without_an_id_file_the_first_file_name_teaches_the_serial(dock: Dock) -> None:
    dock.camera("cam", "SER-C", dict([_clip("DSJ0042", 1)]))
    dock.run()
    dock.undock("cam")
    dock.run()
    later = _clip("DSJ0050", 2)
    dock.camera("cam2", "SER-C", dict([later]))
    dock.run()
    assert FLAG_DEVICE_MISMATCH in dock.flags(later[1])


def test_a_mount_without_a_usb_serial_is_not_checked(dock: Dock) -> None:
    a, b = _clip("DSJ0042", 1), _clip("DSJ0077", 2)
    dock.camera("folder", None, {"ID.TXT": b"device=DSJ0042\n", **dict([a, b])})
    dock.run()
    assert FLAG_DEVICE_MISMATCH not in dock.flags(b[1])
    with Session(dock.station.engine) as s:
        assert s.exec(select(DeviceSerial)).first() is None


def test_list_finds_the_flagged_items(dock: Dock, bwc) -> None:  # type: ignore[no-untyped-def]
    right, wrong = _clip("DSJ0042", 1), _clip("DSJ0077", 2)
    dock.camera("cam", "SER-D", {"ID.TXT": b"device=DSJ0042\n", **dict([right, wrong])})
    dock.run()
    r = bwc("list", "--flag", FLAG_DEVICE_MISMATCH, "--json")
    assert r.code == 0, r.err
    assert [i["device_id"] for i in json.loads(r.out)] == ["DSJ0077"]
    # a whole flag only: no prefix or substring matches, and LIKE's wildcards are literal
    for partial in ("device", "mismatch", "device-mismatc", "%", "_"):
        r = bwc("list", "--flag", partial, "--json")
        assert r.code == 0 and json.loads(r.out) == [], partial
    # the clips name their officer; the id file (evidence too) names none, and is flagged as
    # the camera's id file, not as footage to attribute (issue 15, point 7)
    r = bwc("list", "--flag", "unattributed", "--json")
    assert json.loads(r.out) == []
    r = bwc("list", "--flag", "id-file", "--json")
    assert [i["path"] for i in json.loads(r.out)] == ["ID.TXT"]
