"""Objects in the store that the catalog does not know (issue 12, defect 14): a commit that
failed after its store write left them there. `bwc verify --all` and `bwc store check` name
each (exit 1) and delete nothing, on a local store and on S3 (moto); a published checkpoint
older than the station's latest is a rollback, reported."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bwc.evidence.station import Station
from tests.conftest import Result
from tests.integration.s3 import S3Env, s3_fixture  # noqa: F401

pytestmark = pytest.mark.integration

Runner = Callable[..., Result]
ORPHAN = b"bytes stored by an ingest whose commit then failed\n"
ORPHAN_SHA = hashlib.sha256(ORPHAN).hexdigest()


def leave_orphan(home: Path, tmp_path: Path) -> None:
    """What an ingest leaves when its commit fails after the store write: the object (and
    its manifest) in the store, nothing in the catalog."""
    st = Station.open(home, actor="t", passphrase=None)
    staged = tmp_path / "staged.part"
    staged.write_bytes(ORPHAN)
    st.store.put_object(ORPHAN_SHA, staged)
    st.store.put_meta(ORPHAN_SHA, "manifest.json", b"{}")
    st.engine.dispose()


def assert_orphan_reported(bwc: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    # within the grace period an ingest may still commit it: not reported yet
    r = bwc("verify", "--all", "--no-record")
    assert r.code == 0, r.out + r.err
    monkeypatch.setenv("BWC_ORPHAN_GRACE_SECONDS", "0")

    r = bwc("verify", "--all", "--no-record")
    assert r.code == 1, r.out + r.err
    assert f"ORPHAN {ORPHAN_SHA}" in r.out.replace("\n", "")
    assert "4 of 4 items verified; 1 store objects not in the catalog" in r.out
    assert ORPHAN_SHA in r.err and "nothing was deleted" in r.err

    r = bwc("verify", "--all", "--no-record", "--json")
    assert r.code == 1
    assert f'"orphans": [\n    "{ORPHAN_SHA}"' in r.out

    r = bwc("store", "check")
    assert r.code == 1, r.out + r.err
    assert f"ORPHAN {ORPHAN_SHA}" in r.out.replace("\n", "")
    assert "not in the catalog" in r.err


def test_orphan_on_a_local_store(
    bwc: Runner, home: Path, camera: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bwc("ingest", str(camera)).code == 0
    assert bwc("store", "check").code == 0
    leave_orphan(home, tmp_path)
    assert_orphan_reported(bwc, monkeypatch)
    obj = home / "store" / "objects" / ORPHAN_SHA[:2] / ORPHAN_SHA
    assert obj.read_bytes() == ORPHAN, "nothing is deleted"


def test_orphan_on_s3(
    bwc: Runner,
    s3: S3Env,
    tmp_path: Path,
    camera: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert bwc("init", "--station-id", "st-s3").code == 0
    home = tmp_path / "home"
    assert bwc("ingest", str(camera)).code == 0
    assert bwc("store", "check").code == 0
    leave_orphan(home, tmp_path)
    assert_orphan_reported(bwc, monkeypatch)
    got = s3.client().get_object(Bucket=s3.bucket, Key=s3.key(ORPHAN_SHA))["Body"].read()
    assert got == ORPHAN, "nothing is deleted"


def test_store_checkpoint_rolled_back(bwc: Runner, home: Path, camera: Path) -> None:
    """The store's published checkpoint put back to an older one: a rollback, reported by
    `bwc store check` (and `bwc verify --all`)."""
    cp = home / "store" / "log" / "checkpoint"
    old = cp.read_bytes()
    assert bwc("ingest", str(camera)).code == 0
    assert bwc("log", "checkpoint").code == 0
    assert bwc("store", "check").code == 0
    os.chmod(cp, 0o600)
    cp.write_bytes(old)
    r = bwc("store", "check")
    assert r.code == 1, r.out + r.err
    assert "older than this station's latest" in r.err
    r = bwc("verify", "--all", "--no-record")
    assert r.code == 1, r.out + r.err
    sha = hashlib.sha256((camera / "GPS0001.csv").read_bytes()).hexdigest()
    r = bwc("verify", sha, "--no-record")  # by id: O(log n), the store's copy still checked
    assert r.code == 1, r.out + r.err
    assert "older than this station's latest" in r.out + r.err
