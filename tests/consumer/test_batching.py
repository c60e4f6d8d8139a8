"""Batches under lag: while one flush runs, the next batch keeps filling past the age limit, so
what arrived during a slow insert is stored in one insert, not cut into age-sized pieces queued
behind it. Real broker, real engine; only the first insert is held back, to make a flush slow."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.consumer.test_store_outage import messages
from tests.harness.kafka import TopicFactory
from weir.consumer.runner import ConsumerLoop
from weir.core.config import Settings, StoreBackend
from weir.store import TableSpec, migrate
from weir.store.base import Parameters, SettingsMap
from weir.store.chdb import ChdbStore
from weir.stream import make_producer

SLOW_FIRST_INSERT_SECONDS = 2.0


class SlowFirstInsert:
    """The chDB store, except that its first insert into `table` waits before it runs; records
    the row count of every insert into `table`."""

    def __init__(self, store: ChdbStore, table: str) -> None:
        self.store, self.table = store, table
        self.max_lookup_ids = store.max_lookup_ids
        self.inserted: list[int] = []
        self.first_began = asyncio.Event()

    async def command(self, sql: str, settings: SettingsMap | None = None) -> None:
        await self.store.command(sql, settings)

    async def query_rows(
        self, sql: str, parameters: Parameters | None = None
    ) -> list[tuple[Any, ...]]:
        return await self.store.query_rows(sql, parameters)

    async def insert(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        settings: SettingsMap | None = None,
    ) -> None:
        if table == self.table and not self.first_began.is_set():
            self.first_began.set()
            await asyncio.sleep(SLOW_FIRST_INSERT_SECONDS)
        await self.store.insert(table, columns, data, settings)
        if table == self.table:
            self.inserted.append(len(data[0]))

    async def ping(self) -> bool:
        return await self.store.ping()

    async def close(self) -> None:
        await self.store.close()


async def test_batch_keeps_filling_while_a_flush_is_in_flight(
    kafka_settings: Settings, kafka_topic: TopicFactory, weir_data_dir: Path, chdb_store: ChdbStore
) -> None:
    run = uuid.uuid4().hex[:10]
    settings = kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=2),
            "kafka_dlq_topic": await kafka_topic(partitions=1),
            "kafka_consumer_group": f"batching-{run}",
            "store_backend": StoreBackend.CHDB,
            "data_dir": weir_data_dir,
            "clickhouse_database": f"batching_{run}",
            "batch_max_seconds": 0.2,
        }
    )
    spec = TableSpec.from_settings(settings)
    await migrate(chdb_store, spec)
    store = SlowFirstInsert(chdb_store, spec.raw_ref)
    producer = make_producer(settings)
    await producer.start()
    events = messages(40, int(time.time()))
    loop = ConsumerLoop.from_settings(settings, store, spec, producer)
    task = asyncio.create_task(loop.run())
    try:
        await producer.send(settings.kafka_topic, events[:10])
        await asyncio.wait_for(store.first_began.wait(), 30)
        # Three waves while the first insert is held: each older than the age limit before the
        # flush in flight ends, none a reason to cut a batch of its own.
        for wave in range(3):
            await producer.send(settings.kafka_topic, events[10 + wave * 10 : 20 + wave * 10])
            await asyncio.sleep(0.4)
        deadline = time.monotonic() + 30
        while sum(store.inserted) < len(events):
            assert time.monotonic() < deadline, store.inserted
            assert not task.done(), task
            await asyncio.sleep(0.1)
    finally:
        loop.stop()
        await task
        await producer.stop()
    assert store.inserted == [10, 30], "what arrived during the slow flush is one batch"
