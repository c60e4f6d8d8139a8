"""The producer's partitioner and its coalescing of concurrent sends, on the real broker."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from tests.harness.kafka import TopicFactory
from weir.core.config import Settings
from weir.stream import Message, make_consumer
from weir.stream.kafka.batching import PartitionBatcher, partition_for
from weir.stream.kafka.producer import KafkaProducer


def test_partition_for_is_kafkas_default_partitioner() -> None:
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randint(0, 80)) for _ in range(2000)] + [b"", b"a", b"event-1"]
    for count in (1, 3, 6, 7, 64):
        partitions = list(range(count))
        for key in keys:
            assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, [])


async def test_concurrent_sends_share_record_batches_and_keep_their_offsets(
    kafka_settings: Settings, kafka_topic: TopicFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = await kafka_topic(partitions=2)
    producer = KafkaProducer(kafka_settings)
    await producer.start()
    batches: list[int] = []
    build = PartitionBatcher._build

    def counting(self: PartitionBatcher, chunks: list) -> list:  # type: ignore[type-arg]
        built = build(self, chunks)
        batches.extend(len(members) for _, members in built)
        return built

    monkeypatch.setattr(PartitionBatcher, "_build", counting)
    sends = [
        [Message(f"k{i}-{j}".encode(), f"v{i}-{j}".encode()) for j in range(3)] for i in range(300)
    ]
    deliveries = await asyncio.gather(*(producer.send(topic, messages) for messages in sends))
    assert producer.pending == 0
    await producer.stop()

    assert len(batches) < len(sends) / 5, f"{len(batches)} record batches for {len(sends)} sends"
    by_place = {(d.partition, d.offset) for ds in deliveries for d in ds}
    assert len(by_place) == 900  # every message has a place of its own

    consumer = make_consumer(kafka_settings, topic, group=f"read-{topic}")
    await consumer.start()
    stored: dict[tuple[int, int], bytes] = {}
    for _ in range(100):
        for records in (await consumer.getmany(timeout_ms=500)).values():
            stored |= {(r.partition, r.offset): r.value for r in records}
        if len(stored) >= 900:
            break
    await consumer.stop()
    for messages, places in zip(sends, deliveries, strict=True):
        for message, place in zip(messages, places, strict=True):
            assert stored[place.partition, place.offset] == message.value
            assert place.partition == partition_for(message.key or b"", [0, 1])


async def test_a_lost_producer_session_is_answered_unavailable_and_renewed(
    kafka_settings: Settings, kafka_topic: TopicFactory
) -> None:
    from aiokafka.errors import OutOfOrderSequenceNumber

    from weir.stream import StreamUnavailable

    topic = await kafka_topic(partitions=1)
    producer = KafkaProducer(kafka_settings)
    await producer.start()
    await producer.send(topic, [Message(b"k0", b"before")])
    first = producer._producer
    assert first is not None

    async def refused(*_: object, **__: object) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        future.set_exception(OutOfOrderSequenceNumber())
        return future

    first.send_batch = refused  # type: ignore[method-assign]
    with pytest.raises(StreamUnavailable, match="session lost"):
        await producer.send(topic, [Message(b"k1", b"refused")])
    for _ in range(100):  # a new producer (a new producer id) takes over
        try:
            await producer.send(topic, [Message(b"k2", b"after")])
            break
        except StreamUnavailable:
            await asyncio.sleep(0.1)
    assert producer._producer is not None and producer._producer is not first
    assert producer.pending == 0
    await producer.stop()
