"""The consumer's status port: Prometheus `/metrics`, lag as JSON on `/status`, liveness on
`/healthz`, readiness on `/ready`.

Served from the consumer's start, in its own event loop (unlike the api's, `api/status.py`, it has
no flood of connections to keep its probes apart from), so that a consumer waiting for Kafka is
seen as what it is: alive (`/healthz` 200, it retries with backoff: restarting it would only wait
again) and not ready (`/ready` 503 saying what it waits for) until its producer has reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from weir.consumer.runner import ConsumerLoop
from weir.core.config import Settings
from weir.observability import metrics
from weir.serving import REQUEST_ID_HEADER, SideServer, error_body, request_id, server_options
from weir.status import status_app

READY = {"status": "ready"}
WAITING_FOR_PRODUCER = "kafka: not reachable yet (the dead letters' producer), retrying"
WAITING_FOR_GROUP = "kafka: joining the consumer group"


class ConsumerStatus:
    """The consumer as its status port sees it: `loop` is set once the loop exists (after the
    dead letters' producer reached Kafka)."""

    def __init__(self) -> None:
        self.loop: ConsumerLoop | None = None

    def waiting_for(self) -> str | None:
        """What keeps the consumer from being ready; None once it has reached Kafka. Not the
        group's assignment: a rebalance may wait up to the rebalance timeout for another
        member's flush (a store outage), no reason to hold a rollout or count the pod unready
        (tests/cluster/test_scaling.py scales out while ClickHouse is refused)."""
        return WAITING_FOR_PRODUCER if self.loop is None else None

    def joined(self) -> ConsumerLoop | None:
        """The loop once its group client has started (partitions assigned), else None."""
        loop = self.loop
        return loop if loop is not None and loop.joined else None


async def lag_by_partition(loop: ConsumerLoop) -> dict[str, int]:
    lag = await loop.consumer.lag()
    for tp, value in lag.items():
        metrics.LAG.labels(partition=str(tp.partition)).set(value)
    return {
        f"{tp.topic}/{tp.partition}": value
        for tp, value in sorted(lag.items(), key=lambda item: item[0].partition)
    }


def consumer_status_app(consumer: ConsumerStatus, settings: Settings) -> Starlette:
    def waiting(request: Request, waiting_for: str) -> Response:
        given = request.headers.get(REQUEST_ID_HEADER)
        body = error_body(
            waiting_for, request_id(given), status="not ready", waiting_for=waiting_for
        )
        return Response(body, status_code=503, media_type="application/json")

    async def status(request: Request) -> Response:
        loop = consumer.joined()
        if loop is None:  # no lag to tell before the group has assigned partitions
            return waiting(request, consumer.waiting_for() or WAITING_FOR_GROUP)
        lag = await lag_by_partition(loop)
        body: dict[str, Any] = {
            "group": settings.kafka_consumer_group,
            "topic": settings.kafka_topic,
            "lag": lag,
            "total_lag": sum(lag.values()),
            "batch_records": len(loop.batch),
            "last_flush_at": loop.last_flush_at,
        }
        return JSONResponse(body)

    async def healthz(_: Request) -> JSONResponse:
        waiting_for = consumer.waiting_for()
        extra = {} if waiting_for is None else {"waiting_for": waiting_for}
        return JSONResponse({"status": "healthy", **extra})

    async def ready(request: Request) -> Response:
        waiting_for = consumer.waiting_for()
        return JSONResponse(READY) if waiting_for is None else waiting(request, waiting_for)

    routes = [Route("/status", status), Route("/healthz", healthz), Route("/ready", ready)]
    return status_app(routes)


async def serve_status(consumer: ConsumerStatus, settings: Settings) -> None:
    """Serve on `WEIR_HOST`:`WEIR_METRICS_PORT` until cancelled; also refresh the lag gauge every
    few seconds once the consumer consumes."""
    options = server_options(settings)
    config = uvicorn.Config(
        consumer_status_app(consumer, settings),
        host=settings.host,
        port=settings.metrics_port,
        **options,
    )
    server = SideServer(config)

    async def refresh_lag() -> None:
        while True:
            loop = consumer.joined()
            if loop is not None:
                with contextlib.suppress(Exception):
                    await lag_by_partition(loop)
            await asyncio.sleep(5)

    refresher = asyncio.create_task(refresh_lag())
    try:
        await server.serve()
    finally:
        refresher.cancel()
