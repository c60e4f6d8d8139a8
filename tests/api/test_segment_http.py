"""POST /v1/track and /v1/batch: the Segment mapping, its refusals (naming the Segment field),
keys as the HTTP Basic user, and the routes in the OpenAPI document. Producer double; the real
SDKs against the real broker are in test_segment_sdks.py."""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from tests.api.doubles import IdleStore, RecordingProducer
from tests.api.test_auth import KEYS, READ, WRITE, basic
from weir.api import create_app
from weir.core.config import Settings


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def track(**changes: Any) -> dict[str, Any]:
    body = {
        "type": "track",
        "event": "signup",
        "userId": "u1",
        "messageId": "m-1",
        "timestamp": iso(time.time() - 10),
        "properties": {"plan": "pro"},
        "context": {"library": {"name": "analytics-python"}, "channel": "web"},
        "integrations": {},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def sent(producer: RecordingProducer) -> list[dict[str, Any]]:
    return [orjson.loads(message.value) for _, message in producer.sent]


async def test_track_is_mapped_onto_an_event(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    now = time.time()
    response = await client.post("/v1/track", json=track(timestamp=iso(now - 10.7)))
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "event_id": "m-1"}
    [value] = sent(producer)
    assert value["event_id"] == "m-1" and value["event_name"] == "signup"
    assert value["user_id"] == "u1" and value["channel"] == "web"
    assert value["metadata"] == {"plan": "pro"} and value["timestamp"] == int(now - 10.7)
    assert value["sent_at"] is None and value["client_timestamp"] is None


async def test_batch_uses_the_batch_sent_at_and_context_and_the_default_channel(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    now = int(time.time())
    skewed = now + 7200  # the device's clock is two hours ahead
    messages = [
        track(messageId="a", timestamp=iso(skewed - 60), context=...),
        track(messageId="b", userId=None, anonymousId="anon-1", context={"channel": "push"}),
        track(messageId="c", timestamp=..., sentAt=iso(skewed)),  # happened when sent
    ]
    body = {"batch": messages, "sentAt": iso(skewed), "context": {"channel": "mobile"}}
    response = await client.post("/v1/batch", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3 and response.json()["success"] is True
    a, b, c = sent(producer)
    assert a["channel"] == "mobile" and now - 62 <= a["timestamp"] <= now - 58
    assert a["client_timestamp"] == skewed - 60
    assert b["user_id"] == "anon-1" and b["channel"] == "push"
    assert now - 2 <= c["timestamp"] <= now + 2
    plain = await client.post("/v1/batch", json={"batch": [track(messageId="d", context=...)]})
    assert plain.status_code == 200 and sent(producer)[-1]["channel"] == "api"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (track(event=...), "event: is required"),
        (track(event=""), "event: string should have at least 1 character"),
        (track(userId=...), "userId: is required (or anonymousId)"),
        (track(userId="u" * 129), "userId: string should have at most 128 characters"),
        (track(messageId=""), "messageId: string should have at least 1 character"),
        (track(timestamp="yesterday"), "timestamp: 'yesterday' is not an ISO-8601 date-time"),
        (track(timestamp=1700000000), "timestamp: must be an ISO-8601 date-time string"),
        (track(timestamp=iso(time.time() + 3600)), "timestamp: must not be more than 60 s in"),
        (track(sentAt="soon"), "sentAt: 'soon' is not an ISO-8601 date-time"),
        (track(context={"channel": "fax"}), "context.channel: input should be 'web'"),
        (track(context="web"), "context: must be a JSON object"),
        (track(properties=[1]), "properties: input should be a valid dictionary"),
        (track(type="identify"), "type: 'identify' is not supported (only track)"),
        ([track()], "message: must be a JSON object"),
    ],
)
async def test_a_message_that_cannot_be_an_event_is_refused_naming_the_segment_field(
    client: httpx.AsyncClient, producer: RecordingProducer, message: Any, error: str
) -> None:
    single = await client.post("/v1/track", json=message)
    assert single.status_code == 400 and single.json()["error"].startswith(error), single.text
    mixed = await client.post("/v1/batch", json={"batch": [message, track(messageId="ok")]})
    assert mixed.status_code == 200, mixed.text
    rejected, accepted = mixed.json()["results"]
    assert rejected["status"] == "rejected" and rejected["error"].startswith(error)
    assert accepted == {"index": 1, "status": "accepted", "event_id": "ok"}
    assert [v["event_id"] for v in sent(producer)] == ["ok"]  # nothing else was written


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ([track()], 400, "batch: must be an array of messages in a JSON object"),
        ({"batch": "x"}, 400, "batch: must be an array of messages"),
        ({"batch": []}, 400, "batch: must contain at least one message"),
        ({"batch": [track(event=...)]}, 400, "batch: no valid messages"),
        ({"batch": [track(messageId=str(n)) for n in range(6)]}, 413, "batch: more than 5"),
    ],
)
async def test_batch_shape_refusals(
    client: httpx.AsyncClient, producer: RecordingProducer, body: Any, status: int, error: str
) -> None:
    response = await client.post("/v1/batch", json=body)
    assert response.status_code == status and response.json()["error"].startswith(error)
    assert producer.sent == []


async def test_bodies_as_the_sdks_send_them(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    data = orjson.dumps({"batch": [track()], "writeKey": "ignored"})
    gzipped = await client.post(
        "/v1/batch",
        content=gzip.compress(data),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert gzipped.status_code == 200, gzipped.text
    text = await client.post("/v1/track", content=orjson.dumps(track()), headers={
        "content-type": "text/plain"})  # fmt: skip
    assert text.status_code == 200
    xml = await client.post("/v1/track", content=b"<x/>", headers={"content-type": "text/xml"})
    assert xml.status_code == 415
    broken = await client.post("/v1/track", content=b"{", headers={"content-type": "text/plain"})
    assert broken.status_code == 400 and broken.json()["error"].startswith("body: malformed JSON")
    assert len(producer.sent) == 2


@pytest.fixture
async def keyed(producer: RecordingProducer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(api_keys=KEYS), producer=producer, store=IdleStore())  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


async def test_the_write_key_as_the_basic_user(
    keyed: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    assert (await keyed.post("/v1/track", json=track())).status_code == 401
    assert (await keyed.post("/v1/track", json=track(), headers=basic(READ))).status_code == 403
    ok = await keyed.post("/v1/batch", json={"batch": [track()]}, headers=basic(WRITE))
    assert ok.status_code == 200 and len(producer.sent) == 1


async def test_openapi_documents_the_segment_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/v1/track", "/v1/batch"):
        operation = paths[path]["post"]
        assert operation["tags"] == ["segment"] and "200" in operation["responses"]
        assert "application/json" in operation["requestBody"]["content"]
