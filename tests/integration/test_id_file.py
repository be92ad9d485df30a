"""Issue 15, point 7. A camera's id file (ID.TXT at its root, read for the device and officer
ids) is camera metadata: recorded with the dock session (name, SHA-256, size) on the `docked`
event, still ingested as evidence like every file on the card, but flagged `id-file` instead
of `unattributed`, and not listed by `bwc list --unattributed`. And `bwc daemon --help` states
one default for --live."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bwc.ingest.steps import read_id_file
from tests.conftest import Result
from tests.integration.daemon_util import BWC_EXE
from tests.integration.test_device_serial import Dock

pytestmark = pytest.mark.integration

ID_TEXT = b"device=DSJ0300\n"  # no officer: the footage needs the ledger or `bwc attribute`
CLIP = "DCIM/100MEDIA/20261015_093012_0003.MP4"  # the dcim profile: ids from ID.TXT


def test_daemon_help_states_one_default_for_live() -> None:
    r = subprocess.run(
        [str(BWC_EXE), "daemon", "--help"],
        env=os.environ | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    # the option's help, its lines joined (up to the next option)
    text = r.stdout.split("--live / --no-live", 1)[1].split("\n  --", 1)[0]
    assert "when standard error is a terminal" in " ".join(text.split()), text
    assert "[default:" not in text, text


def test_ingested_id_file_is_flagged_not_unattributed(
    bwc: Callable[..., Result], home: Path, tmp_path: Path
) -> None:
    run = bwc
    cam = tmp_path / "cam"
    (cam / CLIP).parent.mkdir(parents=True)
    (cam / "ID.TXT").write_bytes(ID_TEXT)
    (cam / CLIP).write_bytes(b"footage\n")
    r = run("ingest", str(cam))
    assert r.code == 0, r.out + r.err

    items = {i["path"]: i for i in json.loads(run("list", "--json").out)}
    # still evidence, with the ids it states, flagged as the id file
    idf = items["ID.TXT"]
    assert idf["sha256"] == hashlib.sha256(ID_TEXT).hexdigest()
    assert idf["device_id"] == "DSJ0300"
    assert "id-file" in idf["flags"] and "unattributed" not in idf["flags"], idf
    clip = items[CLIP]
    assert clip["officer_id"] is None and "unattributed" in clip["flags"], clip
    assert "id-file" not in clip["flags"]

    listed = [i["path"] for i in json.loads(run("list", "--unattributed", "--json").out)]
    assert listed == [CLIP]
    listed = [i["path"] for i in json.loads(run("list", "--flag", "id-file", "--json").out)]
    assert listed == ["ID.TXT"]
    text = run("list").out
    assert "I id-file" in text and "U unattributed" in text, text


def test_docked_event_records_the_id_file(home: Path, tmp_path: Path) -> None:
    root = tmp_path / "dock"
    root.mkdir()
    dock = Dock(home, root)
    dock.camera("cam", "SER-A", {"ID.TXT": ID_TEXT, CLIP: b"footage\n"})
    dock.run()
    (docked,) = dock.docked_events()
    assert docked["device_id"] == "DSJ0300"
    assert docked["id_file"] == {
        "path": "ID.TXT",
        "sha256": hashlib.sha256(ID_TEXT).hexdigest(),
        "size": len(ID_TEXT),
    }
    # ingested too (nothing on a card is dropped), as the id file, not as footage
    flags = dock.flags(ID_TEXT)
    assert "id-file" in flags and "unattributed" not in flags, flags
    assert "unattributed" in dock.flags(b"footage\n")


def test_id_file_hash_covers_the_whole_file(tmp_path: Path) -> None:
    # only the start is parsed, but the hash is the file's, as the item it becomes
    data = ID_TEXT + b"# padding\n" * 10_000  # ~100 KiB, past the parsed part
    (tmp_path / "ID.TXT").write_bytes(data)
    found = read_id_file(os.fsencode(tmp_path))
    assert found is not None
    assert (found.name, found.device_id) == ("ID.TXT", "DSJ0300")
    assert (found.sha256, found.size) == (hashlib.sha256(data).hexdigest(), len(data))
