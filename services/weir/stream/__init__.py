"""The event log: one interface (`base`), two backends (`kafka/`, `local/`), one entry point.

Callers import from `weir.stream` only. `make_producer` / `make_consumer` pick the backend from
Settings, and `ping_log` checks the log's readiness without a producer; the Kafka backend's topic
admin (`TopicAdmin`) serves `weir migrate`, the operator and tests. `StreamBackend.LOCAL` shares
one `LocalLog` per directory in the process (default `settings.data_dir / "stream"`), so
`weir dev`'s API and consumer see the same log.
"""

from __future__ import annotations

from weir.core.config import Settings, StreamBackend
from weir.stream.base import (
    CommitFailed,
    Consumer,
    Delivery,
    Message,
    PlainRecord,
    Producer,
    RebalanceCallback,
    Record,
    StreamError,
    StreamFull,
    StreamUnavailable,
    TopicPartition,
)
from weir.stream.kafka.admin import TopicAdmin, TopicDescription
from weir.stream.local.log import LocalLog

__all__ = [
    "CommitFailed",
    "Consumer",
    "Delivery",
    "LocalLog",
    "Message",
    "PlainRecord",
    "Producer",
    "RebalanceCallback",
    "Record",
    "StreamError",
    "StreamFull",
    "StreamUnavailable",
    "TopicAdmin",
    "TopicDescription",
    "TopicPartition",
    "local_log",
    "make_consumer",
    "make_producer",
    "ping_log",
]


def local_log(settings: Settings) -> LocalLog:
    """The process-wide local log under `settings.data_dir / "stream"`."""
    return LocalLog.open(settings.data_dir / "stream")


def make_producer(settings: Settings) -> Producer:
    if settings.stream_backend is StreamBackend.LOCAL:
        from weir.stream.local.producer import LocalProducer

        return LocalProducer(settings, local_log(settings))
    from weir.stream.kafka.producer import KafkaProducer

    return KafkaProducer(settings)


def make_consumer(
    settings: Settings,
    topic: str,
    group: str,
    on_revoked: RebalanceCallback | None = None,
    on_assigned: RebalanceCallback | None = None,
) -> Consumer:
    if settings.stream_backend is StreamBackend.LOCAL:
        from weir.stream.local.consumer import LocalConsumer

        return LocalConsumer(settings, local_log(settings), topic, group, on_revoked, on_assigned)
    from weir.stream.kafka.consumer import KafkaConsumer

    return KafkaConsumer(settings, topic, group, on_revoked, on_assigned)


async def ping_log(settings: Settings, topic: str | None = None) -> None:
    """Readiness of the log from a process that holds no producer (the api's status port): raise
    StreamUnavailable unless it answers (and `topic` exists). The caller bounds the time."""
    if settings.stream_backend is StreamBackend.LOCAL:
        await make_producer(settings).ping(topic=topic)  # a directory check: nothing to start
        return
    from weir.stream.kafka.probe import ping_brokers

    await ping_brokers(settings, topic)
