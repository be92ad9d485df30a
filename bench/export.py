"""Court export speed against stock tools, measured in the same run.

Prints, as medians of several repetitions (the machine is shared and noisy):
  export ratio = `bwc export` / (`cp -r` + `sync`) of the same files     target <= 1.3
  verify ratio = `bwc verify-bundle` / `sha256sum -c SHA256SUMS`         target <= 1.5
  (and `python3 verify.py` / `sha256sum -c` when the bundle carries verify.py)
With --zip also `bwc export --zip` against `zip -0` + `sync` of the same files (and against
`cp -r` + `sync`), and the peak disk space each export takes beside the store while it runs
(sampled every 10 ms): a folder bundle, and the zip that should take the same, not twice.
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
import threading
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
    ap.add_argument("--zip", action="store_true", help="also `bwc export --zip` vs `zip -0`")
    ap.add_argument("--only-zip", action="store_true", help="just the --zip comparison")
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

    peaks: dict[str, int] = {}

    def bwc_export(*extra: str) -> float:
        n[0] += 1
        out = scratch / f"bundle-{n[0]}"
        drop_caches()
        cmd = [*BWC_CMD, "export", *ids, "--out", str(out), "--for", "bench", *extra]
        kind = "zip" if "--zip" in extra else "folder"
        with DiskPeak(scratch, skip={"home", "cp"}) as disk:
            wall, _ = run(cmd, env=env)
        peaks[kind] = max(peaks.get(kind, 0), disk.peak)
        if n[0] > 1:
            _remove(scratch / f"bundle-{n[0] - 1}")
        return wall

    def zip0_sync() -> float:
        dst = scratch / "z0.zip"
        dst.unlink(missing_ok=True)
        drop_caches()
        t0 = time.perf_counter()
        subprocess.run(["zip", "-0", "-q", "-j", str(dst), *map(str, objects)], check=True)
        subprocess.run(["sync"], check=True)
        wall = time.perf_counter() - t0
        dst.unlink()
        return wall

    t_cp = median_of(args.reps, cp_sync)
    if args.zip or args.only_zip:
        t_zip0 = median_of(args.reps, zip0_sync)
        t_zip = median_of(args.reps, lambda: bwc_export("--no-pdf", "--zip"))
        t_folder = median_of(args.reps, lambda: bwc_export("--no-pdf"))
        print(f"cp -r + sync             {t_cp:7.2f} s  ({total / MB / t_cp:6.0f} MB/s)")
        print(f"zip -0 + sync            {t_zip0:7.2f} s  ({total / MB / t_zip0:6.0f} MB/s)")
        print(
            f"bwc export --no-pdf      {t_folder:7.2f} s  ratio to cp {t_folder / t_cp:.2f}"
            f"  peak disk {peaks['folder'] / total:.2f}x the footage"
        )
        print(
            f"bwc export --no-pdf --zip{t_zip:7.2f} s  ratio to cp {t_zip / t_cp:.2f}, "
            f"to zip -0 {t_zip / t_zip0:.2f}  peak disk {peaks['zip'] / total:.2f}x the footage"
        )
        if args.only_zip:
            shutil.rmtree(scratch)
            return
    peaks.clear()
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


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


class DiskPeak:
    """The largest number of bytes the files under ``root`` (but the ``skip`` folders)
    took on disk at once while the block ran, sampled every 10 ms."""

    def __init__(self, root: Path, skip: set[str]) -> None:
        self.root, self.skip, self.peak = root, skip, 0
        self._done = threading.Event()
        self._base = 0

    def _now(self) -> int:
        total = 0
        todo = [e for e in _entries(self.root) if e.name not in self.skip]
        while todo:
            e = todo.pop()
            try:
                if e.is_dir(follow_symlinks=False):
                    todo.extend(_entries(Path(e.path)))
                else:
                    total += e.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue  # renamed or removed meanwhile
        return total

    def _run(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, self._now() - self._base)

    def __enter__(self) -> DiskPeak:
        self._base = self._now()  # what is there already (the previous bundle)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _entries(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


if __name__ == "__main__":
    main()
