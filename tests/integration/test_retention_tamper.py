"""Regression (issue 12, defect 1): `bwc retention apply` deletes only what the signed record
says is due. One catalog column changed with sqlite3 (an item's ingest time, its class, its
case, a hold released in the catalog only, its recorded times), and the item is not deleted:
it is named with the fact that differs, the command exits 1, and the untampered items due are
still deleted (the output says so). `bwc log verify` passes throughout: the catalog's item and
retention rows are not in the log, they are checked against it."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bwc.evidence.station import Station
from bwc.ingest.pipeline import Attribution, Ingester
from bwc.ingest.probe import FFprobe
from tests.clocks import FixedClock
from tests.integration.s3 import S3Env, s3_plain_fixture  # noqa: F401

pytestmark = pytest.mark.integration

PAST = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)  # standard class (6 months): due 2025-07-01
DB_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy writes a DateTime in SQLite


def ingest_at(home: Path, when: datetime, *paths: Path) -> list[str]:
    st = Station.open(home, actor="clerk-2025", passphrase=None, clock=FixedClock(when, 0.001))
    report = Ingester(st, FFprobe(), Attribution("110023", "DSJ0042")).run(list(paths))
    assert not report.errors, report.errors
    return sorted(r.sha256 for r in report.results if r.status == "ingested" and r.sha256)


def sql(home: Path, query: str, *params: Any) -> None:
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con, con:
        assert con.execute(query, params).rowcount == 1, query


def stored(home: Path, sha: str) -> bool:
    return bool(list((home / "store" / "objects").glob(f"*/{sha}")))


def line_of(out: str, sha: str) -> str:
    (line,) = [x for x in out.splitlines() if sha in x]
    return line


def fresh_item(bwc, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    d = tmp_path / "fresh"
    d.mkdir()
    (d / "note.txt").write_text("footage of today")
    r = bwc("ingest", d, "--officer", "110023", "--device", "DSJ0042", "--json")
    assert r.code == 0, r.err
    (res,) = [x for x in json.loads(r.out)["results"] if x["status"] == "ingested"]
    return str(res["sha256"])


def _ingest_time(bwc, home: Path, shas: list[str], fresh: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """New footage made to look old: its default class then says it is due."""
    sql(home, "UPDATE item SET ingested_at = ? WHERE sha256 = ?", PAST.strftime(DB_TIME), fresh)
    return fresh, "ingest time"


def _class(bwc, home: Path, shas: list[str], fresh: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    sha = shas[0]
    assert bwc("classify", sha[:12], "--class", "evidence", "--reason", "assault").code == 0
    sql(
        home,
        "UPDATE item_retention SET class_name = 'standard', retain_until = ? WHERE sha256 = ?",
        datetime(2025, 7, 1, 8, tzinfo=UTC).strftime(DB_TIME),
        sha,
    )
    return sha, "class"


def _class_row_gone(bwc, home: Path, shas: list[str], fresh: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The classification's row deleted: the item falls back to the default class."""
    sha = shas[0]
    assert bwc("classify", sha[:12], "--class", "evidence", "--reason", "assault").code == 0
    sql(home, "DELETE FROM item_retention WHERE sha256 = ?", sha)
    return sha, "class"


