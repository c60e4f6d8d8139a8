"""Kafka readiness from a process that holds no producer (the api's supervisor): a fresh client
per check, so a stale connection or cached metadata never hides a broker that went away."""

from __future__ import annotations

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError

from weir.core.config import Settings
from weir.stream.base import StreamUnavailable
from weir.stream.kafka.config import client_options


async def ping_brokers(settings: Settings, topic: str | None = None) -> None:
    """Raise StreamUnavailable unless a bootstrap server answers a metadata request (and that
    metadata lists `topic`). The caller bounds the time it may take."""
    client = AIOKafkaClient(**client_options(settings))
    try:
        await client.bootstrap()
        cluster = await client.fetch_all_metadata()  # bootstrap's lists no topic
        if topic is not None and not cluster.partitions_for_topic(topic):
            raise StreamUnavailable(f"topic {topic!r} does not exist")
    except (KafkaError, OSError) as error:
        raise StreamUnavailable(f"Kafka did not answer: {error!r}") from error
    finally:
        await client.close()
