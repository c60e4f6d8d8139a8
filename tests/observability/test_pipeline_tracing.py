"""One event through real parts (API in-process -> Kafka broker -> ConsumerLoop -> chDB), traced.

The request's trace must reach the stored row: server and producer spans share a trace id, the
consumer's flush and insert spans link to the producer span, and the row's trace_id equals it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from tests.harness.kafka import TopicFactory
from weir.api import create_app
from weir.consumer.runner import ConsumerLoop
from weir.core.config import Settings, StoreBackend
from weir.store import TableSpec, migrate
from weir.store.chdb import ChdbStore
from weir.stream import make_producer


@pytest.fixture
async def settings(
    kafka_settings: Settings, kafka_topic: TopicFactory, weir_data_dir: Path
) -> Settings:
    run = uuid.uuid4().hex[:10]
    return kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=1),
            "kafka_dlq_topic": await kafka_topic(partitions=1),
            "kafka_consumer_group": f"weir-otel-{run}",
            "store_backend": StoreBackend.CHDB,
            "data_dir": weir_data_dir,
            "clickhouse_database": f"otel_{run}",
            "batch_max_seconds": 0.2,
            "metrics_port": 0,
        }
    )


@pytest.fixture
async def api(settings: Settings, chdb_store: ChdbStore) -> AsyncIterator[httpx.AsyncClient]:
    await migrate(chdb_store, TableSpec.from_settings(settings))
    async with LifespanManager(create_app(settings, store=chdb_store)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


async def consume_until_stored(settings: Settings, store: ChdbStore, event_id: str) -> str:
    """Run a ConsumerLoop until the event's row is stored; return the row's trace_id."""
    spec = TableSpec.from_settings(settings)
    dlq = make_producer(settings)
    await dlq.start()

    loop = ConsumerLoop.from_settings(settings, store, spec, dlq)
    task = asyncio.create_task(loop.run())
    sql = f"SELECT trace_id FROM {spec.database}.{spec.table} WHERE event_id = {{id:String}}"
    try:
        deadline = time.monotonic() + 60
        while not (rows := await store.query_rows(sql, {"id": event_id})):
            assert time.monotonic() < deadline, "the event was never stored"
            assert not task.done(), task
            await asyncio.sleep(0.2)
        return str(rows[0][0])
    finally:
        loop.stop()
        await task
        await dlq.stop()


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, (name, [span.name for span in spans])
    return found[0]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_request_trace_reaches_the_stored_row(
    api: httpx.AsyncClient, settings: Settings, chdb_store: ChdbStore, spans: InMemorySpanExporter
) -> None:
    inserted_before = counter("weir_consumer_rows_inserted_total")
    accepted_before = counter("weir_events_accepted_total")
    now = int(time.time())
    event = {"event_name": "signup", "channel": "web", "user_id": "u-1", "timestamp": now}
    response = await api.post("/events", json=event)
    assert response.status_code == 202, response.text
    assert (await api.get("/health")).status_code == 200

    row_trace_id = await consume_until_stored(settings, chdb_store, response.json()["event_id"])

    finished = list(spans.get_finished_spans())
    server = one(finished, "POST /events")
    producer = one(finished, f"send {settings.kafka_topic}")
    flush = one(finished, "weir.consumer.flush")
    insert = one(finished, "clickhouse insert")
    assert server.kind == SpanKind.SERVER and producer.kind == SpanKind.PRODUCER
    assert server.context is not None and producer.context is not None
    assert producer.context.trace_id == server.context.trace_id
    assert producer.parent is not None and producer.parent.trace_id == server.context.trace_id
    assert flush.context is not None and insert.parent is not None
    assert insert.parent.span_id == flush.context.span_id  # insert is a child of the flush
    for consumer_span in (flush, insert):
        linked = {(link.context.trace_id, link.context.span_id) for link in consumer_span.links}
        assert linked == {(producer.context.trace_id, producer.context.span_id)}
    assert row_trace_id == format(server.context.trace_id, "032x")
    # Probes are not traced.
    assert not [s for s in finished if "/health" in s.name]

    assert counter("weir_consumer_rows_inserted_total") == inserted_before + 1
    assert counter("weir_events_accepted_total") == accepted_before + 1
    assert counter("weir_http_requests_total", route="/health", method="GET", status="200") >= 1
