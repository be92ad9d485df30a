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

pytestmark = pytest.mark.integration

_CNF = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = .
serial = ./serial
signer_cert = ./tsa.crt
signer_key = ./tsa.key
certs = ./tsa.crt
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ess_cert_id_alg = sha256
[ v3_tsa ]
extendedKeyUsage = critical,timeStamping
basicConstraints = CA:FALSE
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
"""


def _ca(d: Path, name: str) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
         f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}", "-days", "2",
         "-extensions", "v3_ca", "-config", "tsa.cnf"],
        cwd=d, check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tsa")
    (d / "tsa.cnf").write_text("[ req ]\ndistinguished_name = dn\n[ dn ]\n" + _CNF)
    (d / "serial").write_text("01\n")
    _ca(d, "root")
    _ca(d, "other-root")
    for cmd in (
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out",
         "tsa.csr", "-subj", "/CN=Test TSA", "-config", "tsa.cnf"],
        ["openssl", "x509", "-req", "-in", "tsa.csr", "-CA", "root.crt", "-CAkey", "root.key",
         "-CAcreateserial", "-out", "tsa.crt", "-days", "2", "-extfile", "tsa.cnf",
         "-extensions", "v3_tsa"],
    ):  # fmt: skip
        subprocess.run(cmd, cwd=d, check=True, capture_output=True)
    return d


def _stamp(tsa: Path, data: bytes) -> bytes:
    (tsa / "data").write_bytes(data)
    subprocess.run(
        ["openssl", "ts", "-query", "-data", "data", "-sha256", "-cert", "-out", "q.tsq"],
        cwd=tsa, check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "ts", "-reply", "-queryfile", "q.tsq", "-config", "tsa.cnf", "-out",
         "r.tsr"],
        cwd=tsa, check=True, capture_output=True,
    )  # fmt: skip
    return (tsa / "r.tsr").read_bytes()


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
