"""Docking-station speed, against stock tools measured in the same run.

1. A camera of 20 x 60 MB clips: time from the camera appearing in the dock to every file
   committed, against `cp -r` + `sync` of the same files.            target ratio <= 2.0
2. A camera of 500 one-second clips: seconds per file.               target <= 0.25 s
3. A camera of 5,000 small files: time until all are noticed (jobs). target <= 5 s
4. Peak RSS of the daemon over the whole run.                        target <= 150 MB
A camera "appears" by renaming a prepared folder into the dock root (atomic, like a mount).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BWC, drop_caches, make_footage

MB = 1_000_000


def count(home: Path, sql: str) -> int:
    con = sqlite3.connect(f"file:{home / 'catalog.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        return int(con.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def wait_for(pred, timeout: float) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    while not pred():
        if time.perf_counter() - t0 > timeout:
            raise SystemExit("timed out waiting for the daemon")
        time.sleep(0.05)
    return time.perf_counter() - t0


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Station:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.dock = root / "dock"
        self.dock.mkdir(parents=True)
        self.env = {**os.environ, "BWC_HOME": str(self.home), "BWC_ACTOR": "bench"}
        self.env.pop("BWC_KEY_PASSPHRASE", None)
        subprocess.run(
            [str(BWC), "init", "--station-id", "bench"],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(self.home / "bwc.toml", "a") as f:
            f.write("\n")
        text = (self.home / "bwc.toml").read_text()
        text = text.replace("stable_seconds = 5.0", "stable_seconds = 2.0")
        text = text.replace("rescan_seconds = 2.0", "rescan_seconds = 1.0")
        text = text.replace("spool_min_free_mb = 1024", "spool_min_free_mb = 64")
        (self.home / "bwc.toml").write_text(text)
        self.proc = subprocess.Popen(
            [str(BWC), "daemon", "--dock", str(self.dock), "--no-live"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: (self.home / "daemon.json").exists(), 30)
        self.rss = 0.0

    def dock_camera(self, prepared: Path, name: str) -> None:
        os.rename(prepared, self.dock / name)

    def committed(self) -> int:
        self.rss = max(self.rss, peak_rss_mb(self.proc.pid))
        return count(
            self.home, "SELECT count(*) FROM ingest_job WHERE state IN ('committed','released')"
        )

    def stop(self) -> None:
        self.rss = max(self.rss, peak_rss_mb(self.proc.pid))
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--many", type=int, default=5000)
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "out")
    args = ap.parse_args()
    src = args.work / "src"
    clips, _big = make_footage(src, args.clips, 20, big_parts=10)
    total = sum(c.stat().st_size for c in clips)
    scratch = Path(tempfile.mkdtemp(dir=args.work, prefix="dock-"))
    try:
        # 1. cp -r + sync of the same clips
        drop_caches()
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", str(src / "clips"), str(scratch / "cp")], check=True)
        subprocess.run(["sync"], check=True)
        t_cp = time.perf_counter() - t0
        shutil.rmtree(scratch / "cp")

        st = Station(scratch / "s1")
        cam = scratch / "cam1"
        shutil.copytree(src / "clips", cam)
        old = time.time() - 3600  # footage recorded earlier in the shift: stable already
        for p in cam.iterdir():
            os.utime(p, (old, old))
        drop_caches()
        t0 = time.perf_counter()
        st.dock_camera(cam, "CAM-A")
        wait_for(lambda: st.committed() >= len(clips), 600)
        t_dock = time.perf_counter() - t0

        # 2. 500 one-second clips (one real clip, made distinct by a trailing tag)
        base = scratch / "one.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30:duration=1",
                "-f",
                "lavfi",
                "-i",
                "sine=duration=1",
                "-shortest",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-c:a",
                "aac",
                str(base),
            ],
            check=True,
        )
        data = base.read_bytes()
        cam2 = scratch / "cam2" / "DCIM"
        cam2.mkdir(parents=True)
        for i in range(args.small):
            stamp = f"20261015{9 + i // 3600:02d}{(i // 60) % 60:02d}{i % 60:02d}"
            p = cam2 / f"DSJ0043_110024_{stamp}_{i:04d}.MP4"
            p.write_bytes(data + i.to_bytes(8, "little") * 2)
            os.utime(p, (old, old))
        before = st.committed()
        t0 = time.perf_counter()
        st.dock_camera(scratch / "cam2", "CAM-B")
        wait_for(lambda: st.committed() >= before + args.small, 900)
        t_small = (time.perf_counter() - t0) / args.small

        # 3. 5,000 small files: noticed (jobs created) within
        cam3 = scratch / "cam3" / "DATA"
        cam3.mkdir(parents=True)
        for i in range(args.many):
            p = cam3 / f"LOG{i:05d}.TXT"
            p.write_bytes(f"gps fix {i}\n".encode())
            os.utime(p, (old, old))
        t0 = time.perf_counter()
        st.dock_camera(scratch / "cam3", "CAM-C")
        jobs_before = count(st.home, "SELECT count(*) FROM ingest_job")
        t_notice = wait_for(
            lambda: count(st.home, "SELECT count(*) FROM ingest_job") >= jobs_before + args.many,
            120,
        )
        wait_for(lambda: st.committed() >= before + args.small + args.many, 1800)
        st.stop()

        print(f"{len(clips)} clips, {total / MB:.0f} MB")
        print(f"cp -r + sync                 {t_cp:7.2f} s")
        print(f"dock -> all committed        {t_dock:7.2f} s")
        print(f"RATIO dock/cp+sync           {t_dock / t_cp:7.2f}  (target <= 2.0)")
        print(f"500 one-second clips         {t_small:7.3f} s per file  (target <= 0.25)")
        print(f"5,000 files noticed in       {t_notice:7.2f} s  (target <= 5)")
        print(f"daemon peak RSS              {st.rss:7.0f} MB  (target <= 150)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
