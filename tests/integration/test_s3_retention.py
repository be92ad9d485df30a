"""`bwc retention apply` against S3 with Object Lock (and the local store): what is due goes,
with every stored version; what is held or permanent stays; the dry run changes nothing; rows
changed behind bwc's back and objects the store still locks are refused, never deleted.

Old footage is made by ingesting through the API with a clock in the past (the S3 store's lock
dates follow the same clock, as they would have at the time)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bwc.evidence import lifecycle
from bwc.evidence.models import Event, Item, ItemRetention
from bwc.evidence.station import Station
from bwc.evidence.stores.s3 import S3Store
from bwc.evidence.timefmt import SystemClock
from bwc.ingest.pipeline import Attribution, Ingester
from bwc.ingest.probe import FFprobe
from tests.clocks import FixedClock
from tests.integration.s3 import S3Env, on_both, s3_fixture  # noqa: F401

pytestmark = pytest.mark.integration

PAST = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)  # standard class: due 2025-07-01


@pytest.fixture
def s3home(bwc, s3: S3Env, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    r = bwc("init", "--station-id", "st-ret")
    assert r.code == 0, r.err
    home = tmp_path / "home"
    with open(home / "bwc.toml", "a", encoding="utf-8") as f:
        f.write('traffic = "2 years"\n')  # appended to [retention.classes]
    return home


def ingest_at(home: Path, when: datetime, *paths: Path, store_clock: bool = True) -> list[str]:
    """Ingest as if at ``when``; return the new items' sha256s."""
    clock = FixedClock(when, step=0.001)
    st = Station.open(home, actor="clerk-2025", passphrase=None, clock=clock)
    if isinstance(st.store, S3Store):  # the store's lock dates follow this clock, or today
        st.store.clock = clock if store_clock else SystemClock()
    report = Ingester(st, FFprobe(), Attribution("110023", "DSJ0042")).run(list(paths))
    assert not report.errors, report.errors
    return sorted(r.sha256 for r in report.results if r.status == "ingested" and r.sha256)


def versions(s3: S3Env, sha: str) -> list[Any]:
    listing = s3.client().list_object_versions(Bucket=s3.bucket, Prefix=s3.key(sha))
    return [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]


def event_kinds(home: Path, sha: str) -> list[str]:
    st = Station.open(home, actor="t", passphrase=None)
    with Session(st.engine) as s:
        return [e.kind for e in s.exec(select(Event).where(Event.item_sha256 == sha))]


