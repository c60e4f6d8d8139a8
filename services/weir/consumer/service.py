"""`weir consumer`: the consumer deployable, with its status port and SIGTERM handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from weir.consumer.runner import ConsumerLoop
from weir.consumer.status import serve_status
from weir.core.config import Settings
from weir.store import make_store
from weir.store.schema import TableSpec, migrate
from weir.stream import make_producer

log = logging.getLogger(__name__)


async def run_consumer(settings: Settings) -> None:
    store = make_store(settings)
    spec = TableSpec.from_settings(settings)
    await migrate(store, spec)
    dlq_producer = make_producer(settings)
    await dlq_producer.start()

    loop = ConsumerLoop.from_settings(settings, store, spec, dlq_producer)
    running = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(signum, loop.stop)
    status = (
        asyncio.create_task(serve_status(loop, "0.0.0.0", settings.metrics_port))
        if settings.metrics_port
        else None
    )
    try:
        await loop.run()
    finally:
        if status is not None:
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status
        await dlq_producer.stop()
        await store.close()
        log.info("consumer stopped")
