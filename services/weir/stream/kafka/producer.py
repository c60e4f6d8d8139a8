"""Kafka producer: acks=all, idempotent, concurrent sends coalesced into record batches per
partition (batching.py), every call bounded in time."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
)

from weir.core.config import Settings
from weir.stream.base import Delivery, Message, StreamError, StreamFull, StreamUnavailable
from weir.stream.kafka.batching import Chunk, PartitionBatcher, partition_for
from weir.stream.kafka.config import client_options, throttle_metadata_retries

# The broker refused the producer's idempotent session: only a new producer can send again.
_SESSION_LOST = (OutOfOrderSequenceNumber, ProducerFenced)
# One record batch per partition per produce request; the broker accepts up to ~1 MiB.
_MAX_BATCH_BYTES = 512 * 1024


def stream_error(error: BaseException) -> StreamError:
    """Our error for an aiokafka one: retriable and connection trouble mean 'unavailable'."""
    unavailable = isinstance(error, KafkaConnectionError | KafkaTimeoutError | TimeoutError)
    if unavailable or getattr(error, "retriable", False):
        return StreamUnavailable(f"Kafka unavailable: {error!r}")
    return StreamError(f"Kafka error: {error!r}")


class KafkaProducer:
    def __init__(self, settings: Settings, bootstrap_servers: str | None = None) -> None:
        self._options = client_options(settings, bootstrap_servers)
        self._linger_ms = settings.producer_linger_ms
        self._default_timeout = settings.produce_timeout_seconds
        self._max_pending = settings.producer_max_pending
        # The client's own retry horizon: a batch not acked by then fails inside aiokafka.
        # Longer than our answer's bound so a brief outage is bridged by retries, not lost.
        self._request_timeout_ms = int(max(10.0, 5 * self._default_timeout) * 1000)
        self._producer: AIOKafkaProducer | None = None
        self._batcher: PartitionBatcher | None = None
        self._round_robin = itertools.count()
        self._renewal: asyncio.Task[None] | None = None
        self._pending = 0  # messages handed to the client and not yet acked or failed

    @property
    def pending(self) -> int:
        return self._pending

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            **self._options,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # batching is PartitionBatcher's (batching.py)
            max_batch_size=_MAX_BATCH_BYTES,
            request_timeout_ms=self._request_timeout_ms,
        )
        throttle_metadata_retries(producer.client)
        try:
            await producer.start()
        except (KafkaError, OSError) as error:
            await producer.stop()
            raise StreamUnavailable(f"cannot connect to Kafka: {error!r}") from error
        self._producer = producer
        self._batcher = PartitionBatcher(producer, self._linger_ms / 1000)

    async def stop(self) -> None:
        renewal, self._renewal = self._renewal, None
        if renewal is not None:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewal
        producer, self._producer = self._producer, None
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            await batcher.close()  # every queued send handed to aiokafka...
        if producer is not None:
            await producer.stop()  # ...which flushes its accumulator before closing

    async def send(
        self,
        topic: str,
        messages: Sequence[Message],
        timeout: float | None = None,
    ) -> list[Delivery]:
        producer = self._started()
        batcher = self._batcher
        assert batcher is not None
        if not messages:
            return []
        if self._pending + len(messages) > self._max_pending:
            raise StreamFull(f"{self._pending} messages already await the broker's ack")
        timeout = self._default_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        known = producer.client.cluster.partitions_for_topic(topic)
        if known:
            partitions = sorted(known)
        else:  # first send to the topic: wait (bounded) for its metadata
            try:
                async with asyncio.timeout_at(deadline):
                    partitions = sorted(await producer.partitions_for(topic))
            except (KafkaError, TimeoutError) as error:
                raise stream_error(error) from error
        by_partition: dict[int, list[int]] = {}
        for index, message in enumerate(messages):
            partition = (
                partition_for(message.key, partitions)
                if message.key is not None
                else partitions[next(self._round_robin) % len(partitions)]
            )
            by_partition.setdefault(partition, []).append(index)
        chunks = {
            partition: batcher.submit(topic, partition, [messages[i] for i in indexes])
            for partition, indexes in by_partition.items()
        }
        self._pending += len(messages)
        if not await self._acked(list(chunks.values()), deadline):
            late = sum(not chunk.done.done() for chunk in chunks.values())
            raise StreamUnavailable(f"{late} of {len(chunks)} batches not acked in time")
        deliveries: list[Delivery | None] = [None] * len(messages)
        for partition, chunk in chunks.items():
            if failure := chunk.done.exception():
                if isinstance(failure, _SESSION_LOST):
                    self._renew(producer)
                    reason = f"Kafka producer session lost, starting a new one: {failure!r}"
                    raise StreamUnavailable(reason) from failure
                raise stream_error(failure) from failure
            for index, offset in zip(by_partition[partition], chunk.done.result(), strict=True):
                deliveries[index] = Delivery(topic, partition, offset)
        return [d for d in deliveries if d is not None]

    async def _acked(self, chunks: list[Chunk], deadline: float) -> bool:
        """Wait until every chunk is settled (acked or failed) or the deadline passes.

        Unlike `asyncio.wait_for`, nothing is cancelled at the deadline: a late ack still lands
        and releases its slots in `pending`. Hand-rolled rather than `asyncio.wait`, which cost
        a quarter of the producer's CPU per single-event send (its set and per-call checks)."""
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[bool] = loop.create_future()
        unsettled = len(chunks)

        def on_settled(count: int, _: asyncio.Future[list[int]]) -> None:
            nonlocal unsettled
            self._pending -= count
            unsettled -= 1
            if unsettled == 0 and not settled.done():
                settled.set_result(True)

        for chunk in chunks:
            chunk.done.add_done_callback(functools.partial(on_settled, len(chunk.messages)))

        def on_deadline() -> None:
            if not settled.done():
                settled.set_result(False)

        timer = loop.call_at(deadline, on_deadline)
        try:
            return await settled
        finally:
            timer.cancel()

    async def ping(
        self,
        timeout: float | None = None,
        topic: str | None = None,
    ) -> None:
        producer = self._started()
        try:
            async with asyncio.timeout(self._default_timeout if timeout is None else timeout):
                # A fresh metadata request: cached metadata would hide a dead broker.
                cluster = await producer.client.fetch_all_metadata()
        except (KafkaError, TimeoutError) as error:
            raise StreamUnavailable(f"Kafka did not answer: {error!r}") from error
        if topic is not None and not cluster.partitions_for_topic(topic):
            raise StreamUnavailable(f"topic {topic!r} does not exist")

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            if self._renewal is not None:
                raise StreamUnavailable("Kafka producer session being renewed")
            raise StreamError("producer is not started")
        return self._producer

    def _renew(self, broken: AIOKafkaProducer) -> None:
        """Replace a producer whose idempotent session the broker no longer accepts (e.g. an
        out-of-order sequence after a broker lost its state): aiokafka's sender stops for good
        on such errors, so only a new producer (a new producer id) can send again."""
        if self._producer is not broken or self._renewal is not None:
            return
        self._producer, self._batcher = None, None

        async def replace(old: Any) -> None:
            try:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self._default_timeout):
                        await old.stop()
                while self._renewal is not None:
                    try:
                        await self.start()
                        return
                    except StreamUnavailable:
                        await asyncio.sleep(1.0)
            finally:
                self._renewal = None

        self._renewal = asyncio.create_task(replace(broken), name="kafka-producer-renewal")
