"""Upload speed into an S3 store, against stock tools measured in the same run, on two
servers: moto (an API simulator) and a real Ceph RADOS Gateway (single node on loopback,
tests/integration/rgw.py).

Per server, a bucket with Object Lock and 10 x 60 MB clips:
  (a) `aws s3 cp --recursive`         (the `aws` on PATH; else awscli from PyPI in a
                                       throwaway venv; else skipped)
  (b) a bare boto3 `upload_file` loop  (16 MiB parts, 4 threads)
  (c) `bwc ingest` into s3://bucket/prefix (hash, sign, upload, read back, log)
Prints, per server, as medians of --reps interleaved rounds:
  RATIO bwc/aws    target <= 1.0
  RATIO bwc/boto3  target <= 1.2 on RGW (1.5 on moto, which is the bottleneck there)
  PEAK RSS of `bwc ingest`   target <= 150 MB
moto runs as its own process, restarted fresh for every timed run (its memory only grows);
RGW is started once (~20 s) and every timed run gets a fresh bucket. `--smoke` runs two
one-second clips once on each server (`make test` runs it: it asserts that the bench runs and
prints its ratios, never a time). Needs: ffmpeg (footage), Ceph's Debian packages for RGW
(`make test` installs them).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BWC, LAST_CPU, LAST_OWN_RSS, ROOT, drop_caches, make_footage, run

MB = 1_000_000
MIB = 1 << 20
MOTO_CREDS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
}
COMMON_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
# target ratios per server: (bwc/aws, bwc/boto3)
TARGETS = {"moto": (1.0, 1.5), "rgw": (1.0, 1.2)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Target:
    """One timed run's server and bucket (Object Lock on)."""

    url: str
    bucket: str
    creds: dict[str, str]

    def cpu(self) -> float:
        """CPU seconds the server has used so far (a tool that makes it work less is
        faster)."""
        return 0.0

    def close(self) -> None:
        pass


def _client(url: str, creds: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=COMMON_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
    )


class Moto(Target):
    """A fresh moto server process on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = "bench-evidence"
        self.creds = MOTO_CREDS
        exe = Path(sys.executable).with_name("moto_server")
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
        _client(self.url, self.creds).create_bucket(
            Bucket=self.bucket, ObjectLockEnabledForBucket=True
        )

    def cpu(self) -> float:
        return _proc_cpu(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Rgw:
    """A Ceph RGW: the one this bench starts (sized for what it writes), or one given by
    --rgw-endpoint (keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)."""

    def __init__(self, endpoint: str | None, gib: int) -> None:
        self.cluster: Any = None
        if endpoint:
            self.url = endpoint
            self.creds = {k: os.environ[k] for k in MOTO_CREDS}
        else:
            sys.path.insert(0, str(ROOT))
            from tests.integration import rgw

            self.cluster = rgw.Cluster(block_gib=gib)
            self.url = self.cluster.url
            self.creds = {"AWS_ACCESS_KEY_ID": rgw.KEY_ID, "AWS_SECRET_ACCESS_KEY": rgw.SECRET}
            print(f"RGW up in {self.cluster.seconds:.0f} s at {self.url}", flush=True)

    def target(self) -> Target:
        rgw = self

        class Fresh(Target):
            def __init__(self) -> None:
                self.url, self.creds = rgw.url, rgw.creds
                self.bucket = f"bench-{secrets.token_hex(4)}"
                _client(self.url, self.creds).create_bucket(
                    Bucket=self.bucket, ObjectLockEnabledForBucket=True
                )

            def cpu(self) -> float:
                procs = rgw.cluster.procs if rgw.cluster else []
                return sum(_proc_cpu(p.pid) for p in procs)

        return Fresh()

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def awscli(work: Path, install: bool) -> Path | None:
    """`aws`: the one on PATH (its own Python and botocore), else one from PyPI in a
    throwaway venv (made once; not in --smoke), else None."""
    found = shutil.which("aws")
    if found:
        return Path(found)
    venv = work / "awscli-venv"
    aws = venv / "bin" / "aws"
    if aws.exists() or not install:
        return aws if aws.exists() else None
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


def boto3_child(folder: str, url: str, bucket: str, prefix: str) -> None:
    """(b): the bare loop, run in its own process like the other tools (keys from the
    environment)."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    c = boto3.client("s3", endpoint_url=url)
    cfg = TransferConfig(
        multipart_chunksize=16 * MIB, multipart_threshold=16 * MIB, max_concurrency=4
    )
    for p in sorted(Path(folder).iterdir()):
        c.upload_file(str(p), bucket, f"{prefix}/{p.name}", Config=cfg)


