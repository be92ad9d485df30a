from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_ingest_verify_show(bwc, home: Path, camera: Path) -> None:
    r = bwc("ingest", camera, "--officer", "110023", "--device", "DSJ0042", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["ingested"] == 4
    assert data["ignored"] == 1
    assert data["errors"] == 0
    r = bwc("verify", "--all")
    assert r.code == 0, r.out + r.err
    assert "4 of 4 items verified" in r.out
