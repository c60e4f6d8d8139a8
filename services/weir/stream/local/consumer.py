"""Consumer over the local log: a member of a local consumer group (see group)."""

from __future__ import annotations

import asyncio

from weir.core.config import Settings
from weir.stream.base import (
    CommitFailed,
    PlainRecord,
    RebalanceCallback,
    Record,
    StreamError,
    TopicPartition,
)
from weir.stream.local.log import LocalLog
from weir.stream.local.segment import Segment, decode

_DEFAULT_MAX_RECORDS = 10_000


class LocalConsumer:
    def __init__(
        self,
        settings: Settings,
        log: LocalLog,
        topic: str,
        group: str,
        on_revoked: RebalanceCallback | None = None,
        on_assigned: RebalanceCallback | None = None,
    ) -> None:
        self._log = log
        self._topic = topic
        self._from_earliest = settings.kafka_auto_offset_reset == "earliest"
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned
        self._segments: list[Segment] = log.topic(topic)
        self._group = log.group(topic, group)
        self._positions: dict[int, int] = {}
        self._joined = False

    async def start(self) -> None:
        if not self._joined:
            self._joined = True
            await self._group.join(self)

    async def stop(self) -> None:
        if self._joined:
            self._joined = False
            await self._group.leave(self)

    async def revoke(self) -> None:
        """Called by the group: hand back every partition (the hook may still commit)."""
        if self._on_revoked:
            await self._on_revoked(self.assignment())
        self._positions = {}

    async def assign(self, partitions: frozenset[int]) -> None:
        committed = self._group.committed
        self._positions = {
            p: committed.get(p, 0 if self._from_earliest else self._segments[p].durable)
            for p in partitions
        }
        self._log.wake()  # a getmany waiting on the old assignment looks again
        if self._on_assigned:
            await self._on_assigned(self.assignment())

    async def getmany(
        self, timeout_ms: int = 1000, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        if not self._joined:
            raise StreamError("consumer is not started")
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        while True:
            changed = self._log.changed()  # taken before reading: no wake-up slips between
            batches = self._read(max_records or _DEFAULT_MAX_RECORDS)
            if batches:
                return batches
            try:
                async with asyncio.timeout_at(deadline):
                    await changed.wait()
            except TimeoutError:
                return {}

    def _read(self, limit: int) -> dict[TopicPartition, list[Record]]:
        batches: dict[TopicPartition, list[Record]] = {}
        for partition, position in sorted(self._positions.items()):
            if limit <= 0:
                break
            records: list[Record] = []
            for index, payload in enumerate(self._segments[partition].read(position, limit)):
                timestamp_ms, key, value, headers = decode(payload)
                offset = position + index
                records.append(
                    PlainRecord(self._topic, partition, offset, key, value, headers, timestamp_ms)
                )
            if records:
                batches[TopicPartition(self._topic, partition)] = records
                self._positions[partition] = records[-1].offset + 1
                limit -= len(records)
        return batches

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        foreign = [tp for tp in offsets if tp.partition not in self._positions]
        if foreign or any(tp.topic != self._topic for tp in offsets):
            raise CommitFailed(f"not assigned to this member: {foreign or list(offsets)}")
        await self._group.commit({tp.partition: offset for tp, offset in offsets.items()})

    def seek(self, partition: TopicPartition, offset: int) -> None:
        if partition.partition not in self._positions:
            raise StreamError(f"{partition} is not assigned to this member")
        self._positions[partition.partition] = offset

    def assignment(self) -> frozenset[TopicPartition]:
        return frozenset(TopicPartition(self._topic, p) for p in self._positions)

    async def lag(self) -> dict[TopicPartition, int]:
        committed = self._group.committed
        return {
            TopicPartition(self._topic, p): self._segments[p].durable - committed.get(p, 0)
            for p in self._positions
        }
