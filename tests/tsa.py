"""A local RFC 3161 time-stamping authority for the tests: a test CA and a TSA certificate
(extendedKeyUsage critical timeStamping) made with openssl, and `openssl ts -reply` behind a
small http.server handler on 127.0.0.1 (a random port). A second CA with its own TSA signs
the "other-ca" answers. ``mode`` makes it fail on purpose: "500", "garbage" (not a
TimeStampResp), "wrong-imprint" (a valid token over other bytes), "other-ca"; ``down()``
closes the port (connection refused) and ``up()`` opens it again on the same port.
"""

from __future__ import annotations

import http.server
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_EXT = """\
[ext_tsa]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_TSA_CNF = """\
[tsa]
default_tsa = tsa_config1
[tsa_config1]
dir = {dir}
serial = {dir}/serial
crypto_device = builtin
signer_cert = {dir}/tsa.crt
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_authority(d: Path, name: str) -> Path:
    """A CA (``ca.crt``) and a TSA certificate issued by it, with its openssl ts config."""
    d.mkdir(parents=True)
    (d / "ext.cnf").write_text(_EXT)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
         "-subj", f"/CN={name} root", "-addext", "basicConstraints=critical,CA:true",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    _run("req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", f"/CN={name}", cwd=d)
    _run("x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "tsa.crt", "-days", "3650", "-extfile", "ext.cnf",
         "-extensions", "ext_tsa", cwd=d)  # fmt: skip
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(_TSA_CNF.format(dir=d))
    return d


class TestTSA:
    """The running TSA: ``url``, ``ca_file`` (its root, PEM), ``other`` (another CA)."""

    __test__ = False  # not a test class

    def __init__(self, pki: Path) -> None:
        self.pki = pki
        self.ca_file = pki / "main" / "ca.crt"
        self.other_ca_file = pki / "other" / "ca.crt"
        self.mode = "ok"
        self.requests = 0
        self._server: http.server.HTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsa"

    def reply(self, query: bytes) -> tuple[int, bytes]:
        if self.mode == "500":
            return 500, b"internal error"
        if self.mode == "garbage":
            return 200, b"this is not a TimeStampResp"
        authority = self.pki / ("other" if self.mode == "other-ca" else "main")
        with tempfile.TemporaryDirectory() as t:
            q, r = Path(t) / "q.tsq", Path(t) / "r.tsr"
            if self.mode == "wrong-imprint":
                (Path(t) / "other").write_bytes(b"other bytes")
                _run(
                    "ts",
                    "-query",
                    "-data",
                    "other",
                    "-sha256",
                    "-cert",
                    "-out",
                    "q.tsq",
                    cwd=Path(t),
                )
            else:
                q.write_bytes(query)
            _run("ts", "-reply", "-config", str(authority / "tsa.cnf"), "-queryfile", str(q),
                 "-out", str(r), cwd=authority)  # fmt: skip
            return 200, r.read_bytes()

    def up(self) -> None:
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                tsa.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                code, data = tsa.reply(body)
                self.send_response(code)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Configure every bwc of the test (in-process and subprocesses) to use it."""
        monkeypatch.setenv("BWC_TIMESTAMP_TSA_URL", self.url)
        monkeypatch.setenv("BWC_TIMESTAMP_CA_FILE", str(self.ca_file))
        monkeypatch.setenv("BWC_TIMESTAMP_TIMEOUT", "3")


@pytest.fixture(scope="session")
def tsa_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tsa")
    make_authority(d / "main", "bwc test TSA")
    make_authority(d / "other", "another TSA")
    return d


@pytest.fixture
def tsa(tsa_pki: Path) -> Iterator[TestTSA]:
    t = TestTSA(tsa_pki)
    yield t
    t.down()
