"""`weir migrate`: create or migrate the ClickHouse schema and the Kafka topics, idempotently;
`weir erase-user`: erase a user's events from the store.

The migration owner for installs without the operator (the chart's migrate Job); with it,
`Topic` and `Table` resources do the same through the same functions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

from weir.core.config import Settings, StreamBackend
from weir.parts import migrate_schema
from weir.store import TableSpec, erase_users, make_store
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


def erase(settings: Settings, argv: list[str]) -> int:
    """`weir erase-user USER_ID...`: the users' events out of the raw table and every rollup,
    all in one pass (`weir.store.erase_users`); prints one JSON line per user, then one with the
    totals. The same as `DELETE /users/{user_id}/events` for each."""
    parser = argparse.ArgumentParser(
        prog="weir erase-user", description="Delete every stored event of each user_id."
    )
    parser.add_argument("user_ids", nargs="+", metavar="USER_ID")
    args = parser.parse_args(argv)

    async def run() -> None:
        store = make_store(settings)
        try:
            erased = await erase_users(store, TableSpec.from_settings(settings), args.user_ids)
        finally:
            await store.close()
        for user_id in args.user_ids:
            line = {"user_id": user_id, "erased_events": erased.events[user_id]}
            print(json.dumps(line), flush=True)
        total = {"erased_events": erased.total, "rebuilt_hours": erased.hours}
        print(json.dumps(total | {"seconds": round(erased.seconds, 3)}), flush=True)

    asyncio.run(run())
    return 0
