"""Liveness and readiness probes on the main port (not traced, not rate limited, never refused).

The same probes, answered apart from the workers, are on the status port (`api/status.py`): that
is where the chart's kubelet probes go.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response

from weir.api.deps import IngestorDep, SettingsDep, StoreDep
from weir.api.errors import error_response
from weir.status import Readiness, check_readiness

router = APIRouter(tags=["health"])
READY = {"status": "ready"}


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "healthy"}


@router.get("/ready", responses={503: {}})
async def ready(
    request: Request, ingestor: IngestorDep, store: StoreDep, settings: SettingsDep
) -> Any:
    """Kafka and ClickHouse both answer; otherwise 503 naming what failed."""
    timeout = settings.produce_timeout_seconds
    checks = {
        "kafka": ingestor.producer.ping(timeout=timeout, topic=settings.kafka_topic),
        "clickhouse": store.ping(),
    }
    readiness = await check_readiness(checks, timeout)
    return READY if readiness.ready else not_ready(request, readiness)


def not_ready(connection: HTTPConnection, readiness: Readiness) -> Response:
    """The 503 of a failed readiness check: the failed checks named in `failed`, why logged."""
    return error_response(
        connection,
        503,
        readiness.message,
        detail=readiness.detail,
        status="not ready",
        failed=list(readiness.failed),
    )
