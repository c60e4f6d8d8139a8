"""Kafka group consumer over one topic: explicit commits, rebalance hooks, lag."""

from __future__ import annotations

from collections.abc import Iterable

import aiokafka
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from weir.core.config import Settings
from weir.stream.base import (
    CommitFailed,
    RebalanceCallback,
    Record,
    StreamError,
    StreamUnavailable,
    TopicPartition,
)
from weir.stream.kafka.config import client_options, throttle_metadata_retries
from weir.stream.kafka.producer import stream_error


async def _nothing(_: frozenset[TopicPartition]) -> None:
    return None


def _ours(partitions: Iterable[aiokafka.TopicPartition]) -> frozenset[TopicPartition]:
    return frozenset(TopicPartition(tp.topic, tp.partition) for tp in partitions)


def _theirs(partition: TopicPartition) -> aiokafka.TopicPartition:
    return aiokafka.TopicPartition(partition.topic, partition.partition)


REBALANCE_TIMEOUT_MS = 300_000


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_revoked: RebalanceCallback, on_assigned: RebalanceCallback) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: Iterable[aiokafka.TopicPartition]) -> None:
        await self._on_revoked(_ours(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[aiokafka.TopicPartition]) -> None:
        await self._on_assigned(_ours(assigned))


class KafkaConsumer:
    def __init__(
        self,
        settings: Settings,
        topic: str,
        group: str,
        on_revoked: RebalanceCallback | None = None,
        on_assigned: RebalanceCallback | None = None,
        bootstrap_servers: str | None = None,
    ) -> None:
        self._options = client_options(settings, bootstrap_servers)
        self._auto_offset_reset = settings.kafka_auto_offset_reset
        self._topic = topic
        self._group = group
        self._on_revoked = on_revoked or _nothing
        self._on_assigned = on_assigned or _nothing
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            **self._options,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            # No transactions are used; read_committed costs nothing and stays right if they are.
            isolation_level="read_committed",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,  # notice rebalances (scale up/down) within a second
            # How long the group waits for a member to rejoin, i.e. for its flush on revoke.
            # aiokafka's default is the session timeout (10 s): a flush retrying a slow store
            # outlasted it, the member was dropped, and the new owner stored the same events
            # while the old one still inserted them (counted twice; scripts/soak.py). A dead
            # member is still noticed within the session timeout. 5 min as in Kafka's Java
            # client (max.poll.interval.ms).
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
        )
        throttle_metadata_retries(consumer._client)
        consumer.subscribe([self._topic], listener=_Listener(self._on_revoked, self._on_assigned))
        try:
            await consumer.start()
        except (KafkaError, OSError) as error:
            await consumer.stop()
            raise StreamUnavailable(f"cannot connect to Kafka: {error!r}") from error
        self._consumer = consumer

    async def stop(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        try:
            # aiokafka leaves the group without calling the listener; give the owner its flush.
            await self._on_revoked(_ours(consumer.assignment()))
        finally:
            self._consumer = None
            await consumer.stop()

    async def getmany(
        self, timeout_ms: int = 1000, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        consumer = self._started()
        try:
            batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as error:
            raise stream_error(error) from error
        # aiokafka's records satisfy `Record` as they are: handed over without a copy, but for
        # a tombstone's value (None), which becomes b"" as `Record` has it.
        for records in batches.values():
            for record in records:
                if record.value is None:
                    record.value = b""
        return {
            TopicPartition(tp.topic, tp.partition): records
            for tp, records in batches.items()
            if records
        }

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        consumer = self._started()
        try:
            await consumer.commit({_theirs(tp): offset for tp, offset in offsets.items()})
        except (CommitFailedError, IllegalStateError) as error:
            raise CommitFailed(f"commit of {offsets} failed: {error!r}") from error
        except KafkaError as error:
            raise stream_error(error) from error

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._started().seek(_theirs(partition), offset)

    def assignment(self) -> frozenset[TopicPartition]:
        return _ours(self._consumer.assignment()) if self._consumer else frozenset()

    async def lag(self) -> dict[TopicPartition, int]:
        consumer = self._started()
        partitions = [_theirs(tp) for tp in self.assignment()]
        if not partitions:
            return {}
        try:
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            lags = {}
            for tp in partitions:
                committed = await consumer.committed(tp)
                done = committed if committed is not None else starts[tp]
                lags[TopicPartition(tp.topic, tp.partition)] = max(0, ends[tp] - done)
        except KafkaError as error:
            raise stream_error(error) from error
        return lags

    def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise StreamError("consumer is not started")
        return self._consumer
