"""Upload speed into an S3 store, against stock tools measured in the same run.

One moto server on loopback (a separate process, restarted fresh for every timed run so each
tool meets the same empty server), a bucket with Object Lock, and 10 x 60 MB clips:
  (a) `aws s3 cp --recursive`         (awscli from PyPI, in a throwaway venv)
  (b) a bare boto3 `upload_file` loop  (16 MiB parts, 4 threads)
  (c) `bwc ingest` into s3://bucket/prefix (hash, sign, upload, read back, log)
Prints, as medians of --reps interleaved rounds:
  RATIO bwc/aws    target <= 1.0
  RATIO bwc/boto3  target <= 1.5
  PEAK RSS of `bwc ingest`   target <= 150 MB
moto is the bottleneck (one Python process, ~100 MB/s); its memory only grows, hence the
restarts. Needs: ffmpeg (footage), network access to PyPI once for awscli (else (a) is
skipped).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BWC, LAST_CPU, LAST_OWN_RSS, ROOT, drop_caches, make_footage, run

MB = 1_000_000
MIB = 1 << 20
BUCKET = "bench-evidence"
CREDS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Moto:
    """A moto server process on a free loopback port, with the bench bucket (Object Lock)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = ROOT / ".venv" / "bin" / "moto_server"
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("moto_server did not start") from None
                time.sleep(0.2)
        import boto3

        boto3.client("s3", endpoint_url=self.url, **_creds()).create_bucket(
            Bucket=BUCKET, ObjectLockEnabledForBucket=True
        )

    def cpu(self) -> float:
        """CPU seconds the server has used so far (it is the bottleneck: a tool that makes it
        work less is faster)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _creds() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDS["AWS_DEFAULT_REGION"],
    }


def awscli(work: Path) -> Path | None:
    """`aws` from PyPI in a throwaway venv (its own botocore), made once."""
    venv = work / "awscli-venv"
    aws = venv / "bin" / "aws"
    if aws.exists():
        return aws
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "awscli"],
            check=True,
        )
    except subprocess.CalledProcessError:
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return aws


def boto3_child(folder: str, url: str, prefix: str) -> None:
    """(b): the bare loop, run in its own process like the other tools."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    c = boto3.client("s3", endpoint_url=url, **_creds())
    cfg = TransferConfig(
        multipart_chunksize=16 * MIB, multipart_threshold=16 * MIB, max_concurrency=4
    )
    for p in sorted(Path(folder).iterdir()):
        c.upload_file(str(p), BUCKET, f"{prefix}/{p.name}", Config=cfg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=20, help="clip length (~3 MB/s): 20 s = 60 MB")
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "out")
    ap.add_argument("--boto3-child", nargs=3, metavar=("FOLDER", "URL", "PREFIX"))
    args = ap.parse_args()
    if args.boto3_child:
        boto3_child(*args.boto3_child)
        return

    src = args.work / "src"
    files, _big = make_footage(src, args.count, args.seconds, big_parts=10)
    clips = Path(tempfile.mkdtemp(dir=args.work, prefix="s3clips-"))
    for f in files:  # exactly --count clips in one folder
        os.link(f, clips / f.name)
    total = sum(f.stat().st_size for f in files)
    aws = awscli(args.work)
    print(f"{len(files)} files, {total / MB:.0f} MB; page cache dropped: {drop_caches()}")
    scratch = Path(tempfile.mkdtemp(dir=args.work, prefix="s3run-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BWC_"))}
    base_env |= CREDS | {
        "AWS_CONFIG_FILE": str(scratch / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-credentials"),
    }

    def timed(cmd_for: object) -> float:
        srv = Moto()
        try:
            env = base_env | {"AWS_ENDPOINT_URL": srv.url}
            cmd, env = cmd_for(srv, env)  # type: ignore[operator]
            # aws's own code and botocore data are loaded once too, as bwc's are (an `ls` of
            # the empty server; it stores nothing)
            warm = [[str(aws), "s3", "ls", f"s3://{BUCKET}/", "--endpoint-url", srv.url]]
            drop_caches(warm if aws else [], env)
            cpu0 = srv.cpu()
            wall, rss = run(cmd, env=env)
            rsss.setdefault(cmd[0], []).append((LAST_OWN_RSS[0], rss))
            print(
                f"  {Path(cmd[0]).name} {' '.join(cmd[1:3])}: {wall:.2f} s "
                f"(its CPU {LAST_CPU[0]:.2f} s, server CPU {srv.cpu() - cpu0:.2f} s)",
                flush=True,
            )
            return wall
        finally:
            srv.stop()

    rsss: dict[str, list[tuple[int, int]]] = {}  # (own process, with its children)

    def aws_cp(srv: Moto, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        assert aws is not None
        return [str(aws), "s3", "cp", "--recursive", "--only-show-errors", str(clips),
                f"s3://{BUCKET}/aws/", "--endpoint-url", srv.url], env  # fmt: skip

    def boto3_loop(srv: Moto, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, __file__, "--boto3-child", str(clips), srv.url, "boto3"], env

    def bwc_ingest(srv: Moto, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        home = scratch / "home"
        shutil.rmtree(home, ignore_errors=True)
        e = env | {"BWC_HOME": str(home), "BWC_ACTOR": "bench", "BWC_STORE": f"s3://{BUCKET}/bwc"}
        subprocess.run(
            [str(BWC), "init", "--station-id", "bench"],
            env=e,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return [str(BWC), "ingest", str(clips)], e

    # Interleaved rounds (a, b, c, a, b, c, ...): the machine is shared, and its load drifts.
    times: dict[str, list[float]] = {"aws": [], "boto3": [], "bwc": []}
    for _ in range(args.reps):
        if aws:
            times["aws"].append(timed(aws_cp))
        times["boto3"].append(timed(boto3_loop))
        times["bwc"].append(timed(bwc_ingest))
    t_aws = statistics.median(times["aws"]) if aws else None
    t_boto = statistics.median(times["boto3"])
    t_bwc = statistics.median(times["bwc"])
    rss_bwc = max(own for own, _ in rsss[str(BWC)])
    rss_tree = max(tree for _, tree in rsss[str(BWC)])

    def line(name: str, t: float) -> None:
        print(f"{name:<26} {t:7.2f} s  ({total / MB / t:6.0f} MB/s)")

    if t_aws:
        line("aws s3 cp --recursive", t_aws)
    else:
        print("aws s3 cp --recursive      skipped (awscli could not be installed)")
    line("boto3 upload_file loop", t_boto)
    line("bwc ingest -> S3", t_bwc)
    if t_aws:
        print(f"RATIO bwc/aws      {t_bwc / t_aws:.2f}  (target <= 1.0)")
    print(f"RATIO bwc/boto3    {t_bwc / t_boto:.2f}  (target <= 1.5)")
    print(
        f"PEAK RSS bwc ingest  {rss_bwc / 1024:.0f} MB  (target <= 150; "
        f"{rss_tree / 1024:.0f} MB with its ffprobe alongside)"
    )
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(clips, ignore_errors=True)


if __name__ == "__main__":
    main()
