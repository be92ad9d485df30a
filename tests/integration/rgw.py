"""A real S3 server for the integration tests: a single-node Ceph cluster (one mon, one
bluestore OSD on a sparse file, radosgw; no mgr) on 127.0.0.1, in a temporary folder, started
once per test process (each xdist worker has its own) on first use and stopped at exit by the
PIDs it started. It installs nothing: `make test` installs the Debian packages (ceph-mon
ceph-osd radosgw ceph-common). A cluster that does not come up fails the test that asked for
it, with the tail of the daemon's log: never a skip. The fault tests (test_rgw_faults.py)
kill and restart its daemons by PID (``kill``, ``restart``) and make its OSD full
(``set_full``), then put it back (``wait_writable``) for the next test of the process.

The server checks what moto does not (Content-MD5, COMPLIANCE retention that cannot be
shortened, versioning that cannot be suspended on a lock bucket); see docs/s3.md. Each test
gets fresh buckets (``fresh_buckets``), so tests never see each other's objects.

Settings that make a single node work (Ceph 16.2): pool size 1 (``osd pool default size``,
``min size``, ``mon allow pool size one``, ``osd crush chooseleaf type = 0``, all before the
mon's mkfs, which writes the CRUSH rule); with ``auth_* = none`` radosgw's mon client loops
on ``get_initial_auth_request returned -13`` unless ``ms mon client mode = crc``; memstore
grows without bound, so the OSD is bluestore on a sparse file.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

HOST = "127.0.0.1"
REGION = "us-east-1"
KEY_ID = "bwc-test-key"  # the same keys as the moto server's (tests/integration/s3.py)
SECRET = "bwc-test-secret"
LOCKED = "bwc-locked"  # bucket name prefixes: fresh_buckets adds a random suffix
PLAIN = "bwc-plain"
TOOLS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "rados", "monmaptool")
START_TIMEOUT = 120.0  # seconds; it takes ~16 s on 2 cores


class RgwError(RuntimeError):
    """The cluster could not be set up: the test fails with this (never skips)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _self_signed(d: Path) -> None:
    """A self-signed certificate for 127.0.0.1 (``tls.crt``, ``tls.key``): radosgw's HTTPS
    endpoint, trusted by the tests through AWS_CA_BUNDLE."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (d / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _conf(
    d: Path, fsid: str, mon_port: int, rgw_port: int, tls_port: int, block_gib: int = 8
) -> str:
    frontends = (
        f"beast endpoint={HOST}:{rgw_port} ssl_endpoint={HOST}:{tls_port} "
        f"ssl_certificate={d}/tls.crt ssl_private_key={d}/tls.key"
    )
    return f"""[global]
fsid = {fsid}
mon host = v2:{HOST}:{mon_port}
public addr = {HOST}
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = {d}/run
admin socket = {d}/run/$name.asok
log file = {d}/log/$name.log
pid file = {d}/run/$name.pid
keyring = {d}/keyring
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = bluestore
bluestore block path = {d}/osd-block
bluestore block create = true
bluestore block size = {block_gib << 30}
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 939524096
osd data = {d}/osd
mon data = {d}/mon

[client]
ms mon client mode = crc

