"""`weir migrate`: create or migrate the ClickHouse schema and the Kafka topics, idempotently.

For installs without the operator; with it, `Topic` and `Table` resources do the same through the
same functions.
"""

from __future__ import annotations

import logging

from weir.core.config import Settings, StreamBackend
from weir.store import make_store
from weir.store.schema import TableSpec, migrate
from weir.stream.admin import TopicAdmin

log = logging.getLogger(__name__)


async def provision(settings: Settings) -> None:
    store = make_store(settings)
    try:
        result = await migrate(store, TableSpec.from_settings(settings))
    finally:
        await store.close()
    for statement in result.applied:
        log.info("schema change applied", extra={"statement": statement})
    for reason in result.refused:
        log.warning("schema change refused", extra={"reason": reason})
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
