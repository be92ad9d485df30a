"""Court export speed against stock tools, measured in the same run.

Prints, as medians of several repetitions (the machine is shared and noisy):
  export ratio = `bwc export` / (`cp -r` + `sync`) of the same files     target <= 1.3
  verify ratio = `bwc verify-bundle` / `sha256sum -c SHA256SUMS`         target <= 1.5
  (and `python3 verify.py` / `sha256sum -c` when the bundle carries verify.py)
Page caches are dropped before every timed run when allowed (root), so every tool reads disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BWC, ROOT, drop_caches, make_files, median_of, run

MB = 1_000_000
# the worktree's own bwc when it has no venv of its own (a checkout without `make setup`)
BWC_CMD = [str(BWC)] if BWC.exists() else [sys.executable, "-m", "bwc.cli"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--size-mb", type=int, default=100, help="per file (10 x 100 MB = 1 GB)")
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "out")
    args = ap.parse_args()

    src = args.work / "export-src"
    files = make_files(src, args.count, args.size_mb << 20)
    total = sum(f.stat().st_size for f in files)
    cold = drop_caches()
    print(f"{len(files)} files, {total / MB:.0f} MB; page cache dropped before runs: {cold}")

    scratch = Path(tempfile.mkdtemp(dir=args.work, prefix="export-run-"))
    env = {**os.environ, "BWC_ACTOR": "bench", "BWC_HOME": str(scratch / "home")}
    env["PYTHONPATH"] = str(ROOT)
    env.pop("BWC_KEY_PASSPHRASE", None)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run([*BWC_CMD, "init", "--station-id", "bench"], env=env, **quiet)  # type: ignore[call-overload]
    subprocess.run([*BWC_CMD, "ingest", str(src)], env=env, **quiet)  # type: ignore[call-overload]
    listed = subprocess.run(
        [*BWC_CMD, "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    ids = [i["sha256"] for i in json.loads(listed.stdout)]
    objects = [scratch / "home" / "store" / "objects" / s[:2] / s for s in ids]
    n = [0]

    def cp_sync() -> float:
        dst = scratch / "cp"
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir()
        drop_caches()
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", *map(str, objects), str(dst)], check=True)
        subprocess.run(["sync"], check=True)
        wall = time.perf_counter() - t0
        shutil.rmtree(dst)
        return wall

    def bwc_export(*extra: str) -> float:
        n[0] += 1
        out = scratch / f"bundle-{n[0]}"
        drop_caches()
        cmd = [*BWC_CMD, "export", *ids, "--out", str(out), "--for", "bench", *extra]
        wall, _ = run(cmd, env=env)
        if n[0] > 1:
            shutil.rmtree(scratch / f"bundle-{n[0] - 1}")
        return wall

    t_cp = median_of(args.reps, cp_sync)
    # the whole bundle (its PDF printed by headless Chromium: a fixed ~1-2 s), and without
    # the PDF (what scales with the footage)
    t_nopdf = median_of(args.reps, lambda: bwc_export("--no-pdf"))
    t_export = median_of(args.reps, bwc_export)
    bundle = scratch / f"bundle-{n[0]}"

    def in_bundle(cmd: list[str]) -> float:
        drop_caches()
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=bundle, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0

    t_sums = median_of(args.reps, lambda: in_bundle(["sha256sum", "--quiet", "-c", "SHA256SUMS"]))
    t_check = median_of(args.reps, lambda: in_bundle([*BWC_CMD, "verify-bundle", str(bundle)]))
    print(f"cp -r + sync        {t_cp:7.2f} s  ({total / MB / t_cp:6.0f} MB/s)")
    print(f"bwc export          {t_export:7.2f} s  ratio {t_export / t_cp:.2f}  (target <= 1.3)")
    print(f"bwc export --no-pdf {t_nopdf:7.2f} s  ratio {t_nopdf / t_cp:.2f}")
    print(f"sha256sum -c        {t_sums:7.2f} s  ({total / MB / t_sums:6.0f} MB/s)")
    print(f"bwc verify-bundle   {t_check:7.2f} s  ratio {t_check / t_sums:.2f}  (target <= 1.5)")
    t_py = median_of(
        args.reps, lambda: in_bundle(["env", "-i", "/usr/bin/python3", "-I", "verify.py"])
    )
    print(f"verify.py           {t_py:7.2f} s  ratio {t_py / t_sums:.2f}  (target <= 1.5)")
    shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
