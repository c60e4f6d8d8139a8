"""Kafka producer: acks=all, idempotent, batched by linger, every call bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from weir.core.config import Settings
from weir.stream.base import Delivery, Message, StreamError, StreamFull, StreamUnavailable
from weir.stream.kafka.config import client_options, throttle_metadata_retries

# Room for one produce request of many small events; the broker accepts up to ~1 MiB.
_MAX_BATCH_BYTES = 256 * 1024


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
            linger_ms=self._linger_ms,
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

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()  # flushes the accumulator before closing

    async def send(
        self,
        topic: str,
        messages: Sequence[Message],
        timeout: float | None = None,
    ) -> list[Delivery]:
        producer = self._started()
        if self._pending + len(messages) > self._max_pending:
            raise StreamFull(f"{self._pending} messages already await the broker's ack")
        timeout = self._default_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        futures: list[asyncio.Future[Any]] = []
        self._pending += len(messages)
        try:
            # Enqueueing can wait for metadata or buffer space; cancelling it there is safe
            # (aiokafka: cancelling `send()` itself means the message is not sent).
            async with asyncio.timeout_at(deadline):
                for message in messages:
                    future = await producer.send(
                        topic, message.value, key=message.key, headers=list(message.headers)
                    )
                    future.add_done_callback(self._acked_or_failed)
                    futures.append(future)
        except (KafkaError, TimeoutError) as error:
            raise stream_error(error) from error
        finally:
            self._pending -= len(messages) - len(futures)  # the rest leave via the callback
        if futures:
            # asyncio.wait does not cancel: a late ack still lands and releases its slot.
            _, late = await asyncio.wait(futures, timeout=max(0.0, deadline - loop.time()))
            if late:
                raise StreamUnavailable(f"{len(late)} of {len(futures)} messages not acked")
        deliveries = []
        for future in futures:
            if failure := future.exception():
                raise stream_error(failure) from failure
            metadata = future.result()
            deliveries.append(Delivery(topic, metadata.partition, metadata.offset))
        return deliveries

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

    def _acked_or_failed(self, future: asyncio.Future[Any]) -> None:
        self._pending -= 1
        if not future.cancelled():
            future.exception()  # marks a failure as retrieved; `send` reports it if still waiting

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise StreamError("producer is not started")
        return self._producer
