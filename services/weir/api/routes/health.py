"""Liveness and readiness probes (not traced, not rate limited)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from weir.api.deps import IngestorDep, SettingsDep, StoreDep
from weir.api.errors import error_response

router = APIRouter(tags=["health"])


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
        "clickhouse": asyncio.wait_for(store.ping(), timeout),
    }
    outcomes = await asyncio.gather(*checks.values(), return_exceptions=True)
    failed = {
        name: outcome
        for name, outcome in zip(checks, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    }
    if not failed:
        return {"status": "ready"}
    message = "; ".join(f"{name}: {_plain(error)}" for name, error in failed.items())
    detail = "; ".join(f"{name}: {error!r}" for name, error in failed.items())
    return error_response(
        request, 503, message, detail=detail, status="not ready", failed=sorted(failed)
    )


def _plain(error: BaseException) -> str:
    return "no answer in time" if isinstance(error, TimeoutError) else "not available"
