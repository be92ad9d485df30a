"""The bundle's standalone verify.py against `sha256sum -c` on the same bundle, same run.

Issue 14's target: verify.py on a 1 GB bundle takes at most 1.5 x `sha256sum -c SHA256SUMS`
(both with the bundle in the page cache: each is run once to warm it, then timed). Also
prints verify.py's Ed25519 verifications per second (same key, and a new key each time).

    python bench/verify_py.py [--mib 1024] [--items 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bwc.evidence.bundle import verify as vp
from tests.bundle_fixture import ItemSpec, make_bundle


def _timed(cmd: list[str], cwd: Path) -> float:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)  # warm the page cache
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def _ed25519_rate() -> tuple[float, float]:
    keys = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in range(1, 201)]
    signed = [
        (k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), k.sign(b"manifest"))
        for k in keys
    ]
    start = time.perf_counter()
    for pub, sig in signed:
        assert vp.ed25519_verify(pub, b"manifest", sig)
    distinct = len(signed) / (time.perf_counter() - start)
    pub, sig = signed[0]
    start = time.perf_counter()
    for _ in range(500):
        assert vp.ed25519_verify(pub, b"manifest", sig)
    same = 500 / (time.perf_counter() - start)
    return same, distinct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="total footage size in MiB")
    parser.add_argument("--items", type=int, default=4, help="number of footage files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        each = args.mib * (1 << 20) // args.items
        specs = [ItemSpec(f"clip{i}.mp4", content=os.urandom(each)) for i in range(args.items)]
        bundle = make_bundle(Path(tmp), items=specs)
        del specs
        sums = _timed(["sha256sum", "--quiet", "-c", "SHA256SUMS"], bundle)
        ours = _timed(["env", "-i", sys.executable, "-I", "verify.py", "--quiet"], bundle)
        one = _timed(
            ["env", "-i", sys.executable, "-I", "verify.py", "--quiet", "--threads", "1"], bundle
        )
    same, distinct = _ed25519_rate()
    print(f"bundle: {args.mib} MiB in {args.items} footage files")
    print(f"sha256sum -c:            {sums:6.2f} s")
    print(f"verify.py (2 threads):   {ours:6.2f} s  ratio {ours / sums:.2f} (target <= 1.5)")
    print(f"verify.py (1 thread):    {one:6.2f} s  ratio {one / sums:.2f}")
    print(f"Ed25519 verify: {same:.0f}/s same key, {distinct:.0f}/s a new key each time")


if __name__ == "__main__":
    main()
