"""The consumer loop: poll -> decode -> batch; each due batch is flushed
(dedupe -> insert -> dead letters -> commit) while polling goes on into the next one.

A batch is due when full or old (`BatchPolicy`). One that is only old while the previous flush is
still running keeps filling until that flush ends: under lag, batches grow to what arrived during a
flush (up to full) instead of being cut at the age limit and queued behind it, so each insert and
lookup is paid for more events; at low traffic a flush ends well within the age limit and nothing
changes.

Offsets are committed only after the insert succeeded, so a crash at any point redelivers the batch
and the dedupe step makes the redelivery harmless. At most one flush runs at a time, so batches are
stored and committed in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from weir.consumer import dead_letters
from weir.consumer.batch import Batch, BatchPolicy
from weir.consumer.decode import decode
from weir.consumer.dedupe import not_yet_stored, unique_in_batch
from weir.consumer.sink import insert_until_stored, with_backoff
from weir.core.config import Settings
from weir.observability import metrics, tracing
from weir.store import Store, TableSpec, UserIds
from weir.stream import (
    CommitFailed,
    Consumer,
    Producer,
    RebalanceCallback,
    StreamUnavailable,
    TopicPartition,
    make_consumer,
)

log = logging.getLogger(__name__)

# How often a batch that is due by age re-checks whether the flush before it has ended.
IN_FLIGHT_RECHECK_SECONDS = 0.02

ConsumerFactory = Callable[[RebalanceCallback, RebalanceCallback], Consumer]


async def wait_for_stream(
    start: Callable[[], Awaitable[None]], what: str, stopping: asyncio.Event, max_backoff: float
) -> bool:
    """Start a stream client, retrying with backoff while the broker cannot be reached; False
    when asked to stop first. A consumer started while Kafka is away (a broker restart, a
    cluster coming up) waits for it instead of exiting into a crash loop's growing delays."""
    delay = 0.5
    while not stopping.is_set():
        try:
            await start()
            return True
        except StreamUnavailable as error:
            extra = {"error": str(error), "retry_in": delay}
            log.warning(f"{what} unavailable, retrying", extra=extra)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
        delay = min(delay * 2, max_backoff)
    return False


class ConsumerLoop:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        spec: TableSpec,
        dlq_producer: Producer,
        make_consumer: ConsumerFactory,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.spec = spec
        self.users = UserIds(store, spec)  # cache of dense user ids, kept across batches
        self.dlq_producer = dlq_producer
        self.policy = BatchPolicy(
            settings.batch_max_events, settings.batch_max_bytes, settings.batch_max_seconds
        )
        self.consumer = make_consumer(self._on_revoked, self._on_assigned)
        self.stopping = stopping or asyncio.Event()
        self.batch = Batch()
        self.last_flush_at: float | None = None
        # The group's client started: aiokafka's start returns once the group has assigned this
        # member partitions, which a rebalance can hold for minutes (another member's flush).
        self.joined = False
        self._flush_lock = asyncio.Lock()
        self._flushing: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        spec: TableSpec,
        dlq_producer: Producer,
        stopping: asyncio.Event | None = None,
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

        return cls(settings, store, spec, dlq_producer, group_member, stopping)

    async def run(self) -> None:
        started = await wait_for_stream(
            self.consumer.start,
            "Kafka (consumer group)",
            self.stopping,
            self.settings.insert_backoff_max_seconds,
        )
        if not started:
            return
        self.joined = True
        try:
            while not self.stopping.is_set():
                room = max(1, self.policy.max_events - len(self.batch))
                polled = await self.consumer.getmany(
                    timeout_ms=self._poll_timeout_ms(), max_records=room
                )
                for records in polled.values():
                    self.batch.extend([decode(record) for record in records])
                if self._should_flush():
                    await self._flush_in_background()
            await self.flush()
        finally:
            await self.consumer.stop()

    def stop(self) -> None:
        self.stopping.set()

    def _flush_in_flight(self) -> bool:
        return self._flushing is not None and not self._flushing.done()

    def _should_flush(self) -> bool:
        """Full: flush now (waiting for the flush in flight, the backpressure). Only old: flush
        once no flush is in flight; until then the batch keeps filling."""
        if not self.policy.is_due(self.batch):
            return False
        return self.policy.is_full(self.batch) or not self._flush_in_flight()

    def _poll_timeout_ms(self) -> int:
        if not len(self.batch):
            return 1000
        wait = self.policy.seconds_left(self.batch)
        if wait <= 0 and self._flush_in_flight():
            # Old, waiting for the flush in flight: look at it again soon. Under lag the poll
            # returns buffered records at once anyway; this bounds the wait when traffic is thin.
            wait = IN_FLIGHT_RECHECK_SECONDS
        return max(1, int(wait * 1000))

    async def flush(self) -> None:
        """Store and commit everything polled so far (waits for a flush in progress first)."""
        await self._wait_for_background_flush()
        await self._flush_current()

    async def _flush_in_background(self) -> None:
        # One flush in flight: while it inserts, polling fills the next batch; when that one is
        # due too, wait for the first (backpressure) before starting the second.
        await self._wait_for_background_flush()
        self._flushing = asyncio.create_task(self._flush_current(), name="weir-consumer-flush")

    async def _wait_for_background_flush(self) -> None:
        flushing, self._flushing = self._flushing, None
        if flushing is not None:
            await flushing  # a failure (e.g. the dead-letter guard) surfaces here, in the loop

    async def _flush_current(self) -> None:
        async with self._flush_lock:
            batch, self.batch = self.batch, Batch()
            if not len(batch):
                return
            links = tracing.links_from(d.traceparent for d in batch.events)
            with tracing.flush_span(links, len(batch)):
                await self._store(batch)

    async def _store(self, batch: Batch) -> None:
        started = time.monotonic()
        dead_letters.check_ratio(
            len(batch.dead), len(batch), self.settings.dlq_max_ratio, self.settings.dlq_min_batch
        )
        token = batch.dedup_token()  # the insert's, and the log line's that traces it
        unique = unique_in_batch(batch.events)
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
            self.users,
            fresh,
            token=token,
            max_backoff=self.settings.insert_backoff_max_seconds,
            stopping=self.stopping,
            give_up_after_stop=self.settings.shutdown_grace_seconds,
        )
        if fresh is None or not stored:
            log.warning("store unavailable at shutdown; batch left uncommitted")
            return
        await dead_letters.publish(self.dlq_producer, self.settings.kafka_dlq_topic, batch.dead)
        offsets = batch.next_offsets()
        if log.isEnabledFor(logging.DEBUG):
            commit = {f"{tp.topic}/{tp.partition}": n for tp, n in offsets.items()}
            log.debug(
                "batch stored",
                extra={
                    "token": token,
                    "records": len(batch),
                    "inserted": len(fresh),
                    "dead": len(batch.dead),
                    "commit": commit,
                },
            )
        await self._commit(offsets)
        self.last_flush_at = time.time()
        metrics.observe_flush(
            records=len(batch),
            inserted=len(fresh),
            duplicates=len(batch.events) - len(fresh),
            dead=len(batch.dead),
            seconds=time.monotonic() - started,
            received_at_ms=[d.event.received_at for d in fresh],
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
