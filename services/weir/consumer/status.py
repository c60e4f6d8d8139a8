"""The consumer's status port: Prometheus `/metrics`, lag as JSON on `/status`, `/healthz`.

Served in the consumer's own event loop: unlike the api's (`api/status.py`) it has no flood of
connections to keep its probe apart from.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from weir.consumer.runner import ConsumerLoop
from weir.core.config import Settings
from weir.observability import metrics
from weir.serving import SideServer, server_options
from weir.status import status_app


async def lag_by_partition(loop: ConsumerLoop) -> dict[str, int]:
    lag = await loop.consumer.lag()
    for tp, value in lag.items():
        metrics.LAG.labels(partition=str(tp.partition)).set(value)
    return {
        f"{tp.topic}/{tp.partition}": value
        for tp, value in sorted(lag.items(), key=lambda item: item[0].partition)
    }


def consumer_status_app(loop: ConsumerLoop) -> Starlette:
    async def status(_: Request) -> JSONResponse:
        lag = await lag_by_partition(loop)
        body: dict[str, Any] = {
            "group": loop.settings.kafka_consumer_group,
            "topic": loop.settings.kafka_topic,
            "lag": lag,
            "total_lag": sum(lag.values()),
            "batch_records": len(loop.batch),
            "last_flush_at": loop.last_flush_at,
        }
        return JSONResponse(body)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy"})

    return status_app([Route("/status", status), Route("/healthz", healthz)])


async def serve_status(loop: ConsumerLoop, settings: Settings) -> None:
    """Serve on `WEIR_HOST`:`WEIR_METRICS_PORT` until cancelled; also refresh the lag gauge every
    few seconds."""
    options = server_options(settings)
    config = uvicorn.Config(
        consumer_status_app(loop), host=settings.host, port=settings.metrics_port, **options
    )
    server = SideServer(config)

    async def refresh_lag() -> None:
        while True:
            with contextlib.suppress(Exception):
                await lag_by_partition(loop)
            await asyncio.sleep(5)

    refresher = asyncio.create_task(refresh_lag())
    try:
        await server.serve()
    finally:
        refresher.cancel()
