"""`weir dev`: the embedded default. API, in-process log, consumer loop and chDB in one process.

Data lives under `WEIR_DATA_DIR` and survives restarts. Setting `WEIR_STREAM_BACKEND=kafka` or
`WEIR_STORE_BACKEND=clickhouse` swaps either part for the real one; nothing else changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from weir.api import check_exposure, serving_app
from weir.consumer.runner import ConsumerLoop
from weir.core.config import Settings, StoreBackend, StreamBackend
from weir.parts import open_parts
from weir.runtime import tune_gc
from weir.serving import GracefulServer, server_options

log = logging.getLogger(__name__)


def embedded_settings(settings: Settings) -> Settings:
    """The local backends, unless the environment chose a backend explicitly."""
    chosen = settings.model_fields_set
    changes: dict[str, object] = {}
    if "stream_backend" not in chosen:
        changes["stream_backend"] = StreamBackend.LOCAL
    if "store_backend" not in chosen:
        changes["store_backend"] = StoreBackend.CHDB
    return settings.model_copy(update=changes)


def run_embedded(settings: Settings) -> None:
    asyncio.run(serve_embedded(embedded_settings(settings)))


async def serve_embedded(settings: Settings) -> None:
    check_exposure(settings)  # first: `make dev` says it runs open in its first log line
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_parts(settings, migrate=True) as parts:
        consumer = ConsumerLoop.from_settings(settings, parts.store, parts.spec, parts.producer)
        consumer_task = asyncio.create_task(consumer.run(), name="embedded-consumer")
        app = serving_app(settings, producer=parts.producer, store=parts.store)
        tune_gc()
        server = GracefulServer(
            uvicorn.Config(app, host=settings.host, port=settings.port, **server_options(settings))
        )
        log.info("weir dev serving", extra={"url": f"http://{settings.host}:{settings.port}"})
        try:
            await server.serve()
        finally:
            consumer.stop()
            with contextlib.suppress(Exception):
                await consumer_task
