"""The API against the real local Kafka broker: what a 202 promises, and the 503 path."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from tests.api.doubles import IdleStore
from tests.harness.kafka import KafkaBroker, TopicFactory
from weir.api import create_app
from weir.core.config import Settings
from weir.stream import Record, make_consumer


def event(**changes: Any) -> dict[str, Any]:
    return {
        "event_name": "purchase",
        "channel": "mobile",
        "user_id": "u1",
        "timestamp": int(time.time()),
        **changes,
    }


@pytest.fixture
async def topic(kafka_topic: TopicFactory) -> str:
    return await kafka_topic(partitions=3)


@pytest.fixture
async def api(kafka_settings: Settings, topic: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = kafka_settings.model_copy(update={"kafka_topic": topic})
    app = create_app(settings, store=IdleStore())  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


async def read_topic(settings: Settings, topic: str, expected: int) -> list[Record]:
    consumer = make_consumer(settings, topic=topic, group=f"reader-{time.monotonic_ns()}")
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + 20
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        # One more poll: anything beyond `expected` would be a duplicate or a stray write.
        for batch in (await consumer.getmany(timeout_ms=1000)).values():
            records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def test_a_202_event_is_on_the_topic_with_key_value_and_headers(
    api: httpx.AsyncClient, kafka_settings: Settings, topic: str
) -> None:
    response = await api.post("/events", json=event(tags=["x"], metadata={"sku": 7}))
    assert response.status_code == 202
    event_id = response.json()["event_id"]
    [record] = await read_topic(kafka_settings, topic, expected=1)
    assert record.key == event_id.encode()
    value = orjson.loads(record.value)
    assert value["event_id"] == event_id and value["metadata"] == {"sku": 7}
    assert value["user_id"] == "u1" and isinstance(value["received_at"], int)
    headers = dict(record.headers)
    assert headers["content-type"] == b"application/json"
    assert headers["event-id"] == event_id.encode() and headers["weir-schema"] == b"1"


async def test_batch_with_invalid_items_writes_only_the_valid_ones(
    api: httpx.AsyncClient, kafka_settings: Settings, topic: str
) -> None:
    items = [event(user_id="a"), event(channel="fax"), event(user_id="b"), {"nope": 1}]
    response = await api.post("/events/batch", json=items)
    assert response.status_code == 207
    accepted = {r["event_id"] for r in response.json()["results"] if r["status"] == "accepted"}
    assert len(accepted) == 2
    records = await read_topic(kafka_settings, topic, expected=2)
    assert {r.key.decode() for r in records if r.key} == accepted and len(records) == 2


async def test_duplicates_of_an_event_share_a_partition(
    api: httpx.AsyncClient, kafka_settings: Settings, topic: str
) -> None:
    for _ in range(3):
        assert (await api.post("/events", json=event(event_id="order-9"))).status_code == 202
    records = await read_topic(kafka_settings, topic, expected=3)
    assert len({r.partition for r in records}) == 1 and len(records) == 3


async def test_broker_down_gives_a_bounded_503_and_no_false_accept(
    api: httpx.AsyncClient, kafka_settings: Settings, kafka_broker: KafkaBroker, topic: str
) -> None:
    accepted: set[str] = set()
    first = await api.post("/events", json=event(user_id="before"))
    accepted.add(first.json()["event_id"])
    kafka_broker.stop()
    try:
        for attempt in range(3):
            started = time.monotonic()
            response = await api.post("/events", json=event(user_id=f"during-{attempt}"))
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert elapsed < 2.5, f"503 took {elapsed:.2f}s (bound: 2 s)"
    finally:
        kafka_broker.start()
    # Once the broker is back the API recovers on its own and what it accepted is all there.
    deadline = time.monotonic() + 30
    while True:
        response = await api.post("/events", json=event(user_id="after"))
        if response.status_code == 202 or time.monotonic() > deadline:
            break
    assert response.status_code == 202
    accepted.add(response.json()["event_id"])
    stored = {r.key.decode() for r in await read_topic(kafka_settings, topic, expected=2) if r.key}
    assert accepted <= stored
