"""The consumer loop: poll, batch, and on each flush dedupe -> insert -> dead letters -> commit.

Offsets are committed only after the insert succeeded, so a crash at any point redelivers the batch
and the dedupe step makes the redelivery harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from weir.consumer import dead_letters
from weir.consumer.batch import Batch, BatchPolicy
from weir.consumer.decode import DeadLetter, Decoded, decode
from weir.consumer.dedupe import not_yet_stored, unique_in_batch
from weir.consumer.sink import insert_until_stored, with_backoff
from weir.core.config import Settings
from weir.observability import metrics, tracing
from weir.store.base import Store
from weir.store.schema import TableSpec
from weir.stream import make_consumer
from weir.stream.base import CommitFailed, Consumer, Producer, RebalanceCallback, TopicPartition

log = logging.getLogger(__name__)

ConsumerFactory = Callable[[RebalanceCallback, RebalanceCallback], Consumer]


class ConsumerLoop:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        spec: TableSpec,
        dlq_producer: Producer,
        make_consumer: ConsumerFactory,
    ) -> None:
        self.settings = settings
        self.store = store
        self.spec = spec
        self.dlq_producer = dlq_producer
        self.policy = BatchPolicy(
            settings.batch_max_events, settings.batch_max_bytes, settings.batch_max_seconds
        )
        self.consumer = make_consumer(self._on_revoked, self._on_assigned)
        self.stopping = asyncio.Event()
        self.batch = Batch()
        self.last_flush_at: float | None = None
        self._flush_lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, spec: TableSpec, dlq_producer: Producer
    ) -> ConsumerLoop:
        """The loop over the settings' events topic, as a member of the settings' group."""

        def group_member(on_revoked: RebalanceCallback, on_assigned: RebalanceCallback) -> Consumer:
            return make_consumer(
                settings,
                topic=settings.kafka_topic,
                group=settings.kafka_consumer_group,
                on_revoked=on_revoked,
                on_assigned=on_assigned,
            )

        return cls(settings, store, spec, dlq_producer, group_member)

    async def run(self) -> None:
        await self.consumer.start()
        try:
            while not self.stopping.is_set():
                wait = self.policy.seconds_left(self.batch) if self.batch.records else 1.0
                room = max(1, self.policy.max_events - len(self.batch))
                polled = await self.consumer.getmany(
                    timeout_ms=max(1, int(wait * 1000)), max_records=room
                )
                for records in polled.values():
                    for record in records:
                        self.batch.add(record)
                if self.policy.is_due(self.batch):
                    await self.flush()
            await self.flush()
        finally:
            await self.consumer.stop()

    def stop(self) -> None:
        self.stopping.set()

    async def flush(self) -> None:
        async with self._flush_lock:
            batch = self.batch
            if not batch.records:
                return
            links = tracing.links_from(record.headers for record in batch.records)
            with tracing.flush_span(links, len(batch)):
                await self._flush(batch)

    async def _flush(self, batch: Batch) -> None:
        started = time.monotonic()
        good: list[Decoded] = []
        dead: list[DeadLetter] = []
        for record in batch.records:
            outcome = decode(record)
            (good if isinstance(outcome, Decoded) else dead).append(outcome)  # type: ignore[arg-type]
        dead_letters.check_ratio(
            len(dead), len(batch), self.settings.dlq_max_ratio, self.settings.dlq_min_batch
        )
        unique = unique_in_batch(good)
        fresh = await with_backoff(
            lambda: not_yet_stored(self.store, self.spec, unique),
            "lookup of stored ids",
            self.settings.insert_backoff_max_seconds,
            self.stopping,
            self.settings.shutdown_grace_seconds,
        )
        stored = fresh is not None and await insert_until_stored(
            self.store,
            self.spec,
            fresh,
            token=batch.dedup_token(),
            max_backoff=self.settings.insert_backoff_max_seconds,
            stopping=self.stopping,
            give_up_after_stop=self.settings.shutdown_grace_seconds,
        )
        if fresh is None or not stored:
            log.warning("store unavailable at shutdown; batch left uncommitted")
            self.batch = Batch()
            return
        await dead_letters.publish(self.dlq_producer, self.settings.kafka_dlq_topic, dead)
        await self._commit(batch.next_offsets())
        self.batch = Batch()
        self.last_flush_at = time.time()
        metrics.observe_flush(
            records=len(batch),
            inserted=len(fresh),
            duplicates=len(good) - len(fresh),
            dead=len(dead),
            seconds=time.monotonic() - started,
            received_at_ms=[d.event.received_at_ms for d in fresh],
        )

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
        except CommitFailed as error:
            # Another member owns the partition now and will redeliver; dedupe absorbs it.
            log.warning("commit failed after a rebalance", extra={"error": str(error)})

    async def _on_revoked(self, partitions: frozenset[TopicPartition]) -> None:
        if partitions:
            await self.flush()

    async def _on_assigned(self, partitions: frozenset[TopicPartition]) -> None:
        log.info(
            "partitions assigned", extra={"partitions": sorted(p.partition for p in partitions)}
        )
