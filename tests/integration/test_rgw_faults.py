"""Failure on a real object store (issue 16, item 4): the test process's Ceph RGW cluster
(tests/integration/rgw.py) with one of its daemons killed by PID, or its OSD made full, in
the middle of an ingest. Each time: nothing is recorded as stored that is not there, the
camera is untouched, the files wait and complete once the store is back, and everything
verifies. Every test puts the cluster back (daemons restarted, ratios reset, a PUT answered)
before the next test of this process uses it.

What RGW does (Ceph 16.2): radosgw killed, connections are refused (bwc retries for
``retry_seconds``); the OSD killed or full, radosgw takes every request and never answers
a write (a full cluster still answers reads): ``timeout_seconds`` bounds each wait."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bwc.evidence.station import Station
from bwc.evidence.stores.s3 import S3Store
from bwc.ingest.pipeline import Attribution, Ingester
from bwc.ingest.probe import FFprobe
from tests.integration import rgw
from tests.integration.daemon_util import (
    Catalog,
    DaemonProcess,
    set_daemon_config,
    tree_snapshot,
    wait_until,
)
from tests.integration.s3 import S3Env, s3_fixture  # noqa: F401

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.fault,
    pytest.mark.parametrize("s3", ["rgw"], indirect=True),
]


@pytest.fixture
def ceph(s3: S3Env) -> Iterator[rgw.Cluster]:
    """The cluster, put back after the test whatever it did to it."""
    c = rgw.cluster()
    yield c
    if c.restart("ceph-osd") | c.restart("radosgw") | c.set_full(False):
        c.wait_writable()


@pytest.fixture
def s3home(bwc: Any, s3: S3Env, tmp_path: Path) -> Path:
    r = bwc("init", "--station-id", "st-rgw")
    assert r.code == 0, r.err
    return tmp_path / "home"


def set_s3(home: Path, **values: float) -> None:
    """Set keys of the ``[s3]`` table that `bwc init` wrote."""
    cfg = home / "bwc.toml"
    lines = cfg.read_text().splitlines()
    at = lines.index("[s3]")
    for key, value in values.items():
        lines.insert(at + 1, f"{key} = {value!r}")
        lines = [
            line for i, line in enumerate(lines) if i == at + 1 or not line.startswith(f"{key} =")
        ]
    cfg.write_text("\n".join(lines) + "\n")


def big_clip(camera: Path) -> str:
    """An 11 MiB file (three 5 MiB parts with part_size_mb = 5); its sha256."""
    data = os.urandom(11 << 20)
    (camera / "DCIM" / "DSJ0042_110023_20261015093010_0009.MP4").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def recorded(home: Path) -> tuple[set[str], list[str]]:
    """The catalog's items and the items of its `ingested` events (read as another process
    would, while the ingest runs)."""
    cat = Catalog(home)
    events = [str(e[2]) for e in cat.event_kinds() if e[1] == "ingested"]
    return set(cat.items()), events


def station(home: Path) -> tuple[Station, S3Store]:
    st = Station.open(home, actor="test-clerk", passphrase=None)
    assert isinstance(st.store, S3Store)
    return st, st.store


def test_radosgw_killed_mid_multipart_upload_then_restarted(
    bwc: Any,
    s3home: Path,
    s3: S3Env,
    ceph: rgw.Cluster,
    camera: Path,
) -> None:
    """radosgw is SIGKILLed while the parts of an 11 MiB file are being sent: while it is
    down nothing is recorded for that file; the upload waits, resumes on the restarted
    radosgw (the upload's parts are in RADOS) and completes; no multipart upload is left
    open; everything verifies."""
    set_s3(s3home, multipart_threshold_mb=5, part_size_mb=5, concurrency=2, timeout_seconds=10)
    sha = big_clip(camera)
    st, store = station(s3home)
    seen = {"parts": 0}
    during: dict[str, Any] = {}
    back = threading.Event()

    def restart_later() -> None:
        time.sleep(1.0)
        during["items"], during["events"] = recorded(s3home)
        ceph.restart("radosgw")
        back.set()

    def cut(**_: Any) -> None:
        seen["parts"] += 1
        if seen["parts"] == 2:  # the first part is on its way
            ceph.kill("radosgw")
            threading.Thread(target=restart_later).start()

    store.client.meta.events.register("before-send.s3.UploadPart", cut)
    report = Ingester(st, FFprobe(), Attribution("110023", "DSJ0042")).run([camera])
    assert back.wait(60)
    assert sha not in during["items"] and sha not in during["events"], during
    assert not report.errors, report.errors
    assert report.count("ingested") == 5
    assert seen["parts"] > 3  # parts were sent again after the restart
    c = s3.client()
    assert not c.list_multipart_uploads(Bucket=s3.bucket).get("Uploads")
    h = c.head_object(Bucket=s3.bucket, Key=s3.key(sha))
    assert h["ETag"].endswith('-3"') and h["ObjectLockMode"] == "COMPLIANCE"
    r = bwc("verify", "--all")
    assert r.code == 0 and "5 of 5 items verified" in r.out, r.out + r.err


def test_osd_down_bounded_waits_clear_status_then_completes(
    bwc: Any,
    s3home: Path,
    s3: S3Env,
    ceph: rgw.Cluster,
    camera: Path,
) -> None:
    """The OSD killed (radosgw up, storage gone: requests are taken and never answered).
    `bwc status` says so in one line within seconds; `bwc ingest` fails at once (exit 7)
    without copying or recording anything; killed in the middle of an ingest, each request
    waits at most ``timeout_seconds``, the upload retries, and completes once the OSD is
    back."""
    set_s3(s3home, timeout_seconds=3)
    ceph.kill("ceph-osd")
    t0 = time.monotonic()
    r = bwc("status")
    took = time.monotonic() - t0
    store_lines = [line for line in r.out.splitlines() if line.startswith("store")]
    assert len(store_lines) == 1, r.out
    assert "took the request but sent no answer in time (listing" in store_lines[0], r.out
    assert "may be down or full" in store_lines[0]
    assert took < 6, took  # one probe of at most 3 s here, not retried (was 3 x 120 s)

    before = tree_snapshot(camera)
    t0 = time.monotonic()
    r = bwc("ingest", camera, "--officer", "110023", "--device", "DSJ0042")
    assert r.code == 7, r.out + r.err
    assert "sent no answer in time" in r.err and len(r.err.strip().splitlines()) <= 2, r.err
    assert time.monotonic() - t0 < 6
    assert recorded(s3home) == (set(), [])
    assert tree_snapshot(camera) == before
    ceph.restart("ceph-osd")
    ceph.wait_writable()

    # Now in the middle of an ingest: the OSD goes at the first upload, back 4 s later.
    st, store = station(s3home)
    during: dict[str, Any] = {}
    back = threading.Event()

    def restart_later() -> None:
        time.sleep(4.0)
        during["items"], during["events"] = recorded(s3home)
        ceph.restart("ceph-osd")
        back.set()

    def cut(**_: Any) -> None:
        if "cut" not in during:
            during["cut"] = True
            ceph.kill("ceph-osd")
            threading.Thread(target=restart_later).start()

    store.client.meta.events.register("before-send.s3.PutObject", cut)
    report = Ingester(st, FFprobe(), Attribution("110023", "DSJ0042")).run([camera])
    assert back.wait(60)
    assert during["items"] == set() and during["events"] == [], during
    assert not report.errors, report.errors
    assert report.count("ingested") == 4
    assert tree_snapshot(camera) == before
    r = bwc("verify", "--all")
    assert r.code == 0 and "4 of 4 items verified" in r.out, r.out + r.err


def test_full_osd_files_wait_in_the_spool_then_complete(
    bwc: Any,
    s3home: Path,
    s3: S3Env,
    ceph: rgw.Cluster,
    camera: Path,
    tmp_path: Path,
) -> None:
    """A full cluster (the OSD's full ratio set below its use) blocks every write and still
    answers reads. The daemon's jobs wait in the spool, retrying; nothing is recorded as
    stored; `bwc status` says in one line that the store answers but files wait to be
    stored, and why; once space is freed every file completes and verifies."""
    set_s3(s3home, timeout_seconds=3, retry_seconds=1)
    set_daemon_config(s3home, stable_seconds=0.5, rescan_seconds=0.2, retry_max_seconds=1.0)
    before = tree_snapshot(camera)
    dock = tmp_path / "dock-full"
    dock.mkdir()
    ceph.set_full(True)
    d = DaemonProcess(s3home, [dock], tmp_path / "daemon.log").start()
    try:
        d.wait_ready()
        cat = Catalog(s3home)
        os.rename(camera, dock / "cam")
        wait_until(
            lambda: (
                sum(
                    j.state == "signed" and (j.reason or "").startswith("store:")
                    for j in cat.jobs()
                )
                == 4
            ),
            90,
            "every file waiting for the store",
            daemon=d,
            detail=lambda: "\n".join(str(j) for j in cat.jobs()),
        )
        assert recorded(s3home) == (set(), [])
        assert len(list((s3home / "spool" / "jobs").iterdir())) >= 4  # the copies wait
        r = bwc("status")
        store_lines = [line for line in r.out.splitlines() if line.startswith("store")]
        assert len(store_lines) == 1, r.out
        assert "answers, but 4 files wait to be stored" in store_lines[0], r.out
        assert "may be down or full" in store_lines[0], r.out
        ceph.set_full(False)
        wait_until(
            lambda: cat.item_count() == 4 and cat.active() == 0,
            90,
            "every file committed once the store takes writes",
            daemon=d,
            detail=lambda: "\n".join(str(j) for j in cat.jobs()),
        )
        assert d.terminate() == 0, d.log_tail()
    finally:
        d.kill()
    assert tree_snapshot(dock / "cam") == before  # the camera, moved into the dock, untouched
    r = bwc("verify", "--all")
    assert r.code == 0 and "4 of 4 items verified" in r.out, r.out + r.err
    st = json.loads(bwc("status", "--json").out)
    assert st["store"]["ok"] is True, st
