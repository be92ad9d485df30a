"""The S3 store's one retry layer: transient failures (unreachable, 5xx, throttling) are
retried with exponential backoff and full jitter, three attempts for a quick operation and
for up to `retry_seconds` for an upload; anything else fails at once, as one StoreError."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from bwc.config.settings import S3Settings
from bwc.errors import StoreError
from bwc.evidence.stores.s3 import S3Store

pytestmark = pytest.mark.unit


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "HeadObject",
    )


class Flaky:
    """A client whose calls fail with ``errors`` first, then answer."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.meta = type("M", (), {"endpoint_url": "http://127.0.0.1:9"})()

    def list_objects_v2(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {}

    def get_object_lock_configuration(self, **_: Any) -> dict[str, Any]:
        return {}

    def head_object(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ETag": "x"}


def _store(client: Flaky, retry_seconds: float = 30.0) -> tuple[S3Store, list[float]]:
    slept: list[float] = []
    st = S3Store(
        "bucket",
        "p",
        s3=S3Settings(retry_seconds=retry_seconds),
        client=client,  # type: ignore[arg-type]
        sleep=slept.append,
    )
    return st, slept


def test_quick_operations_try_three_times_with_jitter() -> None:
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    client = Flaky([down, _client_error("SlowDown", 503)])
    st, slept = _store(client)
    assert st.has_object("ab" * 32) is True
    assert client.calls == 3 and len(slept) == 2
    assert all(0 <= s <= 5.0 for s in slept)
    client = Flaky([down] * 3)
    st, slept = _store(client)
    with pytest.raises(StoreError, match="cannot reach the S3 endpoint"):
        st.has_object("ab" * 32)
    assert client.calls == 3


def test_backoff_is_jittered() -> None:
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    waits: set[float] = set()
    for _ in range(5):
        client = Flaky([down, down])
        st, slept = _store(client)
        st.has_object("ab" * 32)
        waits.update(slept)
    assert len(waits) > 3  # not the same fixed schedule every time


def test_patient_calls_retry_for_retry_seconds() -> None:
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    client = Flaky([down] * 1000)
    st, slept = _store(client, retry_seconds=0.0)
    with pytest.raises(StoreError):
        st._call("upload", "k", lambda: client.head_object(), patient=True)
    assert client.calls == 1  # no time to wait at all: one attempt
    client = Flaky([down] * 6)
    st, slept = _store(client, retry_seconds=60.0)
    assert st._call("upload", "k", lambda: client.head_object(), patient=True) == {"ETag": "x"}
    assert client.calls == 7 and len(slept) == 6


def test_other_errors_fail_at_once() -> None:
    client = Flaky([_client_error("AccessDenied", 403)])
    st, slept = _store(client)
    with pytest.raises(StoreError, match="AccessDenied"):
        st.has_object("ab" * 32)
    assert client.calls == 1 and slept == []


def test_a_request_never_answered_is_named_and_check_does_not_retry_it() -> None:
    """An RGW whose OSDs are down or full takes a request and never answers: `check` (the
    first request of every command, and `bwc status`) gives up after one timeout and says
    what it means; an upload retries it like any transient failure."""
    hung = ReadTimeoutError(endpoint_url="http://127.0.0.1:9/bucket")
    client = Flaky([hung, hung])
    st, slept = _store(client)
    with pytest.raises(StoreError) as e:
        st.check()
    assert client.calls == 1 and slept == []
    assert "took the request but sent no answer in time (listing of s3://bucket)" in str(e.value)
    assert "may be down or full" in str(e.value)
    client = Flaky([hung, hung])
    st, slept = _store(client)
    assert st.has_object("ab" * 32) is True
    assert client.calls == 3 and len(slept) == 2
