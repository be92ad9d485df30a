"""`bwc verify-bundle`'s RFC 3161 check (log/checkpoint.tsr, log/tsa.pem): a token made by a
real `openssl ts -reply` TSA with a test CA verifies; one over other bytes, one whose chain
is another CA's, and a token without its chain fail, named. (The export's timestamp hook is
feat/tsa's; this checks what a bundle carrying one must pass.)"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import BinaryIO

import pytest

from bwc.evidence.bundle import check, layout
from tests.integration.bundles import make_tsa, stamp

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tsa(tmp_path_factory.mktemp("tsa"))


def _stamp(tsa: Path, data: bytes) -> bytes:
    return stamp(tsa, data)


class DictReader:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.data = files

    def files(self) -> list[str]:
        return list(self.data)

    def problems(self) -> list[str]:
        return []

    def read(self, path: str) -> bytes | None:
        return self.data.get(path)

    def open(self, path: str) -> BinaryIO:
        raise NotImplementedError


CP = b"bwc/st-test\n5\n" + b"A" * 43 + b"=\n\n\xe2\x80\x94 st-test abc\n"


def _lines(files: dict[str, bytes]) -> list[check.Line]:
    rep = check.BundleReport("x")
    check._timestamp(DictReader(files), rep)
    return rep.lines


def test_a_real_token_verifies(tsa: Path) -> None:
    chain = (tsa / "tsa.crt").read_bytes() + (tsa / "root.crt").read_bytes()
    tsr = _stamp(tsa, CP)
    (line,) = _lines({layout.CHECKPOINT: CP, layout.TSR: tsr, layout.TSA_PEM: chain})
    assert line.ok and "timestamped at" in line.detail
    # the clerk's command (README) agrees
    (tsa / "chain.pem").write_bytes(chain)
    (tsa / "checkpoint").write_bytes(CP)
    (tsa / "checkpoint.tsr").write_bytes(tsr)
    r = subprocess.run(
        ["openssl", "ts", "-verify", "-data", "checkpoint", "-in", "checkpoint.tsr",
         "-CAfile", "chain.pem"],
        cwd=tsa, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and "Verification: OK" in r.stdout


def test_a_token_over_other_bytes_fails(tsa: Path) -> None:
    chain = (tsa / "tsa.crt").read_bytes() + (tsa / "root.crt").read_bytes()
    tsr = _stamp(tsa, CP + b"x")
    (line,) = _lines({layout.CHECKPOINT: CP, layout.TSR: tsr, layout.TSA_PEM: chain})
    assert not line.ok and line.what == layout.TSR and "imprint" in line.detail


def test_a_token_chained_to_another_root_fails(tsa: Path) -> None:
    chain = (tsa / "tsa.crt").read_bytes() + (tsa / "other-root.crt").read_bytes()
    tsr = _stamp(tsa, CP)
    (line,) = _lines({layout.CHECKPOINT: CP, layout.TSR: tsr, layout.TSA_PEM: chain})
    assert not line.ok and "signature does not verify" in line.detail


def test_a_token_without_its_chain_fails(tsa: Path) -> None:
    (line,) = _lines({layout.CHECKPOINT: CP, layout.TSR: _stamp(tsa, CP)})
    assert not line.ok
    assert _lines({layout.CHECKPOINT: CP}) == []  # no TSA configured: nothing to check
