"""Probes, error shapes of unknown routes, and the offline docs."""

from __future__ import annotations

import httpx

from tests.api.conftest import app_client
from tests.api.doubles import IdleStore, RecordingProducer
from tests.harness.clickhouse import free_port
from weir.core.config import Settings
from weir.store.server import ServerStore
from weir.stream import StreamUnavailable


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.json() == {"status": "healthy"}


async def test_ready_names_the_failed_dependency(
    client: httpx.AsyncClient, producer: RecordingProducer, idle_store: IdleStore
) -> None:
    assert (await client.get("/ready")).json() == {"status": "ready"}
    producer.failure = StreamUnavailable("broker down")
    response = await client.get("/ready")
    assert response.status_code == 503 and response.json()["failed"] == ["kafka"]
    assert response.json()["error"] == "kafka: not available" and "broker down" not in response.text
    assert response.json()["request_id"]
    producer.failure = None
    idle_store.healthy = False
    response = await client.get("/ready")
    assert response.status_code == 503 and response.json()["failed"] == ["clickhouse"]


async def test_unknown_route_and_method_are_json_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = await client.get("/events")
    assert wrong.status_code == 405 and "error" in wrong.json()


async def test_docs_are_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "unpkg" not in page.text
    spec = (await client.get("/openapi.json")).json()
    assert "/events/batch" in spec["paths"] and "EventIn" in spec["components"]["schemas"]


async def test_ready_names_clickhouse_when_its_ping_fails(producer: RecordingProducer) -> None:
    """A real store at a closed port: its ping answers False (it does not raise), which is not
    ready either."""
    store = ServerStore(f"http://127.0.0.1:{free_port()}")
    try:
        async with app_client(Settings(), producer, store) as client:
            response = await client.get("/ready")
        assert response.status_code == 503 and response.json()["failed"] == ["clickhouse"]
        assert response.json()["error"] == "clickhouse: not available"
    finally:
        await store.close()
