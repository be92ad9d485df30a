"""bwc against an S3 store over real HTTP (moto), through the CLI: ingest, verify, store check,
classify, hold and release, and the faults: the store stopped in the middle of an upload, an
object replaced behind bwc's back, a wrong credential."""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bwc.config.settings import S3Settings
from bwc.evidence.models import Event, Item, ItemRetention
from bwc.evidence.station import Station
from bwc.evidence.stores.s3 import S3Store
from bwc.ingest.pipeline import Attribution, Ingester
from bwc.ingest.probe import FFprobe
from tests.integration.s3 import (  # noqa: F401
    S3Env,
    on_both,
    s3_fixture,
    s3_plain_fixture,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def s3home(bwc, s3: S3Env, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    r = bwc("init", "--station-id", "st-s3")
    assert r.code == 0, r.err
    return tmp_path / "home"


def ingest(bwc, camera: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = bwc("ingest", camera, "--officer", "110023", "--device", "DSJ0042", "--json")
    assert r.code == 0, r.out + r.err
    return dict(json.loads(r.out))


def items(home: Path) -> list[Item]:
    st = Station.open(home, actor="t", passphrase=None)
    with Session(st.engine) as s:
        return list(s.exec(select(Item).order_by(Item.sha256)))


def events(home: Path, kind: str) -> list[Event]:
    st = Station.open(home, actor="t", passphrase=None)
    with Session(st.engine) as s:
        return list(s.exec(select(Event).where(Event.kind == kind)))


# ---------------------------------------------------------------------------- happy path


@on_both
def test_ingest_verify_through_s3(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    data = ingest(bwc, camera)
    assert data["ingested"] == 4 and data["errors"] == 0
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    assert "4 of 4 items verified" in r.out
    c = s3.client()
    now = datetime.now(UTC)
    for item in items(s3home):
        h = c.head_object(Bucket=s3.bucket, Key=s3.key(item.sha256))
        assert h["Metadata"] == {"sha256": item.sha256, "size": str(item.size)}
        assert item.store_version == h["VersionId"]  # the version id is in the catalog
        assert h["ObjectLockMode"] == "COMPLIANCE"  # the default class: 6 months
        assert 180 <= (h["ObjectLockRetainUntilDate"] - now).days <= 185
        for suffix in (".manifest.json", ".manifest.sig"):
            c.head_object(Bucket=s3.bucket, Key=s3.key(item.sha256, suffix))
    note = c.get_object(Bucket=s3.bucket, Key=f"{s3.prefix}/log/checkpoint")["Body"].read()
    assert note.decode().startswith("bwc/st-s3\n")
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err
    # the same bytes again: one item, a second sighting
    again = ingest(bwc, camera)
    assert again["ingested"] == 0 and again["seen_again"] == 4


@on_both
def test_store_check_with_object_lock(bwc, s3home: Path) -> None:
    r = bwc("store", "check")
    assert r.code == 0, r.err
    assert "object lock        on" in r.out
    assert "Object Lock is ON" in r.out and "COMPLIANCE" in r.out
    r = bwc("store", "check", "--require-lock", "--json")
    assert r.code == 0
    info = json.loads(r.out)
    assert info["object_lock"] is True and info["versioning"] == "Enabled"


def test_store_check_without_object_lock(
    bwc, s3_plain: S3Env, tmp_path: Path, camera: Path
) -> None:
    assert bwc("init", "--station-id", "st-plain").code == 0
    r = bwc("store", "check")
    assert r.code == 0, r.err
    assert "Object Lock is OFF" in r.out and "catalog only" in r.out
    assert "Versioning is OFF" in r.out
    r = bwc("store", "check", "--require-lock")
    assert r.code == 7 and "no Object Lock" in r.err
    # evidence still works: retention and holds are catalog-only
    assert ingest(bwc, camera)["ingested"] == 4
    sha = items(tmp_path / "home")[0].sha256
    r = bwc("hold", sha[:12], "--reason", "court order 17")
    assert r.code == 0, r.err
    assert "the store has no Object Lock" in r.out
    assert bwc("verify", "--all").code == 0


def test_local_store_check(bwc, home: Path) -> None:
    r = bwc("store", "check")
    assert r.code == 0, r.err
    assert "catalog and the custody log only" in r.out


def test_s3_settings_reach_the_store(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    cfg = s3home / "bwc.toml"
    text = cfg.read_text()
    text = text.replace("multipart_threshold_mb = 100", "multipart_threshold_mb = 5")
    cfg.write_text(text.replace("part_size_mb = 16", "part_size_mb = 5"))
    (camera / "DCIM" / "DSJ0042_110023_20261015093010_0009.MP4").write_bytes(os.urandom(11 << 20))
    assert ingest(bwc, camera)["ingested"] == 5
    big = max(items(s3home), key=lambda i: i.size)
    etag = s3.client().head_object(Bucket=s3.bucket, Key=s3.key(big.sha256))["ETag"]
    assert etag.endswith('-3"')  # three 5 MiB parts, as configured
    assert bwc("verify", "--all").code == 0


# ---------------------------------------------------------------------------- hold, classify


@on_both
def test_hold_and_release(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    ingest(bwc, camera)
    sha = items(s3home)[0].sha256
    c = s3.client()

    def store_hold() -> str:
        return str(c.head_object(Bucket=s3.bucket, Key=s3.key(sha))["ObjectLockLegalHoldStatus"])

    r = bwc("hold", sha[:10], "--reason", "complaint 2026-118")
    assert r.code == 0, r.err
    assert "Object Lock legal hold" in r.out
    assert store_hold() == "ON"
    r = bwc("hold", sha[:10], "--reason", "again")
    assert r.code == 2 and "already on legal hold (complaint 2026-118)" in r.err
    r = bwc("hold", sha[:10], "--reason", "  ")
    assert r.code == 2 and "reason is required" in r.err
    r = bwc("retention", "show", sha[:10], "--json")
    st = json.loads(r.out)
    assert st["legal_hold"]["reason"] == "complaint 2026-118" and st["store_legal_hold"] is True
    r = bwc("release", sha[:10], "--reason", "case closed")
    assert r.code == 0, r.err
    assert store_hold() == "OFF"
    r = bwc("release", sha[:10], "--reason", "again")
    assert r.code == 2 and "not on legal hold" in r.err
    kinds = [e.kind for e in events(s3home, "hold-placed") + events(s3home, "hold-released")]
    assert kinds == ["hold-placed", "hold-released"]
    assert bwc("verify", sha).code == 0
    assert bwc("log", "verify").code == 0


@on_both
def test_classify_lengthens_and_locks(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    ingest(bwc, camera)
    sha = items(s3home)[1].sha256
    c = s3.client()
    r = bwc("classify", sha[:12], "--class", "evidence", "--case", "CASE-7", "--reason", "fight")
    assert r.code == 0, r.err
    assert "standard -> evidence" in r.out and "CASE-7" in r.out
    lock = c.head_object(Bucket=s3.bucket, Key=s3.key(sha))["ObjectLockRetainUntilDate"]
    assert (lock - datetime.now(UTC)).days > 365 * 9  # permanent: 10 years ahead
    manifest_lock = c.head_object(Bucket=s3.bucket, Key=s3.key(sha, ".manifest.json"))
    assert manifest_lock["ObjectLockRetainUntilDate"] == lock
    # shortening needs --force, and never touches the store's lock
    r = bwc("classify", sha[:12], "--class", "standard", "--reason", "mistake")
    assert r.code == 2 and "would shorten" in r.err and "--force" in r.err
    r = bwc("classify", sha[:12], "--class", "nonesuch", "--reason", "x")
    assert r.code == 2 and "unknown retention class" in r.err
    r = bwc("classify", sha[:12], "--class", "standard", "--reason", "mistake", "--force")
    assert r.code == 0, r.err
    assert "forced" in r.out and "Object Lock still keeps it" in r.out
    assert c.head_object(Bucket=s3.bucket, Key=s3.key(sha))["ObjectLockRetainUntilDate"] == lock
    changed = events(s3home, "retention-changed")
    assert len(changed) == 2
    st = json.loads(bwc("retention", "show", sha[:12], "--json").out)
    assert st["class"] == "standard" and st["case"] == "CASE-7" and st["matches_log"]
    assert bwc("verify", "--all").code == 0


# ---------------------------------------------------------------------------- faults


def _station(home: Path) -> Station:
    st = Station.open(home, actor="test-clerk", passphrase=None)
    assert isinstance(st.store, S3Store)
    return st


def test_store_stopped_during_upload_then_back(
    bwc,
    s3home: Path,
    s3: S3Env,
    camera: Path,
) -> None:
    """The server goes away in the middle of a multipart upload; the upload waits for it and
    completes when it is back; everything verifies."""
    big = camera / "DCIM" / "DSJ0042_110023_20261015093010_0009.MP4"
    big.write_bytes(os.urandom(11 << 20))  # three 5 MiB parts
    st = _station(s3home)
    assert isinstance(st.store, S3Store)
    st.store.options = S3Settings(
        multipart_threshold_mb=5, part_size_mb=5, concurrency=2, retry_seconds=30
    )
    seen = {"parts": 0}
    restarted = threading.Event()

    def cut(**_: Any) -> None:
        seen["parts"] += 1
        if seen["parts"] == 2:
            s3.server.stop()
            threading.Timer(1.5, lambda: (s3.server.start(), restarted.set())).start()

    st.store.client.meta.events.register("before-send.s3.UploadPart", cut)
    report = Ingester(st, FFprobe(), Attribution("110023", "DSJ0042")).run([camera])
    assert restarted.is_set()
    assert not report.errors, report.errors
    assert report.count("ingested") == 5
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    assert "5 of 5 items verified" in r.out


def test_store_down_too_long_leaves_sources_then_resumes(
    bwc,
    s3home: Path,
    s3: S3Env,
    camera: Path,
) -> None:
    st = _station(s3home)
    assert isinstance(st.store, S3Store)
    st.store.options = S3Settings(retry_seconds=0.5)
    st.store.client.meta.events.register("before-send.s3.PutObject", lambda **_: s3.server.stop())
    before = sorted((p, p.stat().st_mtime_ns) for p in camera.rglob("*") if p.is_file())
    report = Ingester(st, FFprobe(), Attribution("110023", "DSJ0042")).run([camera])
    assert report.errors and report.count("ingested") == 0
    assert all("cannot reach the S3 endpoint" in (e.reason or "") for e in report.errors)
    assert sorted((p, p.stat().st_mtime_ns) for p in camera.rglob("*") if p.is_file()) == before
    s3.server.start()
    data = ingest(bwc, camera)
    assert data["ingested"] == 4
    assert bwc("verify", "--all").code == 0


def test_object_replaced_behind_our_back(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    ingest(bwc, camera)
    rows = items(s3home)
    shas = [i.sha256 for i in rows]
    c = s3.client()
    # a new version with other bytes of the same size (Object Lock keeps the original as an
    # older version)
    c.put_object(Bucket=s3.bucket, Key=s3.key(shas[0]), Body=b"\0" * rows[0].size)
    c.delete_object(Bucket=s3.bucket, Key=s3.key(shas[1]))  # a delete marker
    r = bwc("verify", "--all")
    assert r.code == 1
    assert f"FAIL {shas[0]}: object: " in r.out and "sha256 mismatch" in r.out
    assert f"FAIL {shas[1]}: object: object {shas[1]} is missing" in r.out
    assert "2 of 4 items verified" in r.out
    r = bwc("show", shas[0][:12])
    assert r.code == 1 and "sha256 mismatch" in r.out


def test_wrong_credential_is_a_clear_error(
    bwc,
    s3home: Path,
    s3: S3Env,
    camera: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKEYATALL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-never-printed")
    s3.server.require_auth(True)
    try:
        r = bwc("ingest", camera)
        c = bwc("store", "check")
    finally:
        s3.server.require_auth(False)
    assert r.code == 7, r.out + r.err
    assert "does not know this access key (InvalidAccessKeyId)" in r.err
    assert "check AWS_ACCESS_KEY_ID" in r.err
    assert "Traceback" not in r.err
    assert c.code == 7 and "InvalidAccessKeyId" in c.err
    for text in (r.out, r.err, c.out, c.err):
        assert "s3cr3t" not in text and "AKIANOTAKEY" not in text
    assert not items(s3home)


def test_verbose_logging_shows_no_credentials(
    bwc,
    s3home: Path,
    s3: S3Env,
    camera: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Even at DEBUG (`bwc -v`), nothing logs the access key or the secret: botocore's
    request dumps (signed headers) stay below the level shown."""
    caplog.set_level(logging.DEBUG)
    r = bwc("-v", "ingest", camera)
    assert r.code == 0
    text = r.out + r.err + caplog.text
    assert "bwc-test-secret" not in text and "bwc-test-key" not in text
    assert "Authorization" not in text


def test_retention_rows_untouched_by_plain_ingest(bwc, s3home: Path, camera: Path) -> None:
    """New footage needs no retention row: it follows the default class from its ingest."""
    ingest(bwc, camera)
    st = Station.open(s3home, actor="t", passphrase=None)
    with Session(st.engine) as s:
        assert not list(s.exec(select(ItemRetention)))
    sha = items(s3home)[0].sha256
    shown = json.loads(bwc("retention", "show", sha[:12], "--json").out)
    assert shown["class"] == "standard" and not shown["classified"]
    until = datetime.fromisoformat(shown["retain_until"].replace("Z", "+00:00"))
    assert timedelta(days=180) < until - datetime.now(UTC) < timedelta(days=185)
