"""Regression (review issue 12, defect 8): an active signing key that the catalog does not
know must sign nothing. Every command that signs refuses it (exit 5, the key id named, what
to do) before it changes anything: no catalog row, no custody event, no store object, no
spool file; with the registered key put back, the log and every item still verify."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from bwc.evidence import keys
from tests.integration.daemon_util import BWC_EXE, tree_snapshot

pytestmark = pytest.mark.integration


def _catalog_dump(home: Path) -> list[str]:
    with sqlite3.connect(home / "catalog.sqlite") as db:
        return list(db.iterdump())


def _state(home: Path) -> tuple[list[str], object, object]:
    return _catalog_dump(home), tree_snapshot(home / "store"), tree_snapshot(home / "spool")


def test_unknown_active_key_signs_nothing(bwc, home: Path, camera: Path, tmp_path: Path) -> None:
    clips = sorted((camera / "DCIM").iterdir())
    r = bwc("ingest", clips[0], "--json")
    assert r.code == 0, r.out + r.err
    r = bwc("list", "--json")
    assert r.code == 0, r.err
    sha = r.out.split('"sha256": "')[1][:64]

    keys_dir = home / "keys"
    registered = keys.active_key_id(keys_dir)
    stranger = keys.generate_key(keys_dir, None)  # a key file, never registered
    keys.set_active(keys_dir, stranger.key_id)
    before = _state(home)

    commands: list[tuple[str, ...]] = [
        ("ingest", str(camera)),
        ("log", "checkpoint"),
        ("hold", sha, "--reason", "case 7"),
        ("classify", sha, "--class", "evidence", "--reason", "case 7"),
        ("attribute", sha, "--officer", "110099", "--reason", "shared camera"),
        ("retention", "apply"),
        ("verify", "--all", "--record"),
        ("log", "verify", "--record"),
        ("keys", "rotate"),
    ]
    for args in commands:
        r = bwc(*args)
        assert r.code == 5, (args, r.code, r.out, r.err)
        assert stranger.key_id in r.err, (args, r.err)
        assert "not registered in the catalog" in r.err, (args, r.err)
        assert "bwc keys list" in r.err, (args, r.err)
        assert "Traceback" not in r.err, (args, r.err)
        assert _state(home) == before, f"`bwc {' '.join(args)}` left a trace"

    # the docking daemon, as the station runs it
    env = {**os.environ, "BWC_HOME": str(home)}
    p = subprocess.run(
        [str(BWC_EXE), "daemon", "--no-live", "--dock", str(camera.parent)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 5, p.stdout + p.stderr
    assert stranger.key_id in p.stderr, p.stderr
    assert _state(home) == before, "`bwc daemon` left a trace"

    # the registered key back: nothing was signed by the stranger, everything verifies
    keys.set_active(keys_dir, registered)
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    r = bwc("ingest", str(camera), "--json")
    assert r.code == 0, r.out + r.err
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err


def test_a_retired_key_made_active_again_signs_nothing(bwc, home: Path, camera: Path) -> None:
    """Same class: a keys folder restored from before `bwc keys rotate` makes the retired key
    (rotated away, perhaps because it leaked) the active one again. It is refused (exit 5,
    naming it as retired) before anything is signed; the current key signs on."""
    clips = sorted((camera / "DCIM").iterdir())
    r = bwc("ingest", clips[0])
    assert r.code == 0, r.out + r.err
    keys_dir = home / "keys"
    old = keys.active_key_id(keys_dir)
    r = bwc("keys", "rotate")
    assert r.code == 0, r.out + r.err
    current = keys.active_key_id(keys_dir)
    assert current != old
    keys.set_active(keys_dir, old)  # the restored folder
    before = _state(home)
    for args in (("ingest", str(camera)), ("log", "checkpoint"), ("keys", "rotate")):
        r = bwc(*args)
        assert r.code == 5, (args, r.code, r.out, r.err)
        assert f"{old}" in r.err and "was retired at" in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1, r.err
        assert _state(home) == before, f"`bwc {' '.join(args)}` left a trace"
    keys.set_active(keys_dir, current)
    r = bwc("ingest", str(camera))
    assert r.code == 0, r.out + r.err
    r = bwc("log", "verify")
    assert r.code == 0, r.out + r.err
