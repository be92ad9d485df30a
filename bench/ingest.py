"""Ingest and verify speed against stock tools, measured in the same run.

Prints, as medians of several repetitions (the machine is shared and noisy):
  ingest ratio  = `bwc ingest` / (`cp -r` + `sync`)          target <= 1.5
  verify ratio  = `bwc verify --all` / `openssl dgst -sha256`  target <= 1.0
  peak RSS of `bwc ingest` on one 600 MB file                  target <= 120 MB
    (of its own process; the total with the ffprobe it runs alongside the copy is printed too)
Page caches are dropped before every timed run when allowed (root), so every tool reads disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BWC, LAST_OWN_RSS, drop_caches, make_footage, run

MB = 1_000_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=20, help="clip length (~3 MB/s): 20 s = 60 MB")
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "out")
    args = ap.parse_args()

    src = args.work / "src"
    files, big_file = make_footage(src, args.count, args.seconds, big_parts=10)
    big = [big_file]
    total = sum(f.stat().st_size for f in files)
    cold = drop_caches()
    print(f"{len(files)} files, {total / MB:.0f} MB; page cache dropped before runs: {cold}")

    scratch = Path(tempfile.mkdtemp(dir=args.work, prefix="run-"))
    env = {**os.environ, "BWC_ACTOR": "bench"}
    env.pop("BWC_KEY_PASSPHRASE", None)

    def cp_sync() -> float:
        dst = scratch / "cp"
        shutil.rmtree(dst, ignore_errors=True)
        drop_caches()
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", str(src / "clips"), str(dst)], check=True)
        subprocess.run(["sync"], check=True)
        wall = time.perf_counter() - t0
        shutil.rmtree(dst)
        return wall

    def fresh_home(name: str) -> dict[str, str]:
        home = scratch / name
        shutil.rmtree(home, ignore_errors=True)
        e = {**env, "BWC_HOME": str(home)}
        subprocess.run(
            [str(BWC), "init", "--station-id", "bench"],
            env=e,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return e

    def bwc_ingest() -> float:
        e = fresh_home("home")
        drop_caches()
        wall, _ = run([str(BWC), "ingest", str(src / "clips")], env=e)
        return wall

    def openssl_objects() -> float:
        objs = sorted((scratch / "home" / "store" / "objects").glob("*/" + "?" * 64))
        drop_caches()
        wall, _ = run(["openssl", "dgst", "-sha256", *map(str, objs)])
        return wall

    def bwc_verify() -> float:
        drop_caches()
        wall, _ = run(
            [str(BWC), "verify", "--all", "--no-record"],
            env={**env, "BWC_HOME": str(scratch / "home")},
        )
        return wall

    # Interleaved rounds (the machine is shared and its disk speed drifts): each round times
    # every tool once, in the same conditions; the medians are compared.
    runs: dict[str, list[float]] = {"cp": [], "ingest": [], "openssl": [], "verify": []}
    for _ in range(args.reps):
        runs["cp"].append(cp_sync())
        runs["ingest"].append(bwc_ingest())
        runs["openssl"].append(openssl_objects())
        runs["verify"].append(bwc_verify())
    for name, values in runs.items():
        print(f"  {name:<8} " + " ".join(f"{v:.2f}" for v in values))
    t_cp, t_ing, t_ssl, t_ver = (statistics.median(runs[k]) for k in runs)

    e = fresh_home("big")
    drop_caches()
    t_big, rss_big = run([str(BWC), "ingest", str(big[0])], env=e)
    own_big = LAST_OWN_RSS[0]

    print(f"cp -r + sync          {t_cp:7.2f} s  ({total / MB / t_cp:6.0f} MB/s)")
    print(f"bwc ingest            {t_ing:7.2f} s  ({total / MB / t_ing:6.0f} MB/s)")
    print(f"openssl dgst -sha256  {t_ssl:7.2f} s  ({total / MB / t_ssl:6.0f} MB/s)")
    print(f"bwc verify --all      {t_ver:7.2f} s  ({total / MB / t_ver:6.0f} MB/s)")
    big_mb = big_file.stat().st_size / MB
    print(
        f"bwc ingest {big_mb:.0f} MB file {t_big:6.2f} s, peak RSS {own_big / 1024:.0f} MB "
        f"({rss_big / 1024:.0f} MB with its ffprobe alongside)"
    )
    print(f"RATIO ingest/cp+sync      {t_ing / t_cp:.2f}  (target <= 1.5)")
    print(f"RATIO verify/openssl      {t_ver / t_ssl:.2f}  (target <= 1.0)")
    print(f"PEAK RSS ingest {big_mb:.0f} MB    {own_big / 1024:.0f} MB  (target <= 120)")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
