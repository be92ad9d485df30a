"""A download whose connection fails after the response began (the server killed, a body cut
short) is the store's error, said as one: `bwc export` and `bwc get` then name the store
and exit 7, never an internal error. The server here is a real HTTP server on loopback that
sends fewer bytes than its Content-Length, to a real botocore client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.session
import pytest

from bwc.errors import StoreError
from bwc.evidence.stores.s3 import S3Store

pytestmark = pytest.mark.integration

_PROMISED = 4 << 20
_SENT = 1 << 20


class _CutShort(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(_PROMISED))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        self.wfile.write(b"\0" * _SENT)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutShort)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_body_cut_short_is_a_store_error(endpoint: str) -> None:
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    store = S3Store("bucket", client=client)  # type: ignore[arg-type]
    sha = "ab" * 32
    f = store.open_object(sha)
    got = 0
    with pytest.raises(StoreError) as e:
        while chunk := f.read(64 << 10):
            got += len(chunk)
    assert got <= _SENT
    msg = str(e.value)
    assert "S3 download of s3://bucket/" in msg and sha in msg, msg
    f.close()
