"""`weir consumer`: the consumer deployable, with its status port (served from the start, also
while Kafka is awaited) and SIGTERM handling.

It runs no DDL (see `weir.parts`): until the migration owner has created the table, inserts fail
and are retried with backoff, nothing is committed, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from weir.consumer.runner import ConsumerLoop, wait_for_stream
from weir.consumer.status import ConsumerStatus, serve_status
from weir.core.config import Settings
from weir.parts import open_parts
from weir.runtime import tune_gc
from weir.stream import make_producer

log = logging.getLogger(__name__)


async def run_consumer(settings: Settings) -> None:
    tune_gc()
    stopping = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(signum, stopping.set)
    # The status port first: while Kafka is away the kubelet sees a live consumer, not ready yet.
    consumer = ConsumerStatus()
    status = (
        asyncio.create_task(serve_status(consumer, settings)) if settings.metrics_port else None
    )
    try:
        await _run(settings, consumer, stopping)
    finally:
        if status is not None:
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status
    log.info("consumer stopped")


async def _run(settings: Settings, consumer: ConsumerStatus, stopping: asyncio.Event) -> None:
    producer = make_producer(settings)  # the dead letters'; Kafka may not be up yet
    backoff = settings.insert_backoff_max_seconds
    if not await wait_for_stream(producer.start, "Kafka (producer)", stopping, backoff):
        log.info("consumer stopped before Kafka was reachable")
        return
    try:
        async with open_parts(settings, producer=producer) as parts:
            consumer.loop = ConsumerLoop.from_settings(
                settings, parts.store, parts.spec, parts.producer, stopping
            )
            await consumer.loop.run()
    finally:
        await producer.stop()
