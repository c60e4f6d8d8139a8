"""`weir replay-dlq`: after a fix, re-publish dead letters to the events topic.

Reads the dead-letter topic as its own consumer group, strips the dead-letter headers, produces each
message back with its original key, and commits only what was acknowledged. Stops when it has caught
up with the end of the topic.
"""

from __future__ import annotations

import logging

from weir.consumer.dead_letters import replayable
from weir.core.config import Settings
from weir.stream import make_consumer, make_producer

log = logging.getLogger(__name__)


async def replay_dead_letters(settings: Settings, idle_polls: int = 3) -> int:
    """Returns how many dead letters were re-published."""
    producer = make_producer(settings)
    consumer = make_consumer(
        settings, topic=settings.kafka_dlq_topic, group=f"{settings.kafka_consumer_group}-replay"
    )
    await producer.start()
    await consumer.start()
    replayed, idle = 0, 0
    try:
        while idle < idle_polls:
            polled = await consumer.getmany(timeout_ms=1000, max_records=1000)
            if not polled:
                idle += 1
                continue
            idle = 0
            for partition, records in polled.items():
                await producer.send(settings.kafka_topic, [replayable(r) for r in records])
                await consumer.commit({partition: records[-1].offset + 1})
                replayed += len(records)
    finally:
        await consumer.stop()
        await producer.stop()
    log.info("dead letters replayed", extra={"count": replayed})
    return replayed
