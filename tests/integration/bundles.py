"""Helpers for the court bundle tests: the stock tools a clerk runs on a bundle (sha256sum,
openssl) and the verifiers that check one (`bwc verify-bundle`, and the bundle's own
verify.py under `env -i python3 -I` when this tree has it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bwc.evidence.bundle import layout

REPO = Path(__file__).resolve().parents[2]
VERIFY_PY = REPO / "bwc" / "evidence" / "bundle" / "verify.py"


@dataclass
class Ran:
    code: int
    out: str


def run(cmd: list[str] | str, cwd: Path, *, shell: bool = False) -> Ran:
    p = subprocess.run(
        cmd, cwd=cwd, shell=shell, capture_output=True, text=True, check=False, timeout=120
    )
    return Ran(p.returncode, p.stdout + p.stderr)


def bwc_cli(*args: str | Path, env: dict[str, str] | None = None) -> Ran:
    """`bwc` in a subprocess (the tree's own package first on the path)."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = str(REPO)
    p = subprocess.run(
        [sys.executable, "-m", "bwc.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env=e,
        timeout=300,
    )
    return Ran(p.returncode, p.stdout + p.stderr)


def bwc_verify_bundle(bundle: Path, *keys: str) -> Ran:
    # no home at all: verify-bundle must need none
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env["BWC_HOME"] = str(bundle.parent / "no-such-home")
    args: list[str | Path] = ["verify-bundle", bundle]
    for k in keys:
        args += ["--key", k]
    return bwc_cli(*args, env=env)


def verify_py(bundle: Path, *keys: str) -> Ran:
    """The bundle's own verifier, as a clerk runs it: no environment, isolated mode."""
    del keys  # verify.py takes no pins (the clerk compares fingerprints by hand)
    return run(["env", "-i", "/usr/bin/python3", "-I", "verify.py"], bundle)


Verifier = Callable[..., Ran]
# The verifiers every tamper must fail: bwc's own checks and the bundle's standalone one.
VERIFIERS: list[tuple[str, Verifier]] = [
    ("bwc verify-bundle", bwc_verify_bundle),
    ("verify.py", verify_py),
]


def info(bundle: Path) -> dict[str, Any]:
    return dict(json.loads((bundle / layout.BUNDLE_JSON).read_bytes()))


def expected_files(bundle: Path) -> set[str]:
    """docs/bundle.md's layout for this bundle (bundle.json says which items, which keys
    are the signing keys' ids, whether there is a PDF or a timestamp)."""
    data = info(bundle)
    files = {layout.README, layout.BUNDLE_JSON, layout.SUMS, layout.SUMS_SIG}
    files |= {layout.CHECKPOINT, layout.CONSISTENCY, layout.FINGERPRINTS}
    files |= {layout.VERIFY_PY, layout.REPORT_HTML}
    if data["pdf"] is True:
        files.add(layout.REPORT_PDF)
    if data["timestamp"] is not None:
        files |= {layout.TSR, layout.TSA_PEM}
    files |= {layout.key_path(k) for k in manifest_keys(bundle) | {data["sums_key"]}}
    for it in data["items"]:
        d = layout.item_dir(it["sha256"])
        files |= {it["file"], f"{d}/manifest.json", f"{d}/manifest.sig", f"{d}/custody.json"}
    return files


def manifest_keys(bundle: Path) -> set[str]:
    return {
        json.loads((bundle / layout.item_dir(it["sha256"]) / "manifest.json").read_bytes())[
            "key_id"
        ]
        for it in info(bundle)["items"]
    }


def files_of(bundle: Path) -> set[str]:
    return {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}


def resum(bundle: Path) -> None:
    """Rewrite SHA256SUMS for the bundle as it now is (what a forger does who cannot sign)."""
    digests = {}
    import hashlib

    for rel in files_of(bundle) - {layout.SUMS, layout.SUMS_SIG}:
        digests[rel] = hashlib.sha256((bundle / rel).read_bytes()).hexdigest()
    (bundle / layout.SUMS).write_bytes(layout.sums_text(digests))


TSA_CNF = """[ req ]
distinguished_name = dn
[ dn ]
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


def make_tsa(d: Path) -> Path:
    """A test TSA in ``d`` for `openssl ts -reply`: root.crt (and other-root.crt, another
    CA), tsa.crt issued by root with the timeStamping usage, tsa.cnf."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "tsa.cnf").write_text(TSA_CNF)
    (d / "serial").write_text("01\n")
    for name in ("root", "other-root"):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
             f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}", "-days", "2",
             "-extensions", "v3_ca", "-config", "tsa.cnf"],
            cwd=d, check=True, capture_output=True,
        )  # fmt: skip
    for cmd in (
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out",
         "tsa.csr", "-subj", "/CN=Test TSA", "-config", "tsa.cnf"],
        ["openssl", "x509", "-req", "-in", "tsa.csr", "-CA", "root.crt", "-CAkey", "root.key",
         "-CAcreateserial", "-out", "tsa.crt", "-days", "2", "-extfile", "tsa.cnf",
         "-extensions", "v3_tsa"],
    ):  # fmt: skip
        subprocess.run(cmd, cwd=d, check=True, capture_output=True)
    return d


def stamp(tsa: Path, data: bytes) -> bytes:
    """An RFC 3161 TimeStampResp over ``data`` from the test TSA (SHA-256, its cert in it)."""
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
