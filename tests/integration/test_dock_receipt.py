"""Issue 15.2 and 15.3 in process: the device of a dock session known when it opens (from the
file names when there is no id file), the files whose names carry no device id given the
session's (``dock-session``), and dock receipts (交接单): logged once when all of a camera's
files are in and with its `undocked` event, and shown later by `bwc receipt` (text at 80
columns, JSON, HTML in headless Chromium, PDF read back as text)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bwc.evidence.manifest import FLAG_DEVICE_MISMATCH, parse_manifest
from bwc.evidence.merkle import leaf_hash
from bwc.evidence.models import DockSession, Event, Item
from tests.integration.test_audit_html import chromium
from tests.integration.test_audit_pdf import pdf_text
from tests.integration.test_device_serial import Dock
from tests.integration.test_postgres import pg_databases, pg_db, pg_home  # noqa: F401

pytestmark = pytest.mark.integration

# DSJ0042_110023_20261015090<n>00_000<n>.MP4: recorded 2026-10-15 09:0n:00 +08:00
CLIPS = {
    f"DCIM/DSJ0042_110023_20261015090{n}00_000{n}.MP4": os.urandom(2000 + n) for n in (1, 2, 3)
}
ZERO = "DCIM/BROKEN.MP4"  # a zero-byte file whose name carries no device id


@pytest.fixture
def dock(home: Path, tmp_path: Path) -> Dock:
    root = tmp_path / "dock"
    root.mkdir()
    return Dock(home, root)


def events(dock: Dock, kind: str) -> list[dict[str, Any]]:
    with Session(dock.station.engine) as s:
        rows = s.exec(select(Event).where(Event.kind == kind).order_by(Event.idx))
        return [json.loads(e.leaf)["details"] for e in rows]


def manifest_of(dock: Dock, data: bytes) -> Any:
    with Session(dock.station.engine) as s:
        item = s.get(Item, hashlib.sha256(data).hexdigest())
        assert item is not None
        return parse_manifest(item.manifest)


def session_row(dock: Dock, sid: int) -> DockSession:
    with Session(dock.station.engine) as s:
        row = s.get(DockSession, sid)
        assert row is not None
        return row


def test_the_device_is_known_when_the_camera_docks(dock: Dock) -> None:
    dock.camera("cam", "SER-1", {**CLIPS, ZERO: b"", "GPS0001.csv": b"time,lat\n"})
    dock.run()
    (docked,) = events(dock, "docked")
    assert docked["device_id"] == "DSJ0042"  # from the names: there is no id file
    assert session_row(dock, docked["dock_session"]).device_id == "DSJ0042"
    for nameless in (b"", b"time,lat\n"):
        m = manifest_of(dock, nameless)
        assert (m.device_id, m.device_source) == ("DSJ0042", "dock-session")
    m = manifest_of(dock, next(iter(CLIPS.values())))
    assert (m.device_id, m.device_source) == ("DSJ0042", "profile")


def test_names_that_disagree_with_the_serial_are_flagged_at_dock(dock: Dock) -> None:
    dock.camera("cam-a", "SER-A", {"ID.TXT": b"device=DSJ0042\n", **CLIPS})
    dock.run()
    dock.undock("cam-a")
    dock.run()
    # the camera SER-A comes back with DSJ0099's card, no id file: its names say so
    moved = {"DCIM/DSJ0099_110023_20261016090100_0001.MP4": os.urandom(3000), ZERO: b""}
    dock.camera("cam-b", "SER-A", moved)
    dock.run()
    last = events(dock, "docked")[-1]
    assert last["device_id"] == "DSJ0099"
    assert last["device_mismatch"] == (
        "the camera with USB serial SER-A was first seen as device DSJ0042, "
        "its file name says DSJ0099"
    )
    m = manifest_of(dock, b"")  # the nameless file has the session's device, flagged too
    assert (m.device_id, m.device_source) == ("DSJ0099", "dock-session")
    assert FLAG_DEVICE_MISMATCH in m.flags


def test_a_receipt_when_all_files_are_in_and_at_undock(
    dock: Dock, bwc: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="bwc")
    junk = {"System Volume Information/IndexerVolumeGuid": b"x"}
    dock.camera("cam", "SER-1", {**CLIPS, **junk})
    dock.run()  # jobs made and taken
    assert events(dock, "receipt") == []  # drawn up at the scan that finds them all in
    dock.run()
    dock.run()  # once per moment, not at every scan
    (rec,) = events(dock, "receipt")
    size = sum(len(d) for d in CLIPS.values())
    assert rec["moment"] == "committed"
    assert (rec["device_id"], rec["usb_serial"], rec["officers"]) == (
        "DSJ0042",
        "SER-1",
        ["110023"],
    )
    assert (rec["files_found"], rec["committed"], rec["new"], rec["seen_again"]) == (3, 3, 3, 0)
    assert (rec["failed"], rec["ignored"], rec["in_progress"], rec["bytes"]) == (0, 1, 0, size)
    assert (rec["first_recorded"], rec["last_recorded"]) == (
        "2026-10-15T01:01:00Z",
        "2026-10-15T01:03:00Z",
    )
    assert rec["safe"] is True
    assert rec["verdict"] == "all 3 files safe — the card may be cleared"
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("receipt"))
    assert "recorded 2026-10-15 09:01:00 +08:00 – 2026-10-15 09:03:00 +08:00" in line
    assert "all 3 files safe — the card may be cleared" in line
    r = bwc("status")  # where a clerk finds the session id
    assert f"device DSJ0042 session {rec['dock_session']} since" in r.out

    # a restarted daemon (a new scanner) remembers what the last receipt covered
    restarted = Dock(dock.station.settings.home, dock.root)
    restarted.serials.update(dock.serials)
    restarted.run()
    assert len(events(dock, "receipt")) == 1
    dock = restarted

    dock.undock("cam")
    dock.run()
    (und,) = events(dock, "undocked")
    assert und["moment"] == "undocked" and und["safe"] is True and und["committed"] == 3
    sid = und["dock_session"]
    assert session_row(dock, sid).receipt_idx is not None

    # bwc receipt: the text fits 80 columns, local times with their offset
    monkeypatch.setenv("COLUMNS", "80")
    r = bwc("receipt", str(sid), "--lang", "en")
    assert r.code == 0, r.err
    assert max(len(x) for x in r.out.splitlines()) <= 80, r.out
    assert "DSJ0042" in r.out and "SER-1" in r.out and "110023" in r.out
    assert "2026-10-15 09:01:00 +08:00" in r.out
    assert "all 3 files safe — the card may be cleared" in r.out
    assert "the logged receipt matches" in r.out
    # in Chinese by default, as the bundle's report and the audit: every line, the log's too
    r = bwc("receipt", str(sid))
    assert r.code == 0, r.err
    assert "全部 3 个文件已安全入库 — 可以清空存储卡" in r.out, r.out
    assert "发现 3，已入库 3（新增 3，重复 0），失败 0，已忽略 1" in r.out, r.out
    assert "日志记录：`undocked` 事件" in r.out and "记录人" in r.out, r.out
    assert "日志中的交接单与当前重新计算的一致" in r.out, r.out
    assert "logged" not in r.out and "event at" not in r.out, r.out
    r = bwc("receipt", str(sid), "--json")
    data = json.loads(r.out)
    assert data["receipt"]["bytes"] == size and data["receipt"]["docked_at"].endswith("Z")
    assert data["logged"]["kind"] == "undocked" and data["differences"] == []
    r = bwc("receipt", "--list", "--json")
    assert [(x["session"], x["safe"]) for x in json.loads(r.out)] == [(sid, True)]

    r = bwc("receipt", "999")
    assert r.code == 3 and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "no dock session 999" in r.err


def test_a_receipt_names_the_files_not_safe(
    dock: Dock, bwc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    outside = tmp_path / "outside.MP4"
    outside.write_bytes(b"not on the camera")
    dock.camera("cam", None, dict(CLIPS))
    os.symlink(outside, dock.root / "cam" / "DCIM" / "LINK0001.MP4")
    dock.run()
    dock.run()
    (rec,) = events(dock, "receipt")
    assert (rec["files_found"], rec["committed"], rec["failed"]) == (4, 3, 1)
    assert rec["safe"] is False
    assert rec["not_safe"][0]["path"] == "DCIM/LINK0001.MP4"
    assert rec["verdict"].startswith(
        "1 file NOT safe — do not clear the card: DCIM/LINK0001.MP4 (failed: "
    )
    r = bwc("receipt", str(rec["dock_session"]), "--lang", "en")
    assert r.code == 0, r.err
    assert "1 file NOT safe — do not clear the card" in r.out
    assert "DCIM/LINK0001.MP4: failed:" in r.out
    r = bwc("receipt", "--list")  # the sessions, each in a few words, at 80 columns
    assert r.code == 0, r.err
    assert "1 NOT safe" in r.out and "(+08:00)" in r.out
    assert max(len(x) for x in r.out.splitlines()) <= 80, r.out


def test_printable_receipt_html_and_pdf(dock: Dock, bwc: Any, tmp_path: Path) -> None:
    dock.camera("cam", "SER-1", dict(CLIPS))
    dock.run()
    dock.run()
    (rec,) = events(dock, "receipt")
    sid = str(rec["dock_session"])
    page = tmp_path / "receipt.html"
    r = bwc("receipt", sid, "--format", "html", "--out", page)  # zh by default
    assert r.code == 0, r.err
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "记录仪数据交接单" in html and "全部 3 个文件已安全入库 — 可以清空存储卡" in html
    assert "2026-10-15 09:01:00 +08:00" in html and "DSJ0042" in html
    assert 'class="verdict safe"' in html

    pdf = tmp_path / "receipt.pdf"
    r = bwc("receipt", sid, "--format", "pdf", "--lang", "en", "--out", pdf)
    assert r.code == 0, r.err
    text = pdf_text(pdf)
    assert "Dock receipt" in text and "all 3 files safe" in text
    assert "09:03:00 +08:00" in text


def test_undocked_before_its_files_were_taken(dock: Dock) -> None:
    dock.camera("cam", "SER-1", dict(CLIPS))
    jobs = dock.scanner.scan(time.time(), time.monotonic())  # found, not yet copied
    dock.undock("cam")
    dock.scanner.scan(time.time(), time.monotonic())
    (und,) = events(dock, "undocked")
    assert (und["files_found"], und["in_progress"], und["safe"]) == (3, 3, False)
    assert und["not_safe"][0]["why"] == "still being taken (discovered)"
    assert events(dock, "receipt") == []

    # the daemon restarts; the camera is gone, so its files are abandoned (taken at the
    # next dock); the receipt that follows says so
    restarted = Dock(dock.station.settings.home, dock.root)
    for job in jobs:
        assert restarted.runner.advance(job) == "abandoned"
    restarted.scanner.scan(time.time(), time.monotonic())
    (rec,) = events(dock, "receipt")
    assert (rec["files_found"], rec["abandoned"], rec["in_progress"]) == (3, 3, 0)
    assert rec["verdict"].startswith("3 files NOT safe — do not clear the card: DCIM/")
    assert "(the camera left before it was copied)" in rec["verdict"]
    restarted.scanner.scan(time.time(), time.monotonic())
    assert len(events(dock, "receipt")) == 1


def test_a_tampered_logged_receipt_is_reported(dock: Dock, bwc: Any) -> None:
    dock.camera("cam", "SER-1", dict(CLIPS))
    dock.run()
    dock.run()
    (rec,) = events(dock, "receipt")
    sid = rec["dock_session"]
    assert bwc("log", "checkpoint").code == 0
    r = bwc("receipt", str(sid), "--lang", "en")
    assert r.code == 0 and "in the signed log of" in r.out, r.out + r.err
    r = bwc("receipt", str(sid))
    assert r.code == 0 and "条事件的签名日志证明" in r.out, r.out + r.err
    # the logged receipt made to say 4 files (its row's hash fixed up too): the log says not
    idx = session_row(dock, sid).receipt_idx
    with Session(dock.station.engine) as s:
        ev = s.get(Event, idx)
        assert ev is not None
        ev.leaf = bytes(ev.leaf).replace(b'"files_found":3', b'"files_found":4')
        ev.leaf_hash = leaf_hash(ev.leaf)
        s.add(ev)
        s.commit()
    r = bwc("receipt", str(sid))
    assert r.code == 1, r.out + r.err
    assert f"dock session {sid}: its logged receipt (log index {idx}) is not in the signed" in r.err


@pytest.mark.usefixtures("pg_home")
def test_a_receipt_on_postgresql(bwc: Any, tmp_path: Path) -> None:
    root = tmp_path / "dock"
    root.mkdir()
    dock = Dock(tmp_path / "home", root)
    dock.camera("cam", "SER-1", {**CLIPS, ZERO: b""})
    dock.run()
    dock.run()
    dock.undock("cam")
    dock.run()
    (rec,) = events(dock, "receipt")
    assert (rec["files_found"], rec["committed"], rec["safe"]) == (4, 4, True)
    r = bwc("receipt", str(rec["dock_session"]), "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["logged"]["kind"] == "undocked" and data["differences"] == []
    assert data["receipt"]["device_id"] == "DSJ0042"
