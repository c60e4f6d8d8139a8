"""The consumer's side port: Prometheus `/metrics`, lag as JSON on `/status`, `/healthz`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from weir.consumer.runner import ConsumerLoop
from weir.core.config import Settings
from weir.observability import metrics
from weir.serving import SideServer, server_options


async def lag_by_partition(loop: ConsumerLoop) -> dict[str, int]:
    lag = await loop.consumer.lag()
    for tp, value in lag.items():
        metrics.LAG.labels(partition=str(tp.partition)).set(value)
    return {
        f"{tp.topic}/{tp.partition}": value
        for tp, value in sorted(lag.items(), key=lambda item: item[0].partition)
    }


def status_app(loop: ConsumerLoop) -> Starlette:
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

    return Starlette(
        routes=[
            Route("/status", status),
            Route("/healthz", healthz),
            Mount("/metrics", app=make_asgi_app()),
        ]
    )


async def serve_status(loop: ConsumerLoop, settings: Settings) -> None:
    """Serve on `WEIR_HOST`:`WEIR_METRICS_PORT` until cancelled; also refresh the lag gauge every
    few seconds."""
    options = server_options(settings)
    config = uvicorn.Config(
        status_app(loop), host=settings.host, port=settings.metrics_port, **options
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
