"""HTTP behaviour of POST /events and /events/batch: statuses, bodies, limits, encodings."""

from __future__ import annotations

import gzip
import time
from typing import Any

import httpx
import orjson

from tests.api.doubles import RecordingProducer
from weir.stream import StreamFull, StreamUnavailable


def event(**changes: Any) -> dict[str, Any]:
    return {
        "event_name": "signup",
        "channel": "web",
        "user_id": "u1",
        "timestamp": int(time.time()),
        **changes,
    }


async def test_accepted_event_is_sent_with_key_value_and_headers(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    response = await client.post("/events", json=event(tags=["a"]))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted" and len(body["event_id"]) == 32
    [(topic, message)] = producer.sent
    assert topic == "weir.events"
    assert message.key == body["event_id"].encode()
    value = orjson.loads(message.value)
    assert value["event_id"] == body["event_id"] and value["tags"] == ["a"]
    assert dict(message.headers)["event-id"] == message.key


async def test_exact_resend_gets_the_same_id_and_a_change_does_not(
    client: httpx.AsyncClient,
) -> None:
    payload = event()
    first = (await client.post("/events", json=payload)).json()["event_id"]
    again = (await client.post("/events", json=payload)).json()["event_id"]
    other = (await client.post("/events", json=payload | {"user_id": "u2"})).json()["event_id"]
    assert first == again != other


async def test_invalid_event_is_400_naming_the_field(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    response = await client.post("/events", json=event(channel="fax"))
    assert response.status_code == 400
    assert response.json()["error"].startswith("channel: input should be")
    assert producer.sent == []


async def test_malformed_json_and_non_objects_are_400(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    bad = await client.post("/events", content=b"{nope", headers=headers)
    assert bad.status_code == 400 and bad.json()["error"].startswith("body: malformed JSON")
    array = await client.post("/events", content=b"[1]", headers=headers)
    assert array.status_code == 400
    assert array.json()["error"] == "body: must be a JSON object, got an array"


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/events", content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "content-type: expected application/json" in response.json()["error"]
    missing = await client.post("/events", content=orjson.dumps(event()))
    assert missing.status_code == 415


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/events", json=event(metadata={"pad": "x" * 3000}))
    assert response.status_code == 413
    assert response.json()["error"] == "body: larger than the limit of 2048 bytes"


async def test_unavailable_or_full_stream_is_503_with_retry_after(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    for failure in (StreamUnavailable("no ack"), StreamFull("busy")):
        producer.failure = failure
        response = await client.post("/events", json=event())
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"].startswith("kafka: events not stored")


async def test_batch_all_valid_is_202(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    response = await client.post("/events/batch", json=[event(user_id=f"u{i}") for i in range(3)])
    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 3 and body["rejected"] == 0 and len(producer.sent) == 3


async def test_batch_mixed_is_207_with_per_item_results(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    response = await client.post("/events/batch", json=[event(), event(user_id=""), 5])
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[0]["status"] == "accepted"
    assert results[1] == {
        "index": 1,
        "status": "rejected",
        "error": "user_id: string should have at least 1 character",
    }
    assert results[2]["error"] == "body: must be a JSON object, got a number"
    assert len(producer.sent) == 1


async def test_batch_none_valid_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/events/batch", json=[{}, {"event_name": "x"}])
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "batch: no valid events" and body["rejected"] == 2


async def test_batch_ndjson_gzip_with_a_bad_line(client: httpx.AsyncClient) -> None:
    lines = b"\n".join([orjson.dumps(event()), b"{broken", b"", orjson.dumps(event(user_id="b"))])
    response = await client.post(
        "/events/batch",
        content=gzip.compress(lines),
        headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"},
    )
    assert response.status_code == 207
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert results[1]["error"].startswith("line: malformed JSON")


async def test_batch_limits(client: httpx.AsyncClient) -> None:
    too_many = await client.post("/events/batch", json=[event()] * 6)
    assert too_many.status_code == 413 and too_many.json()["error"] == "batch: more than 5 events"
    empty = await client.post("/events/batch", json=[])
    assert empty.status_code == 400
    bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
    inflated = await client.post(
        "/events/batch",
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert inflated.status_code == 413
    not_array = await client.post("/events/batch", json={"a": 1})
    assert not_array.json()["error"] == "body: must be a JSON array of events"
    brotli = await client.post(
        "/events/batch",
        content=b"[]",
        headers={"content-type": "application/json", "content-encoding": "br"},
    )
    assert brotli.status_code == 415


async def test_oversized_item_in_batch_is_rejected_alone(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/events/batch", json=[event(), event(metadata={"pad": "x" * 2100})]
    )
    assert response.status_code == 207
    assert response.json()["results"][1]["error"] == "event: larger than 2048 bytes"


async def test_early_refusals_are_counted_as_rejected(client: httpx.AsyncClient) -> None:
    from prometheus_client import REGISTRY

    def rejected(reason: str) -> float:
        sample = REGISTRY.get_sample_value("weir_events_rejected_total", {"reason": reason})
        return sample or 0.0

    before = rejected("body"), rejected("size"), rejected("line")
    await client.post("/events", content=b"{nope", headers={"content-type": "application/json"})
    lines = b"\n".join([orjson.dumps(event()), b"{broken"])
    await client.post(
        "/events/batch", content=lines, headers={"content-type": "application/x-ndjson"}
    )
    await client.post("/events/batch", json=[event(), event(metadata={"pad": "x" * 2100})])
    after = rejected("body"), rejected("size"), rejected("line")
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


async def test_sent_at_corrects_the_timestamp_and_keeps_the_clients(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    """A device whose clock is a day behind: the stream carries the server-clock time, the
    client's timestamp beside it, and the id the event has without sent_at."""
    now = int(time.time())
    behind = event(timestamp=now - 86400 - 30, sent_at=now - 86400)
    response = await client.post("/events", json=behind)
    assert response.status_code == 202
    [(_, message)] = producer.sent
    value = orjson.loads(message.value)
    assert now - 32 <= value["timestamp"] <= now - 28  # the receive second may tick
    assert value["client_timestamp"] == now - 86400 - 30 and value["sent_at"] == now - 86400
    without = {k: v for k, v in behind.items() if k != "sent_at"}
    resent = await client.post("/events/batch", json=[without | {"timestamp": now - 86400 - 30}])
    assert (
        resent.status_code == 202 and resent.json()["results"][0]["event_id"] == value["event_id"]
    )
    # without sent_at the future is still refused; with it, a corrected future is clamped
    future = await client.post("/events", json=event(timestamp=now + 3600))
    assert future.status_code == 400 and future.json()["error"].startswith("timestamp: must not")
