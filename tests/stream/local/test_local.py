"""The stream contract on the local on-disk log, plus what only the local log promises."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stream.contract import StreamContract, drain, messages
from weir.core.config import Settings, StreamBackend
from weir.stream import (
    Consumer,
    LocalLog,
    Message,
    Producer,
    RebalanceCallback,
    TopicPartition,
    local_log,
    make_consumer,
    make_producer,
)
from weir.stream.local.producer import LocalProducer


class LocalBackend:
    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(stream_backend=StreamBackend.LOCAL, data_dir=data_dir)

    @property
    def log(self) -> LocalLog:
        return local_log(self.settings)

    async def topic(self, partitions: int) -> str:
        name = f"test-{uuid.uuid4().hex[:8]}"
        self.log.topic(name, partitions)
        return name

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
def backend(tmp_path: Path) -> Iterator[LocalBackend]:
    local = LocalBackend(tmp_path)
    yield local
    local.log.close()


class TestLocalStream(StreamContract):
    pass


async def test_producer_and_consumer_share_one_log_per_directory(backend: LocalBackend) -> None:
    producer, consumer = backend.producer(), backend.consumer("shared", "g")
    assert isinstance(producer, LocalProducer)
    assert LocalLog.open(backend.settings.data_dir / "stream") is backend.log
    await consumer.start()
    waiting = asyncio.create_task(consumer.getmany(timeout_ms=5000))
    await asyncio.sleep(0.05)
    started = asyncio.get_running_loop().time()
    await producer.send("shared", [Message(b"k", b"wake up")])
    batches = await waiting
    assert asyncio.get_running_loop().time() - started < 1.0  # woken, not timed out
    assert [r.value for rs in batches.values() for r in rs] == [b"wake up"]
    await consumer.stop()


async def test_data_and_commits_survive_reopening(backend: LocalBackend) -> None:
    topic = await backend.topic(2)
    producer = backend.producer()
    deliveries = await producer.send(topic, messages("keep", 10))
    consumer = backend.consumer(topic, "survivor")
    await consumer.start()
    await drain(consumer, 10)
    first = deliveries[0]
    await consumer.commit({TopicPartition(topic, first.partition): first.offset + 1})
    await consumer.stop()
    backend.log.close()

    reopened = backend.consumer(topic, "survivor")  # a new LocalLog reads the files again
    await reopened.start()
    records = await drain(reopened, 9)
    await reopened.stop()
    assert sorted(r.value for r in records) == sorted(m.value for m in messages("keep", 10)[1:])
    again = await backend.producer().send(topic, [Message(b"x", b"new")])
    assert again[0].offset == sum(d.partition == again[0].partition for d in deliveries)


async def test_torn_tail_is_cut_on_open(backend: LocalBackend) -> None:
    topic = await backend.topic(1)
    await backend.producer().send(topic, messages("whole", 3))
    backend.log.close()
    with (backend.settings.data_dir / "stream" / topic / "0.log").open("ab") as file:
        file.write(b"\x00\x00\x01\x00garbage")  # a frame cut short by a crash
    delivery = (await backend.producer().send(topic, [Message(b"k", b"after")]))[0]
    assert delivery.offset == 3
    consumer = backend.consumer(topic, "torn")
    await consumer.start()
    records = await drain(consumer, 4)
    await consumer.stop()
    assert [r.value for r in records] == [b"whole-0", b"whole-1", b"whole-2", b"after"]


async def test_concurrent_sends_share_fsyncs(backend: LocalBackend) -> None:
    topic = await backend.topic(3)
    producer = backend.producer()
    before = backend.log.sync_rounds
    sends = [producer.send(topic, [Message(f"{i}".encode(), b"v")]) for i in range(200)]
    results = await asyncio.gather(*sends)
    assert len(results) == 200
    assert backend.log.sync_rounds - before < 50