[client.rgw.bwc]
rgw frontends = {frontends}
rgw data = {d}/rgw
rgw enable usage log = false
rgw thread pool size = 64
"""


class Cluster:
    """One single-node Ceph cluster with radosgw; ``url`` is its S3 endpoint."""

    def __init__(self, block_gib: int = 8) -> None:
        """``block_gib``: the OSD's sparse block file (bench/s3.py writes gigabytes that
        COMPLIANCE retention keeps)."""
        self.block_gib = block_gib
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise RgwError(
                f"Ceph is not installed ({', '.join(missing)} missing): run `make test` as "
                "root (it installs them) or: sudo apt-get install --no-install-recommends "
                "ceph-mon ceph-osd radosgw ceph-common"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="bwc-rgw-"))
        self.conf = self.dir / "ceph.conf"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.argv: dict[int, tuple[str, ...]] = {}  # PID: the daemon's own arguments
        self.closed = False
        self.full = False  # set_full
        atexit.register(self.stop)  # also if the process ends while it is starting
        self.port = _free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.tls_port = _free_port()
        self.tls_url = f"https://{HOST}:{self.tls_port}"
        self.ca_bundle = self.dir / "tls.crt"
        self.started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.seconds = time.monotonic() - self.started

    # ------------------------------------------------------------------ bring-up

    def _run(self, *args: str, timeout: float = 60) -> str:
        try:
            out = subprocess.run(
                [*args, "-c", str(self.conf)],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise RgwError(f"{args[0]} {' '.join(args[1:3])} timed out{self._logs()}") from e
        if out.returncode != 0:
            raise RgwError(
                f"{' '.join(args[:3])} failed ({out.returncode}): "
                f"{out.stderr.decode(errors='replace')[-2000:]}{self._logs()}"
            )
        return out.stdout.decode(errors="replace")

    def _daemon(self, *args: str) -> None:
        if self.closed:
            raise RgwError("the test process is ending")
        log = (self.dir / "log" / f"{args[0]}.out").open("ab")  # kept over restarts
        # -f: stays in the foreground, so the PID is the daemon's own and stop() can end it
        p = subprocess.Popen(
            [*args, "-f", "-c", str(self.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(p)
        self.argv[p.pid] = args

    def _start(self) -> None:
        d = self.dir
        for sub in ("run", "log", "mon", "osd", "rgw"):
            (d / sub).mkdir()
        fsid = str(uuid.uuid4())
        mon_port = _free_port()
        _self_signed(d)
        self.conf.write_text(_conf(d, fsid, mon_port, self.port, self.tls_port, self.block_gib))
        monmap = str(d / "monmap")
        subprocess.run(
            ["monmaptool", "--create", "--fsid", fsid, "--addv", "a",
             f"[v2:{HOST}:{mon_port}]", monmap],
            capture_output=True, check=True,
        )  # fmt: skip
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
        self._daemon("ceph-mon", "-i", "a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self._run("ceph", "osd", "new", osd_uuid).strip()
        self._run("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid, timeout=120)
        self._daemon("ceph-osd", "-i", osd_id)
        self._daemon("radosgw", "-n", "client.rgw.bwc")
        self._wait_for_endpoint()
        self._run(
            "radosgw-admin", "user", "create", "--uid", "bwc-test", "--display-name", "bwc test",
            "--access-key", KEY_ID, "--secret-key", SECRET,
        )  # fmt: skip

    def _wait_for_endpoint(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RgwError(
                        f"{self.argv[p.pid][0]} exited with {p.returncode}{self._logs()}"
                    )
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RgwError(f"radosgw did not listen within {START_TIMEOUT:.0f} s{self._logs()}")

    def _logs(self) -> str:
        tails = []
        for f in sorted((self.dir / "log").glob("*")):
            lines = f.read_text(errors="replace").splitlines()[-15:]
            tails.append(f"\n--- {f.name}\n" + "\n".join(lines))
        return "".join(tails)

    # ------------------------------------------------------------------ use and teardown

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )

    # ------------------------------------------------------------------ faults

    def _proc(self, name: str) -> subprocess.Popen[bytes]:
        for p in self.procs:
            if self.argv[p.pid][0] == name:
                return p
        raise RgwError(f"this cluster runs no {name}")

    def kill(self, name: str) -> None:
        """SIGKILL one of this cluster's daemons (``radosgw``, ``ceph-osd``) by its PID, as a
        crash or a power cut would end it; ``restart`` brings it back."""
        p = self._proc(name)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)

    def restart(self, name: str) -> bool:
        """Start a killed daemon again with the same arguments (its data is on disk); False
        if it was running."""
        p = self._proc(name)
        if p.poll() is None:
            return False
        self.procs.remove(p)
        if name == "radosgw":
            self._evict_dead_watchers()
        self._daemon(*self.argv.pop(p.pid))
        if name == "radosgw":
            self._wait_for_endpoint()
        return True

    def _evict_dead_watchers(self) -> None:
        """A killed radosgw leaves its watches on the control objects until the OSD times
        them out (30 s): every metadata write of the next one (a bucket created) waits for
        them. Blocklisting the dead client's address ends them at once."""
        dead: set[str] = set()
        for n in range(8):  # rgw's notify.0 .. notify.7
            out = self._run("rados", "-p", "default.rgw.control", "listwatchers", f"notify.{n}")
            dead |= {w.split("=", 1)[1] for w in out.split() if w.startswith("watcher=")}
        for addr in sorted(dead):
            self._run("ceph", "osd", "blocklist", "add", addr)

    def set_full(self, full: bool) -> bool:
        """Make the OSD count as full (full ratios far below its use) or not (Ceph's
        defaults): a full cluster blocks every write, and RGW answers reads only. False if
        it already was as asked."""
        if full == self.full:
            return False
        self.full = full
        ratios = (("nearfull", 0.0005), ("backfillfull", 0.0008), ("full", 0.001))
        if not full:
            ratios = (("full", 0.95), ("backfillfull", 0.90), ("nearfull", 0.85))
        for which, value in ratios:
            self._run("ceph", "osd", f"set-{which}-ratio", str(value))
        # the OSD reports its state and the mon flags the pools a few seconds later
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pools = [
                line for line in self._run("ceph", "osd", "dump").splitlines()
                if line.startswith("pool ")
            ]  # fmt: skip
            if pools and all((",full " in p or ",full," in p) == full for p in pools):
                return True
            time.sleep(0.5)
        raise RgwError(f"the pools did not become {'full' if full else 'writable'}{self._logs()}")

    def wait_writable(self, timeout: float = 90) -> None:
        """Until a PUT succeeds again (after a fault is undone): the next test gets a
        working cluster, or this one fails saying why."""
        c = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5),
        )
        deadline = time.monotonic() + timeout
        bucket = f"{PLAIN}-probe"
        last: BaseException | None = None
        while time.monotonic() < deadline:
            try:
                c.create_bucket(Bucket=bucket)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") not in (
                    "BucketAlreadyOwnedByYou",
                    "BucketAlreadyExists",
                ):
                    last = e
            except BotoCoreError as e:
                last = e
            try:
                c.put_object(Bucket=bucket, Key="probe", Body=b"probe")
                return
            except (BotoCoreError, ClientError) as e:
                last = e
                time.sleep(0.5)
        raise RgwError(f"RGW does not take writes again: {last}{self._logs()}")

    def fresh_buckets(self) -> tuple[str, str]:
        """Two new buckets: one with Object Lock (so versioned), one plain."""
        tag = secrets.token_hex(4)
        locked, plain = f"{LOCKED}-{tag}", f"{PLAIN}-{tag}"
        c = self.client()
        try:
            c.create_bucket(Bucket=locked, ObjectLockEnabledForBucket=True)
            c.create_bucket(Bucket=plain)
        except (BotoCoreError, ClientError) as e:
            raise RgwError(f"cannot create test buckets on RGW: {e}{self._logs()}") from e
        return locked, plain

    def stop(self) -> None:
        """End the daemons this cluster started (by PID, radosgw first), then remove its
        folder."""
        self.closed = True
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        if os.environ.get("BWC_KEEP_RGW") is None:
            shutil.rmtree(self.dir, ignore_errors=True)


_cluster: Cluster | None = None
_failed: BaseException | None = None
_lock = threading.Lock()


def cluster() -> Cluster:
    """The process's cluster, started on first use or by ``start_early`` (RgwError if it
    cannot start: every test that asks for it fails with the reason)."""
    global _cluster, _failed
    with _lock:
        if _cluster is None:
            if _failed is not None:
                raise RgwError(f"the Ceph RGW test cluster did not start: {_failed}")
            try:
                _cluster = Cluster()
            except BaseException as e:
                _failed = e
                raise
        return _cluster


def start_early() -> None:
    """Start the cluster in the background (it mostly waits on its daemons, ~15 s), so
    that the tests before the first one on RGW hide the wait."""

    def start() -> None:
        try:
            cluster()
        except BaseException:  # recorded in _failed: the tests on RGW fail with it
            return

    threading.Thread(target=start, name="bwc-rgw-start", daemon=True).start()


if __name__ == "__main__":  # `python -m tests.integration.rgw`: start, time, stop
    c = cluster()
    print(f"RGW at {c.url} in {c.seconds:.1f} s ({c.dir})")
    print(c.fresh_buckets())
