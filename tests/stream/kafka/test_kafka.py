"""The stream contract on a real Kafka broker, plus the failure modes only Kafka has."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter

import pytest
from aiokafka import AIOKafkaProducer

from tests.harness.kafka import KafkaBroker, TopicFactory, free_port
from tests.stream.contract import StreamContract, eventually
from weir.core.config import Settings
from weir.stream import (
    Consumer,
    Message,
    Producer,
    RebalanceCallback,
    Record,
    StreamUnavailable,
    make_consumer,
    make_producer,
)

BOUND_SECONDS = 2.0  # Settings.produce_timeout_seconds: the API's 503 deadline
SLACK_SECONDS = 0.5


class KafkaBackend:
    def __init__(self, settings: Settings, topics: TopicFactory) -> None:
        self.settings = settings
        self._topics = topics

    async def topic(self, partitions: int) -> str:
        return await self._topics(partitions)

    def producer(self, max_pending: int | None = None) -> Producer:
        if max_pending is None:
            return make_producer(self.settings)
        settings = self.settings.model_copy(update={"producer_max_pending": max_pending})
        return make_producer(settings)

    def consumer(
        self,
        topic: str,
        group: str,
        on_revoked: RebalanceCallback | None = None,
        on_assigned: RebalanceCallback | None = None,
    ) -> Consumer:
        return make_consumer(self.settings, topic, group, on_revoked, on_assigned)


@pytest.fixture
def backend(kafka_settings: Settings, kafka_topic: TopicFactory) -> KafkaBackend:
    return KafkaBackend(kafka_settings, kafka_topic)


class TestKafkaStream(StreamContract):
    pass


async def test_outage_is_answered_within_the_bound_and_no_accepted_message_is_lost(
    kafka_broker: KafkaBroker,
    kafka_settings: Settings,
    kafka_topic: TopicFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = await kafka_topic(3)
    producer = make_producer(kafka_settings)
    await producer.start()
    loop = asyncio.get_running_loop()
    accepted: list[bytes] = []
    rejected: list[bytes] = []
    durations: list[float] = []
    done = asyncio.Event()

    async def client(number: int) -> None:
        for attempt in itertools.count():
            if done.is_set():
                return
            batch = [Message(f"c{number}-{attempt}-{i}".encode(), b"v") for i in range(5)]
            started = loop.time()
            try:
                await producer.send(topic, batch, timeout=BOUND_SECONDS)
                accepted.extend(m.key or b"" for m in batch)
            except StreamUnavailable:
                rejected.extend(m.key or b"" for m in batch)
            durations.append(loop.time() - started)
            await asyncio.sleep(0.01)

    clients = [asyncio.create_task(client(n)) for n in range(8)]
    await asyncio.sleep(0.5)
    accepted_before_outage = len(accepted)
    await asyncio.to_thread(kafka_broker.stop)
    try:
        started = loop.time()
        with pytest.raises(StreamUnavailable):
            await producer.ping(timeout=1.0)
        assert loop.time() - started <= 1.0 + SLACK_SECONDS
        await asyncio.sleep(BOUND_SECONDS + 1)
        assert rejected, "sends during the outage must fail"
    finally:
        await asyncio.to_thread(kafka_broker.start)
    rejected_during_outage = len(rejected)
    await eventually(lambda: len(accepted) > accepted_before_outage + 100, within=30)
    done.set()
    await asyncio.gather(*clients)
    await producer.stop()

    assert max(durations) <= BOUND_SECONDS + SLACK_SECONDS
    assert rejected_during_outage > 0
    written = Counter(r.key for r in await _read_all(kafka_settings, topic, set(accepted)))
    assert all(written[key] == 1 for key in accepted), "an accepted message is missing"
    assert max(written.values()) == 1, "a retry was written twice"
    # Reconnects are paced (~10/s), not a busy loop (thousands/s) starving the event loop.
    reconnects = [r for r in caplog.records if r.getMessage().startswith("Unable connect")]
    assert len(reconnects) < 500


async def test_idempotent_producer_writes_each_message_once(
    kafka_settings: Settings, kafka_topic: TopicFactory
) -> None:
    topic = await kafka_topic(3)
    producer = make_producer(kafka_settings)
    await producer.start()
    batches = [[Message(f"{b}-{i}".encode(), b"v") for i in range(250)] for b in range(20)]
    results = await asyncio.gather(*(producer.send(topic, batch) for batch in batches))
    await producer.stop()
    assert sum(len(r) for r in results) == 5000
    keys = {m.key or b"" for batch in batches for m in batch}
    written = Counter(r.key for r in await _read_all(kafka_settings, topic, keys))
    assert len(written) == 5000 and set(written.values()) == {1}


async def test_unknown_topic_is_unavailable_within_the_bound(kafka_settings: Settings) -> None:
    producer = make_producer(kafka_settings)
    await producer.start()
    started = asyncio.get_running_loop().time()
    with pytest.raises(StreamUnavailable):
        await producer.send("no-such-topic", [Message(b"k", b"v")], timeout=0.5)
    assert asyncio.get_running_loop().time() - started <= 0.5 + SLACK_SECONDS
    with pytest.raises(StreamUnavailable):
        await producer.ping(timeout=1.0, topic="no-such-topic")
    await producer.stop()


async def test_start_without_a_broker_is_unavailable() -> None:
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(StreamUnavailable):
        await make_producer(settings).start()


async def test_a_tombstone_reads_as_an_empty_value(
    kafka_settings: Settings, kafka_topic: TopicFactory
) -> None:
    """A record without a value (aiokafka's None) is read as b"": `Record.value` is bytes."""
    topic = await kafka_topic(1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=b"gone", value=None)
        await producer.send_and_wait(topic, key=b"kept", value=b"{}")
    finally:
        await producer.stop()
    records = await _read_all(kafka_settings, topic, {b"gone", b"kept"})
    assert {r.key: r.value for r in records} == {b"gone": b"", b"kept": b"{}"}


async def _read_all(settings: Settings, topic: str, expected: set[bytes]) -> list[Record]:
    """Every record of `topic`: read until `expected` keys are seen and the log is quiet."""
    consumer = make_consumer(settings, topic, f"audit-{uuid.uuid4().hex[:8]}")
    await consumer.start()
    records: list[Record] = []
    quiet_polls = 0
    deadline = asyncio.get_running_loop().time() + 30
    while quiet_polls < 3 or not expected <= {r.key for r in records}:
        assert asyncio.get_running_loop().time() < deadline, "records missing"
        batches = await consumer.getmany(timeout_ms=300)
        quiet_polls = 0 if batches else quiet_polls + 1
        records.extend(r for batch in batches.values() for r in batch)
    await consumer.stop()
    return records
