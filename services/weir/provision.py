"""`weir migrate`: create or migrate the ClickHouse schema and the Kafka topics, idempotently.

The migration owner for installs without the operator (the chart's migrate Job); with it,
`Topic` and `Table` resources do the same through the same functions.
"""

from __future__ import annotations

import logging

from weir.core.config import Settings, StreamBackend
from weir.parts import migrate_schema
from weir.store import TableSpec, make_store
from weir.stream import TopicAdmin

log = logging.getLogger(__name__)


async def provision(settings: Settings) -> None:
    store = make_store(settings)
    try:
        await migrate_schema(store, TableSpec.from_settings(settings))
    finally:
        await store.close()
    if settings.stream_backend is not StreamBackend.KAFKA:
        return
    async with TopicAdmin(settings) as admin:
        for topic in (settings.kafka_topic, settings.kafka_dlq_topic):
            await admin.ensure_topic(
                topic,
                partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_topic_replication_factor,
            )
            log.info("topic ready", extra={"topic": topic})
