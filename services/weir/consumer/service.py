"""`weir consumer`: the consumer deployable, with its status port and SIGTERM handling.

It runs no DDL (see `weir.parts`): until the migration owner has created the table, inserts fail
and are retried with backoff, nothing is committed, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from weir.consumer.runner import ConsumerLoop
from weir.consumer.status import serve_status
from weir.core.config import Settings
from weir.parts import open_parts

log = logging.getLogger(__name__)
GC_GEN0_THRESHOLD = 200_000


def tune_gc() -> None:
    """Fewer, later garbage collections. A batch holds tens of thousands of fresh containers
    (each event's tags and metadata); at the default thresholds the collector ran over them again
    and again during decoding. Weir's objects form no cycles worth collecting early, and what was
    allocated at start-up is frozen out of every collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 50, 100)


async def run_consumer(settings: Settings) -> None:
    tune_gc()
    async with open_parts(settings) as parts:
        loop = ConsumerLoop.from_settings(settings, parts.store, parts.spec, parts.producer)
        running = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(signum, loop.stop)
        status = (
            asyncio.create_task(serve_status(loop, settings)) if settings.metrics_port else None
        )
        try:
            await loop.run()
        finally:
            if status is not None:
                status.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await status
    log.info("consumer stopped")