Cmd = Callable[[Target, dict[str, str]], tuple[list[str], dict[str, str]]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="interleaved rounds (medians)")
    ap.add_argument("--count", type=int, default=10, help="clips")
    ap.add_argument("--seconds", type=int, default=20, help="clip length (~3 MB/s): 20 s = 60 MB")
    ap.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "out")
    ap.add_argument("--server", default="moto,rgw", help="servers, comma-separated: moto,rgw")
    ap.add_argument("--rgw-endpoint", help="use this RGW instead of starting one")
    ap.add_argument("--smoke", action="store_true", help="2 one-second clips, once: runs only")
    ap.add_argument("--boto3-child", nargs=4, metavar=("FOLDER", "URL", "BUCKET", "PREFIX"))
    args = ap.parse_args()
    if args.boto3_child:
        boto3_child(*args.boto3_child)
        return
    if args.smoke:
        args.reps, args.count, args.seconds = 1, 2, 1
    servers = [s for s in args.server.split(",") if s]
    if not set(servers) <= set(TARGETS):
        ap.error(f"--server: moto or rgw, not {args.server}")

    args.work.mkdir(parents=True, exist_ok=True)
    src = args.work / ("src-smoke" if args.smoke else "src")
    files, _big = make_footage(src, args.count, args.seconds, big_parts=1 if args.smoke else 10)
    clips = Path(tempfile.mkdtemp(dir=args.work, prefix="s3clips-"))
    for f in files:  # exactly --count clips in one folder
        os.link(f, clips / f.name)
    total = sum(f.stat().st_size for f in files)
    aws = awscli(args.work, install=not args.smoke)
    # --smoke (inside `make test`) leaves the machine's page cache alone
    dropped = False if args.smoke else drop_caches()
    print(f"{len(files)} files, {total / MB:.0f} MB; page cache dropped: {dropped}")
    print(f"aws: {aws or 'not found: (a) skipped'}")
    scratch = Path(tempfile.mkdtemp(dir=args.work, prefix="s3run-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BWC_"))}
    base_env |= COMMON_ENV | {
        "AWS_CONFIG_FILE": str(scratch / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-credentials"),
    }
    rsss: dict[str, list[tuple[int, int]]] = {}  # per server: (own process, with children)

    def aws_cp(t: Target, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        assert aws is not None
        return [str(aws), "s3", "cp", "--recursive", "--only-show-errors", str(clips),
                f"s3://{t.bucket}/aws/", "--endpoint-url", t.url], env  # fmt: skip

    def boto3_loop(t: Target, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        return [
            sys.executable, __file__, "--boto3-child", str(clips), t.url, t.bucket, "boto3"
        ], env  # fmt: skip

    def bwc_ingest(t: Target, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        home = scratch / "home"
        shutil.rmtree(home, ignore_errors=True)
        e = env | {
            "BWC_HOME": str(home),
            "BWC_ACTOR": "bench",
            "BWC_STORE": f"s3://{t.bucket}/bwc",
        }
        subprocess.run(
            [str(BWC), "init", "--station-id", "bench"],
            env=e,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return [str(BWC), "ingest", str(clips)], e

    def timed(server: str, new: Callable[[], Target], cmd_for: Cmd) -> float:
        t = new()
        try:
            env = base_env | t.creds | {"AWS_ENDPOINT_URL": t.url}
            cmd, env = cmd_for(t, env)
            # aws's own code and botocore data are loaded once too, as bwc's are (an `ls`
            # of the empty bucket; it stores nothing)
            warm = [[str(aws), "s3", "ls", f"s3://{t.bucket}/", "--endpoint-url", t.url]]
            if not args.smoke:
                drop_caches(warm if aws else [], env)
            cpu0 = t.cpu()
            wall, rss = run(cmd, env=env)
            if cmd[0] == str(BWC):
                rsss.setdefault(server, []).append((LAST_OWN_RSS[0], rss))
            print(
                f"  [{server}] {Path(cmd[0]).name} {' '.join(cmd[1:3])}: {wall:.2f} s "
                f"(its CPU {LAST_CPU[0]:.2f} s, server CPU {t.cpu() - cpu0:.2f} s)",
                flush=True,
            )
            return wall
        finally:
            t.close()

    rgw: Rgw | None = None
    try:
        for server in servers:
            if server == "rgw":
                # every round writes the clips three times, and bwc's copies stay locked
                need = 3 * args.reps * total // (1 << 30) + 8
                rgw = Rgw(args.rgw_endpoint, gib=need)
                new: Callable[[], Target] = rgw.target
            else:
                new = Moto
            # Interleaved rounds (a, b, c, a, b, c, ...): the machine is shared, and its
            # load drifts.
            times: dict[str, list[float]] = {"aws": [], "boto3": [], "bwc": []}
            for _ in range(args.reps):
                if aws:
                    times["aws"].append(timed(server, new, aws_cp))
                times["boto3"].append(timed(server, new, boto3_loop))
                times["bwc"].append(timed(server, new, bwc_ingest))
            report(server, times, rsss[server], total)
    finally:
        if rgw is not None:
            rgw.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(clips, ignore_errors=True)


def report(
    server: str, times: dict[str, list[float]], rss: list[tuple[int, int]], total: int
) -> None:
    t_aws = statistics.median(times["aws"]) if times["aws"] else None
    t_boto = statistics.median(times["boto3"])
    t_bwc = statistics.median(times["bwc"])
    to_aws, to_boto = TARGETS[server]

    def line(name: str, t: float) -> None:
        print(f"[{server}] {name:<24} {t:7.2f} s  ({total / MB / t:6.0f} MB/s)")

    if t_aws:
        line("aws s3 cp --recursive", t_aws)
    else:
        print(f"[{server}] aws s3 cp --recursive    skipped (no aws CLI)")
    line("boto3 upload_file loop", t_boto)
    line("bwc ingest -> S3", t_bwc)
    if t_aws:
        print(f"[{server}] RATIO bwc/aws      {t_bwc / t_aws:.2f}  (target <= {to_aws})")
    print(f"[{server}] RATIO bwc/boto3    {t_bwc / t_boto:.2f}  (target <= {to_boto})")
    print(
        f"[{server}] PEAK RSS bwc ingest  {max(own for own, _ in rss) / 1024:.0f} MB  "
        f"(target <= 150; {max(tree for _, tree in rss) / 1024:.0f} MB with its ffprobe "
        "alongside)",
        flush=True,
    )


if __name__ == "__main__":
    main()
