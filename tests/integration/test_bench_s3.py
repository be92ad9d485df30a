"""bench/s3.py's smoke run (`--smoke`: two one-second clips, once) against moto and against
the test process's Ceph RGW: it runs and prints both ratio sets. Never a timed assertion:
the numbers come from the full run (`make bench`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration import rgw

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_s3_bench_smoke_on_moto_and_rgw(tmp_path: Path) -> None:
    ceph = rgw.cluster()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BWC_"))}
    env |= {"AWS_ACCESS_KEY_ID": rgw.KEY_ID, "AWS_SECRET_ACCESS_KEY": rgw.SECRET}
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "s3.py"), "--smoke", "--work", str(tmp_path),
         "--rgw-endpoint", ceph.url],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    for server in ("moto", "rgw"):
        for line in ("RATIO bwc/boto3", "PEAK RSS bwc ingest", "bwc ingest -> S3"):
            assert f"[{server}] {line}" in r.stdout, r.stdout
        if shutil.which("aws", path=env.get("PATH")):
            assert f"[{server}] RATIO bwc/aws" in r.stdout, r.stdout
        else:
            assert f"[{server}] aws s3 cp --recursive    skipped" in r.stdout, r.stdout
