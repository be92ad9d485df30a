"""Verification at scale (issue 13): one `verification-run` custody event per `bwc verify`
run, with a signed statement and a report of every item's result stored in the store; one
`verified` event per failing item; `bwc show` finds an item's runs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bwc.evidence.canonical import canonical_json
from bwc.evidence.signing import verify_signature

pytestmark = pytest.mark.integration


def sql(home: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(home / "catalog.sqlite")) as con, con:
        return list(con.execute(query, params))


def events(home: Path, kind: str) -> list[dict[str, Any]]:
    rows = sql(home, "SELECT leaf FROM event WHERE kind = ? ORDER BY idx", (kind,))
    return [json.loads(r[0]) for r in rows]


def test_a_run_is_one_event_with_a_signed_report(bwc, home: Path, camera: Path) -> None:
    assert bwc("ingest", camera, "--json").code == 0
    shas = sorted(r[0] for r in sql(home, "SELECT sha256 FROM item"))
    size = sql(home, "SELECT size FROM log_head")[0][0]
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    assert sql(home, "SELECT size FROM log_head")[0][0] == size + 1  # one event, not four
    (ev,) = events(home, "verification-run")
    d = ev["details"]
    assert (d["scope"], d["items"], d["failed"], d["log_size"]) == ("all", 4, 0, size)
    run = d["run"]
    records = home / "store" / "records" / "verification"
    statement = (records / f"{run}.json").read_bytes()
    sig = (records / f"{run}.sig").read_bytes()
    report = (records / f"{run}.jsonl").read_bytes()
    assert hashlib.sha256(statement).hexdigest() == d["statement_sha256"]
    st = json.loads(statement)
    assert canonical_json(st) == statement
    assert st["report_sha256"] == hashlib.sha256(report).hexdigest() == d["report_sha256"]
    assert (st["items"], st["failed"], st["scope"], st["station"]) == (4, 0, "all", "st-test")
    (pub,) = [bytes(r[0]) for r in sql(home, "SELECT public_key FROM signing_key")]
    assert verify_signature(pub, statement, sig)
    lines = [json.loads(x) for x in report.decode().splitlines()]
    assert [x["sha256"] for x in lines] == shas and all(x["ok"] for x in lines)
    # `bwc show` finds the run; a run by id is found too
    r = bwc("verify", shas[0][:12])
    assert r.code == 0
    data = json.loads(bwc("show", shas[0][:12], "--json").out)
    assert [(v["scope"], v["ok"]) for v in data["verifications"]] == [("all", True), ("ids", True)]
    other = json.loads(bwc("show", shas[1][:12], "--json").out)
    assert [v["scope"] for v in other["verifications"]] == ["all"]
    assert bwc("log", "verify").code == 0


def test_a_failing_item_gets_its_own_event(bwc, home: Path, camera: Path) -> None:
    assert bwc("ingest", camera, "--json").code == 0
    sha = sql(home, "SELECT sha256 FROM item ORDER BY sha256")[0][0]
    obj = home / "store" / "objects" / sha[:2] / sha
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[-1] ^= 1
    obj.write_bytes(bytes(data))
    r = bwc("verify", "--all")
    assert r.code == 1
    (run,) = events(home, "verification-run")
    assert (run["details"]["items"], run["details"]["failed"]) == (4, 1)
    (failed,) = events(home, "verified")
    assert failed["item"] == sha and failed["details"]["ok"] is False
    assert failed["details"]["run"] == run["details"]["run"]
    assert any("sha256 mismatch" in f for f in failed["details"]["failed"])
    shown = json.loads(bwc("show", sha[:12], "--json").out)
    assert [(v["scope"], v["ok"]) for v in shown["verifications"]] == [("all", False)]


def test_no_record_and_a_damaged_log_record_nothing(bwc, home: Path, camera: Path) -> None:
    assert bwc("ingest", camera, "--json").code == 0
    size = sql(home, "SELECT size FROM log_head")[0][0]
    assert bwc("verify", "--all", "--no-record").code == 0
    assert sql(home, "SELECT size FROM log_head")[0][0] == size
    sql(home, "UPDATE event SET actor = 'mallory' WHERE idx = 1")
    r = bwc("verify", "--all")
    assert r.code == 1 and "not recorded" in r.err
    assert sql(home, "SELECT size FROM log_head")[0][0] == size
    assert not (home / "store" / "records").exists()
    assert not list((home / "spool").rglob("*.jsonl"))  # nothing left behind


def test_json_output_is_one_document(bwc, home: Path, camera: Path) -> None:
    assert bwc("ingest", camera, "--json").code == 0
    r = bwc("verify", "--all", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["ok"] is True and len(data["items"]) == 4 and data["run"]
    assert all(i["ok"] for i in data["items"])
