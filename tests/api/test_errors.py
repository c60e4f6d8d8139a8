"""Error bodies (issue 12): `{"error", "request_id"}` everywhere; a 5xx says what happened in
plain words, never an exception's text, which is logged with the request id instead."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.api.doubles import IdleStore, RecordingProducer
from weir.api import create_app
from weir.core.config import Settings
from weir.store import StoreError
from weir.stream import StreamUnavailable

ENGINE_TEXT = "Code: 62. DB::Exception: Syntax error at weir.events_hour_by_channel_bitmap"
EVENT = {"event_name": "signup", "channel": "web", "user_id": "u1"}


class BrokenStore(IdleStore):
    """A store whose queries fail as an engine does, or with a bug of ours."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: Exception = StoreError(ENGINE_TEXT)

    async def query_rows(self, sql: str, parameters: object = None) -> list[tuple[int, int]]:
        raise self.failure


@pytest.fixture
def broken_store() -> BrokenStore:
    return BrokenStore()


@pytest.fixture
async def http(
    producer: RecordingProducer, broken_store: BrokenStore
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), producer=producer, store=broken_store)  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        # An unexpected exception is answered by the app, then re-raised for the server's log.
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as client:
            yield client


def logged(caplog: pytest.LogCaptureFixture, request_id: str) -> logging.LogRecord:
    [record] = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    return record


def assert_shape(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) >= {"error", "request_id"} and body["error"]
    assert response.headers["x-request-id"] == body["request_id"]
    return str(body["request_id"])


async def test_client_errors_keep_their_message_and_carry_a_request_id(
    http: httpx.AsyncClient,
) -> None:
    invalid = await http.post("/events", json=EVENT | {"timestamp": int(time.time()), "x": 1})
    assert invalid.status_code == 400 and invalid.json()["error"].startswith("x: is not a known")
    missing = await http.get("/metrics")
    assert missing.status_code == 400 and missing.json()["error"] == "event_name: is required"
    unknown = await http.get("/nope")
    wrong_method = await http.get("/events")
    media = await http.post("/events", content=b"{}", headers={"content-type": "text/plain"})
    assert [unknown.status_code, wrong_method.status_code, media.status_code] == [404, 405, 415]
    ids = {assert_shape(r) for r in (invalid, missing, unknown, wrong_method, media)}
    assert len(ids) == 5  # one per request


async def test_a_callers_request_id_is_kept_when_it_is_a_plain_token(
    http: httpx.AsyncClient,
) -> None:
    given = await http.get("/nope", headers={"x-request-id": "lb-7f3a.42"})
    assert assert_shape(given) == "lb-7f3a.42"
    for hostile in (b"a b", b"x" * 129, b'"}{', "é".encode()):
        response = await http.get("/nope", headers={"x-request-id": hostile})
        assert assert_shape(response).encode() != hostile


async def test_503s_say_what_happened_and_log_the_detail_with_the_request_id(
    http: httpx.AsyncClient,
    producer: RecordingProducer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="weir.api.errors")
    query = await http.get("/metrics", params={"event_name": "signup"})
    assert query.status_code == 503 and query.headers["retry-after"] == "1"
    assert query.json()["error"] == "clickhouse: the query failed, retry later"
    assert "DB::Exception" not in query.text and "weir.events" not in query.text
    record = logged(caplog, assert_shape(query))
    assert ENGINE_TEXT in record.detail and record.status == 503  # type: ignore[attr-defined]
    producer.failure = StreamUnavailable("Kafka unavailable: KafkaConnectionError('10.0.0.7')")
    post = await http.post("/events", json=EVENT | {"timestamp": int(time.time())})
    assert post.status_code == 503 and "10.0.0.7" not in post.text
    assert post.json()["error"] == "kafka: events not stored (no ack), retry later"
    assert "10.0.0.7" in logged(caplog, assert_shape(post)).detail  # type: ignore[attr-defined]
    ready = await http.get("/ready")
    assert ready.status_code == 503 and ready.json()["failed"] == ["kafka"]
    assert "10.0.0.7" not in ready.text
    assert "10.0.0.7" in logged(caplog, assert_shape(ready)).detail  # type: ignore[attr-defined]


async def test_an_unexpected_error_is_a_plain_500_logged_with_its_traceback(
    http: httpx.AsyncClient, broken_store: BrokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    broken_store.failure = KeyError("internal column map")
    response = await http.get("/metrics", params={"event_name": "signup"})
    assert response.status_code == 500
    assert response.json()["error"] == "internal error: the request failed, retry later"
    assert "column map" not in response.text
    record = logged(caplog, assert_shape(response))
    assert record.exc_info is not None and record.exc_info[0] is KeyError
