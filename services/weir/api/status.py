"""The api's status port (`WEIR_METRICS_PORT`): `/health`, `/ready` and Prometheus `/metrics`,
served by the supervising process (or, on chDB, a thread of the one worker) apart from the
workers' event loops and accept queue, so that a flood on the main port does not hold a probe.

`/health` (liveness): the supervisor answers and at least one worker process is alive. uvicorn's
supervisor replaces a worker that died or stopped answering its health check, so one missing
worker is being replaced, not a reason to restart the pod. `/ready` (readiness): a worker has
finished starting, and Kafka (a fresh metadata request, the topic listed) and ClickHouse (its
ping) answer, each within `WEIR_PRODUCE_TIMEOUT_SECONDS`; else 503 naming what failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from weir.api.errors import error_response
from weir.api.routes.health import READY, not_ready
from weir.core.config import Settings
from weir.status import NotReady, check_readiness, status_app
from weir.store import Store
from weir.stream import ping_log


@dataclass(frozen=True)
class Workers:
    """The api's worker processes as the status port sees them."""

    alive: int  # processes running
    serving: int  # of those, how many have finished starting (lifespan done, accepting)
    expected: int  # how many the supervisor keeps


def api_status_app(
    settings: Settings, workers: Callable[[], Workers], store: Store, registry: CollectorRegistry
) -> Starlette:
    """`store` is the status port's own (closed by its owner), `registry` what `/metrics` shows."""

    async def health(request: Request) -> Response:
        now = workers()
        if now.alive:
            return JSONResponse({"status": "healthy", "workers": asdict(now)})
        message = "no worker process is alive"
        return error_response(request, 503, message, status="unhealthy", workers=asdict(now))

    async def serving() -> None:
        if not workers().serving:
            raise NotReady("no worker is serving yet")

    async def ready(request: Request) -> Response:
        checks = {
            "workers": serving(),
            "kafka": ping_log(settings, topic=settings.kafka_topic),
            "clickhouse": store.ping(),
        }
        readiness = await check_readiness(checks, settings.produce_timeout_seconds)
        return JSONResponse(READY) if readiness.ready else not_ready(request, readiness)

    return status_app([Route("/health", health), Route("/ready", ready)], registry)
