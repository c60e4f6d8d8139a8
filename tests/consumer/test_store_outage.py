"""ClickHouse goes away under a running consumer: it backs off, keeps the batch, commits nothing,
and stores everything exactly once when ClickHouse returns. Real broker, real engine."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.harness.clickhouse import free_port, start_shim
from tests.harness.kafka import TopicFactory
from weir.consumer.runner import ConsumerLoop
from weir.core.config import Settings, StoreBackend
from weir.core.event import EventIn, StoredEvent
from weir.store import MetricsQuery, TableSpec, make_store, migrate, query_totals
from weir.stream import Message, make_producer


def messages(count: int, now: int) -> list[Message]:
    out = []
    for i in range(count):
        event = EventIn.model_validate(
            {"event_name": "open", "channel": "push", "user_id": f"u{i % 7}", "timestamp": now - i}
        )
        stored = StoredEvent.accept(event, received_at_ms=now * 1000)
        out.append(Message(stored.event_id.encode(), stored.encode()))
    return out


async def test_consumer_rides_out_a_store_outage(
    kafka_settings: Settings, kafka_topic: TopicFactory, tmp_path: Path
) -> None:
    port = free_port()
    url, shim = start_shim(tmp_path / "chdb", port)
    settings = kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=2),
            "kafka_dlq_topic": await kafka_topic(partitions=1),
            "kafka_consumer_group": f"outage-{port}",
            "store_backend": StoreBackend.CLICKHOUSE,
            "clickhouse_url": url,
            "batch_max_seconds": 0.2,
            "insert_backoff_max_seconds": 0.5,
        }
    )
    store, spec = make_store(settings), TableSpec.from_settings(settings)
    await migrate(store, spec)
    shim.terminate()
    shim.wait(timeout=10)

    producer = make_producer(settings)
    await producer.start()
    batch = messages(300, int(time.time()))
    await producer.send(settings.kafka_topic, batch + batch[:50])  # with redelivered copies

    loop = ConsumerLoop.from_settings(settings, store, spec, producer)
    task = asyncio.create_task(loop.run())
    try:
        await asyncio.sleep(4)  # several failed attempts while ClickHouse is down
        assert not task.done(), "the consumer must keep retrying, not crash"
        lag = await loop.consumer.lag()
        assert sum(lag.values()) == 350, f"nothing may be committed during the outage: {lag}"

        url_again, shim = start_shim(tmp_path / "chdb", port)
        assert url_again == url
        deadline = time.monotonic() + 30
        while True:
            totals = await query_totals(store, spec, MetricsQuery("open"))
            if totals.total_events >= 300 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert totals == (300, 7)
        for _ in range(50):  # the commit follows the insert
            if not sum((await loop.consumer.lag()).values()):
                break
            await asyncio.sleep(0.2)
        assert sum((await loop.consumer.lag()).values()) == 0
    finally:
        loop.stop()
        await asyncio.wait_for(task, 30)
        await producer.stop()
        await store.close()
        shim.terminate()
        shim.wait(timeout=10)
