"""The stream contract, written once and run against every backend (arroyo's mixin pattern).

A backend's test class inherits `StreamContract` and provides a `backend` fixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import pytest

from weir.stream import (
    Consumer,
    Message,
    Producer,
    RebalanceCallback,
    Record,
    StreamFull,
    TopicPartition,
)


class Backend(Protocol):
    async def topic(self, partitions: int) -> str: ...

    def producer(self, max_pending: int | None = None) -> Producer: ...

    def consumer(
        self,
        topic: str,
        group: str,
        on_revoked: RebalanceCallback | None = None,
        on_assigned: RebalanceCallback | None = None,
    ) -> Consumer: ...


async def eventually(check: Callable[[], bool], within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def drain(consumer: Consumer, count: int, within: float = 20.0) -> list[Record]:
    """Read until `count` records arrived (fails after `within` seconds)."""
    records: list[Record] = []
    deadline = asyncio.get_running_loop().time() + within
    while len(records) < count:
        assert asyncio.get_running_loop().time() < deadline, f"got {len(records)} of {count}"
        for batch in (await consumer.getmany(timeout_ms=200)).values():
            records.extend(batch)
    return records


@dataclass
class HookLog:
    revoked: list[frozenset[TopicPartition]] = field(default_factory=list)
    assigned: list[frozenset[TopicPartition]] = field(default_factory=list)

    async def on_revoked(self, partitions: frozenset[TopicPartition]) -> None:
        self.revoked.append(partitions)

    async def on_assigned(self, partitions: frozenset[TopicPartition]) -> None:
        self.assigned.append(partitions)


def messages(prefix: str, count: int, key: bytes | None = None) -> list[Message]:
    return [
        Message(key if key is not None else f"{prefix}-{i}".encode(), f"{prefix}-{i}".encode())
        for i in range(count)
    ]


class StreamContract:
    async def test_round_trip_keeps_key_value_headers(self, backend: Backend) -> None:
        topic = await backend.topic(3)
        producer = backend.producer()
        await producer.start()
        sent = [
            Message(b"k1", b'{"a":1}', (("content-type", b"application/json"), ("x", b"\x00"))),
            Message(b"k2", b"two"),
            Message(None, b"keyless"),
        ]
        deliveries = await producer.send(topic, sent)
        await producer.stop()
        assert [d.topic for d in deliveries] == [topic] * 3
        consumer = backend.consumer(topic, "round-trip")
        await consumer.start()
        records = await drain(consumer, 3)
        await consumer.stop()
        by_value = {r.value: r for r in records}
        for message, delivery in zip(sent, deliveries, strict=True):
            record = by_value[message.value]
            assert (record.key, record.headers) == (message.key, message.headers)
            assert (record.partition, record.offset) == (delivery.partition, delivery.offset)
            assert record.timestamp > 1_600_000_000_000

    async def test_order_within_partition_and_same_key_same_partition(
        self, backend: Backend
    ) -> None:
        topic = await backend.topic(3)
        producer = backend.producer()
        await producer.start()
        firsts = await producer.send(topic, messages("a", 20, key=b"user-1"))
        seconds = await producer.send(topic, messages("b", 20, key=b"user-1"))
        spread = await producer.send(topic, messages("spread", 30))
        await producer.stop()
        assert len({d.partition for d in firsts + seconds}) == 1
        assert len({d.partition for d in spread}) > 1
        offsets = [d.offset for d in firsts + seconds]
        assert offsets == sorted(offsets) and len(set(offsets)) == 40
        consumer = backend.consumer(topic, "order")
        await consumer.start()
        records = await drain(consumer, 70)
        await consumer.stop()
        same_key = [r.value for r in records if r.key == b"user-1"]
        assert same_key == [m.value for m in messages("a", 20) + messages("b", 20)]

    async def test_commit_then_new_member_resumes_after_commit(self, backend: Backend) -> None:
        topic = await backend.topic(1)
        producer = backend.producer()
        await producer.start()
        await producer.send(topic, messages("m", 10))
        await producer.stop()
        partition = TopicPartition(topic, 0)
        first = backend.consumer(topic, "resume")
        await first.start()
        assert [r.offset for r in await drain(first, 10)] == list(range(10))
        await first.commit({partition: 4})
        await first.stop()
        second = backend.consumer(topic, "resume")
        await second.start()
        resumed = await drain(second, 6)
        await second.stop()
        assert [r.offset for r in resumed] == list(range(4, 10))
        assert resumed[0].value == b"m-4"

    async def test_commit_inside_on_revoked_at_stop(self, backend: Backend) -> None:
        topic = await backend.topic(1)
        producer = backend.producer()
        await producer.start()
        await producer.send(topic, messages("m", 5))
        await producer.stop()
        read_up_to: dict[TopicPartition, int] = {}
        consumer: Consumer

        async def flush(partitions: frozenset[TopicPartition]) -> None:
            await consumer.commit({tp: read_up_to[tp] for tp in partitions if tp in read_up_to})

        consumer = backend.consumer(topic, "flush-on-stop", on_revoked=flush)
        await consumer.start()
        for record in await drain(consumer, 5):
            read_up_to[TopicPartition(record.topic, record.partition)] = record.offset + 1
        await consumer.stop()
        again = backend.consumer(topic, "flush-on-stop")
        await again.start()
        await eventually(lambda: bool(again.assignment()))
        assert await again.lag() == {TopicPartition(topic, 0): 0}
        assert await again.getmany(timeout_ms=300) == {}
        await again.stop()

    async def test_lag_is_end_minus_committed(self, backend: Backend) -> None:
        topic = await backend.topic(2)
        producer = backend.producer()
        await producer.start()
        deliveries = await producer.send(topic, messages("lag", 12))
        await producer.stop()
        per_partition = {p: sum(d.partition == p for d in deliveries) for p in (0, 1)}
        consumer = backend.consumer(topic, "lag")
        await consumer.start()
        await eventually(lambda: len(consumer.assignment()) == 2)
        expected = {TopicPartition(topic, p): n for p, n in per_partition.items()}
        assert await consumer.lag() == expected
        await drain(consumer, 12)
        await consumer.commit({TopicPartition(topic, 0): per_partition[0]})
        assert await consumer.lag() == {
            TopicPartition(topic, 0): 0,
            TopicPartition(topic, 1): per_partition[1],
        }
        await consumer.stop()

    async def test_two_members_split_partitions_and_take_over(self, backend: Backend) -> None:
        topic = await backend.topic(4)
        everything = frozenset(TopicPartition(topic, p) for p in range(4))
        hooks_one, hooks_two = HookLog(), HookLog()
        one = backend.consumer(topic, "split", hooks_one.on_revoked, hooks_one.on_assigned)
        two = backend.consumer(topic, "split", hooks_two.on_revoked, hooks_two.on_assigned)
        await one.start()
        await two.start()

        def split() -> bool:
            a, b = one.assignment(), two.assignment()
            # The hooks run right after the assignment changes: wait for both.
            hooked = hooks_one.assigned[-1:] == [a] and hooks_two.assigned[-1:] == [b]
            return bool(a) and bool(b) and not (a & b) and (a | b) == everything and hooked

        await _polling(split, one, two)
        await two.stop()
        assert hooks_two.revoked[-1] == hooks_two.assigned[-1]
        await _polling(lambda: hooks_one.assigned[-1] == one.assignment() == everything, one)
        await one.stop()

    async def test_stop_flushes_pending_sends(self, backend: Backend) -> None:
        topic = await backend.topic(3)
        producer = backend.producer()
        await producer.start()
        await producer.send(topic, messages("warm-up", 1))  # metadata cached: send enqueues at once
        sending = asyncio.create_task(producer.send(topic, messages("flush", 500), timeout=10))
        await asyncio.sleep(0)
        await producer.stop()
        assert len(await sending) == 500
        consumer = backend.consumer(topic, "flush")
        await consumer.start()
        values = {r.value for r in await drain(consumer, 501)}
        await consumer.stop()
        assert {m.value for m in messages("flush", 500)} <= values

    async def test_too_many_pending_is_stream_full(self, backend: Backend) -> None:
        topic = await backend.topic(1)
        producer = backend.producer(max_pending=10)
        await producer.start()
        with pytest.raises(StreamFull):
            await producer.send(topic, messages("full", 11))
        assert len(await producer.send(topic, messages("fits", 10))) == 10
        assert await producer.send(topic, [], timeout=0.5) == []
        await producer.stop()


async def _polling(check: Callable[[], bool], *consumers: Consumer) -> None:
    """Kafka members rebalance in the background; poll them while waiting like a real loop."""

    async def poll() -> bool:
        await asyncio.gather(*(c.getmany(timeout_ms=50) for c in consumers))
        return check()

    await _until(poll)


async def _until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