def _case(bwc, home: Path, shas: list[str], fresh: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    sha = shas[0]
    r = bwc("classify", sha[:12], "--class", "standard", "--case", "C-1", "--reason", "linked")
    assert r.code == 0, r.err
    sql(home, "UPDATE item_retention SET case_id = 'C-2' WHERE sha256 = ?", sha)
    return sha, "case"


def _hold(bwc, home: Path, shas: list[str], fresh: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    sha = shas[0]
    assert bwc("hold", sha[:12], "--reason", "complaint 118").code == 0
    sql(
        home,
        "UPDATE legal_hold SET released_at = ?, released_by = 'x', release_reason = 'x' "
        "WHERE sha256 = ?",
        datetime(2026, 1, 1, tzinfo=UTC).strftime(DB_TIME),
        sha,
    )
    return sha, "legal hold"


def _recorded(bwc, home: Path, shas: list[str], fresh: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    sha = shas[0]
    sql(
        home,
        "UPDATE item SET recorded_start = ? WHERE sha256 = ?",
        datetime(2024, 1, 1, tzinfo=UTC).strftime(DB_TIME),
        sha,
    )
    return sha, "recorded start"


TAMPER: dict[str, Callable[..., tuple[str, str]]] = {
    "ingested_at": _ingest_time,
    "class": _class,
    "class-row-deleted": _class_row_gone,
    "case": _case,
    "hold-released-in-catalog": _hold,
    "recorded_start": _recorded,
}


@pytest.mark.parametrize("what", list(TAMPER))
def test_apply_deletes_nothing_on_a_tampered_fact(
    bwc,  # type: ignore[no-untyped-def]
    home: Path,
    camera: Path,
    tmp_path: Path,
    what: str,
) -> None:
    shas = ingest_at(home, PAST, camera / "DCIM")  # three clips with recorded times, all due
    fresh = fresh_item(bwc, tmp_path)
    bad, fact = TAMPER[what](bwc, home, shas, fresh)
    assert bwc("log", "verify").code == 0  # the log alone cannot see it

    r = bwc("retention", "apply", "--dry-run")
    assert r.code == 1, r.out + r.err
    line = line_of(r.out, bad)
    assert line.startswith("unverified ") and fact in line and "not deleted" in line, r.out
    assert all(stored(home, s) for s in [*shas, fresh])

    r = bwc("retention", "apply")
    assert r.code == 1, r.out + r.err
    assert stored(home, bad), f"{what}: tampered item {bad[:12]} was deleted"
    line = line_of(r.out, bad)
    assert line.startswith("unverified ") and fact in line and "not deleted" in line, r.out
    assert bad[:16] in r.err and "not deleted" in r.err and "Traceback" not in r.err
    # the others due were checked and deleted, and the output says so
    others = [s for s in shas if s != bad]
    assert others and not any(stored(home, s) for s in others)
    assert f"{len(others)} deleted" in r.out and f"{len(others)} deleted" in r.err
    if bad != fresh:
        assert stored(home, fresh)
    assert bwc("log", "verify").code == 0


def test_apply_on_s3_without_lock_deletes_nothing_on_a_tampered_ingest_time(
    bwc,  # type: ignore[no-untyped-def]
    s3_plain: S3Env,
    tmp_path: Path,
) -> None:
    """Without Object Lock the store cannot refuse: the check is all there is."""
    assert bwc("init", "--station-id", "st-s3").code == 0
    home = tmp_path / "home"
    fresh = fresh_item(bwc, tmp_path)
    sql(home, "UPDATE item SET ingested_at = ? WHERE sha256 = ?", PAST.strftime(DB_TIME), fresh)
    r = bwc("retention", "apply")
    assert r.code == 1, r.out + r.err
    assert "ingest time" in r.out and fresh[:16] in r.err
    listing = s3_plain.client().list_objects_v2(Bucket=s3_plain.bucket, Prefix=s3_plain.key(fresh))
    assert listing.get("KeyCount", 0) >= 1


def test_classify_and_hold_refuse_a_tampered_ingest_time(bwc, home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The same defect one step earlier: a class is counted from the ingest time, so a class
    set on a tampered row would log a false date as fact, and a later deletion would check
    out against it. classify (and hold, release) check the row first and change nothing."""
    sha = fresh_item(bwc, tmp_path)
    sql(home, "UPDATE item SET ingested_at = ? WHERE sha256 = ?", PAST.strftime(DB_TIME), sha)
    r = bwc("classify", sha[:12], "--class", "evidence", "--reason", "assault")
    assert r.code == 1, r.out + r.err
    assert "ingest time" in r.err and "nothing was changed" in r.err and sha[:16] in r.err
    r = bwc("hold", sha[:12], "--reason", "complaint")
    assert r.code == 1 and "ingest time" in r.err, r.out + r.err
    shown = json.loads(bwc("retention", "show", sha[:12], "--json").out)
    assert (shown["classified"], shown["legal_hold"]) == (False, None)