@pytest.mark.slow  # ~10-20 s: early in `make test` (tests/conftest.py)
def test_apply_deletes_only_what_is_due(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    old = ingest_at(s3home, PAST, camera / "DCIM", camera / "GPS0001.csv")
    assert len(old) == 4
    due, held, evidence, traffic = old
    assert bwc("hold", held, "--reason", "complaint 118").code == 0
    assert bwc("classify", evidence, "--class", "evidence", "--reason", "assault").code == 0
    assert bwc("classify", traffic, "--class", "traffic", "--reason", "appeal").code == 0
    fresh_dir = camera.parent / "fresh"
    fresh_dir.mkdir(exist_ok=True)
    (fresh_dir / "note.txt").write_text("new footage today")
    r = bwc("ingest", fresh_dir)
    assert r.code == 0, r.err

    # the dry run lists exactly what would go, and why, and changes nothing
    r = bwc("retention", "apply", "--dry-run", "--json")
    assert r.code == 0, r.err
    plan = json.loads(r.out)
    got = {(e["sha256"], e["status"]) for e in plan["entries"]}
    assert got == {(due, "would-delete"), (held, "kept")}
    entry = next(e for e in plan["entries"] if e["sha256"] == due)
    assert "class standard: retained until 2025-07-01T08:00:00" in entry["reason"]
    assert "not on hold" in entry["reason"]
    r = bwc("retention", "apply", "--dry-run")
    assert "would-delete" in r.out and "on legal hold (complaint 118)" in r.out
    assert "nothing was changed" in r.out
    assert versions(s3, due) and "deleted-by-policy" not in event_kinds(s3home, due)

    r = bwc("retention", "apply")
    assert r.code == 0, r.out + r.err
    assert "1 deleted" in r.out and "1 kept on hold" in r.out
    assert versions(s3, due) == []  # object, manifest and signature, every version
    for sha in (held, evidence, traffic):
        assert versions(s3, sha)
    st = Station.open(s3home, actor="t", passphrase=None)
    with Session(st.engine) as s:
        assert s.get(Item, due) is not None  # the record stays, with its sha256
        row = s.get(ItemRetention, due)
        assert row is not None and row.state == "deleted-by-policy"
        ev = s.exec(
            select(Event).where(Event.item_sha256 == due, Event.kind == "deleted-by-policy")
        ).one()
    assert b'"versions_deleted":3' in ev.leaf
    shown = json.loads(bwc("retention", "show", due[:12], "--json").out)
    assert shown["state"] == "deleted-by-policy" and shown["deleted_at"]
    assert shown["matches_log"] and shown["class"] == "standard"
    r = bwc("retention", "show", due[:12])
    assert r.code == 0 and "deleted-by-policy at" in r.out, r.out + r.err
    assert bwc("log", "verify").code == 0
    assert bwc("verify", held, evidence, traffic).code == 0
    r = bwc("hold", due[:12], "--reason", "too late")
    assert r.code == 2 and "deleted by retention policy" in r.err

    # nothing more is due; once the hold is released, the held item goes too
    r = bwc("retention", "apply", "--json")
    assert {e["status"] for e in json.loads(r.out)["entries"]} == {"kept"}
    assert bwc("release", held[:12], "--reason", "case closed").code == 0
    r = bwc("retention", "apply")
    assert r.code == 0 and "1 deleted" in r.out
    assert versions(s3, held) == []


def test_verify_reports_deleted_by_policy(bwc, s3home: Path, camera: Path) -> None:
    (sha,) = ingest_at(s3home, PAST, camera / "GPS0001.csv")
    assert bwc("retention", "apply").code == 0
    r = bwc("verify", sha)
    assert r.code == 0, r.out
    assert "deleted by policy" in r.out


def test_tampered_retention_row_is_refused(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    (sha,) = ingest_at(s3home, PAST, camera / "GPS0001.csv")
    assert bwc("classify", sha[:12], "--class", "evidence", "--reason", "assault").code == 0
    st = Station.open(s3home, actor="t", passphrase=None)
    with Session(st.engine) as s:  # someone edits the catalog to make evidence deletable
        row = s.get(ItemRetention, sha)
        assert row is not None
        row.class_name = "standard"
        row.retain_until = PAST + timedelta(days=181)
        s.add(row)
        s.commit()
    r = bwc("retention", "apply")
    assert r.code == 1  # verification failed: the catalog is not what was logged
    assert "differs from the custody log" in r.out + r.err
    assert versions(s3, sha)
    shown = json.loads(bwc("retention", "show", sha[:12], "--json").out)
    assert shown["matches_log"] is False


@on_both
def test_store_lock_outlives_the_catalog_date(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    """The catalog says due, but the store's COMPLIANCE lock runs longer: nothing is deleted,
    the reason is given, and a later run may try again."""
    (sha,) = ingest_at(s3home, PAST, camera / "GPS0001.csv", store_clock=False)
    r = bwc("retention", "apply")
    assert r.code == 7
    assert "Object Lock keeps" in r.out + r.err
    assert versions(s3, sha)
    assert "deleted-by-policy" not in event_kinds(s3home, sha)


@on_both
def test_permanent_locks_are_extended(bwc, s3home: Path, s3: S3Env, camera: Path) -> None:
    (sha,) = ingest_at(s3home, datetime.now(UTC), camera / "GPS0001.csv")
    assert bwc("classify", sha[:12], "--class", "obstruction", "--reason", "blocked").code == 0
    first = s3.client().head_object(Bucket=s3.bucket, Key=s3.key(sha))
    later = datetime.now(UTC) + timedelta(days=365 * 9 + 200)  # less than a year of lock left
    st = Station.open(s3home, actor="t", passphrase=None, clock=FixedClock(later))
    assert isinstance(st.store, S3Store)
    st.store.clock = st.clock
    rep = lifecycle.apply(st, dry_run=False)
    assert [(e.decision.sha256, e.status) for e in rep.entries] == [(sha, "extended")]
    now = s3.client().head_object(Bucket=s3.bucket, Key=s3.key(sha))
    assert now["ObjectLockRetainUntilDate"] > first["ObjectLockRetainUntilDate"]
    assert (now["ObjectLockRetainUntilDate"] - later).days >= 365 * 10 - 1
    assert event_kinds(s3home, sha).count("retention-changed") == 2
    # extended: not due again for years
    assert lifecycle.apply(st, dry_run=True).entries == []


def test_apply_on_the_local_store(bwc, home: Path, camera: Path) -> None:
    old = ingest_at(home, PAST, camera / "DCIM")
    r = bwc("retention", "apply", "--dry-run")
    assert r.code == 0 and r.out.count("would-delete") == 3
    r = bwc("retention", "apply")
    assert r.code == 0, r.out + r.err
    assert "3 deleted" in r.out
    objects = home / "store" / "objects"
    for sha in old:
        assert not list(objects.glob(f"*/{sha}*"))
    assert bwc("log", "verify").code == 0
