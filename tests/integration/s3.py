"""An S3 server for the integration tests: moto's ThreadedMotoServer on 127.0.0.1 and a free
port, started once per test process, with two buckets: ``bwc-locked`` (created with Object
Lock, so versioned) and ``bwc-plain`` (no Object Lock, no versioning). Test modules import the
fixtures ``s3_fixture`` / ``s3_plain_fixture`` (named ``s3`` / ``s3_plain``). Every test works
under its own random prefix, so tests never see each other's objects.

A test runs on a real Ceph RGW as well (tests/integration/rgw.py, fresh buckets) with
``@pytest.mark.parametrize("s3", ["moto", "rgw"], indirect=True)``; tests that stop the
server or switch its authentication (``S3Env.server``) are moto's only.

The server runs in this process: stopping and starting it again on the same port keeps its
contents, which the fault tests use to cut the store in the middle of an upload.
"""

from __future__ import annotations

import atexit
import logging
import secrets
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tests.integration import rgw

HOST = "127.0.0.1"
LOCKED = "bwc-locked"
PLAIN = "bwc-plain"
REGION = "us-east-1"
KEY_ID = "bwc-test-key"
SECRET = "bwc-test-secret"


class Server:
    def __init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._srv = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        self._srv.start()
        self.port = self._srv.get_host_and_port()[1]
        self.url = f"http://{HOST}:{self.port}"
        self.running = True
        c = client(self.url)
        c.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
        c.create_bucket(Bucket=PLAIN)

    def stop(self) -> None:
        """Stop serving and close the port (connections are refused until ``start``)."""
        if self.running:
            self._srv.stop()
            server = self._srv._server
            if server is not None:
                server.server_close()
            self.running = False

    def start(self) -> None:
        if not self.running:
            self._srv = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
            self._srv.start()
            self.running = True

    def require_auth(self, on: bool) -> None:
        """Make moto check credentials (only keys it issued pass), or stop checking."""
        req = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=b"0" if on else b"inf",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


_server: Server | None = None


def server() -> Server:
    """The process's moto server, started on first use."""
    global _server
    if _server is None:
        _server = Server()
        atexit.register(_server.stop)
    _server.start()
    return _server


def client(url: str) -> Any:
    """A plain boto3 client (the tests' own, to look at or tamper with the bucket)."""
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


@dataclass
class S3Env:
    endpoint: str
    bucket: str
    prefix: str
    moto: Server | None = None

    @property
    def server(self) -> Server:
        """The moto server, for tests that stop it or switch its authentication."""
        if self.moto is None:
            raise RuntimeError("this test controls the moto server: run it on moto only")
        return self.moto

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def client(self) -> Any:
        return client(self.endpoint)

    def key(self, sha256: str, suffix: str = "") -> str:
        return f"{self.prefix}/objects/{sha256[:2]}/{sha256}{suffix}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    """The standard AWS variables pointing at the test server, and nothing from ~/.aws."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lock: bool
) -> S3Env:
    prefix = f"t-{secrets.token_hex(6)}"
    if getattr(request, "param", "moto") == "rgw":
        ceph = rgw.cluster()
        locked, plain = ceph.fresh_buckets()
        env = S3Env(ceph.url, locked if lock else plain, prefix)
    else:
        srv = server()
        env = S3Env(srv.url, LOCKED if lock else PLAIN, prefix, srv)
    aws_env(monkeypatch, tmp_path, env.endpoint)
    monkeypatch.setenv("BWC_STORE", env.url)
    return env


@pytest.fixture(name="s3")
def s3_fixture(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[S3Env]:
    """A fresh prefix in the Object Lock bucket (moto's, or a fresh one on RGW with
    ``indirect`` "rgw"); AWS_* and BWC_STORE set for the CLI."""
    env = _env(request, monkeypatch, tmp_path, lock=True)
    yield env
    if env.moto is not None:
        env.moto.start()  # a fault test may have left it stopped
        env.moto.require_auth(False)


@pytest.fixture(name="s3_plain")
def s3_plain_fixture(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[S3Env]:
    """Like ``s3``, in a bucket without Object Lock and without versioning."""
    env = _env(request, monkeypatch, tmp_path, lock=False)
    yield env
    if env.moto is not None:
        env.moto.start()


# A test on both servers: moto and a real Ceph RGW (docs/s3.md lists where they differ).
on_both = pytest.mark.parametrize("s3", ["moto", "rgw"], indirect=True)
plain_on_both = pytest.mark.parametrize("s3_plain", ["moto", "rgw"], indirect=True)
