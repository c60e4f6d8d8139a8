"""Liveness and readiness probes (not traced, not rate limited)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from weir.api.deps import IngestorDep, SettingsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "healthy"}


@router.get("/ready", responses={503: {}})
async def ready(ingestor: IngestorDep, store: StoreDep, settings: SettingsDep) -> Any:
    """Kafka and ClickHouse both answer; otherwise 503 naming what failed."""
    timeout = settings.produce_timeout_seconds
    checks = {
        "kafka": ingestor.producer.ping(timeout=timeout, topic=settings.kafka_topic),
        "clickhouse": asyncio.wait_for(store.ping(), timeout),
    }
    outcomes = await asyncio.gather(*checks.values(), return_exceptions=True)
    failed = {
        name: _reason(outcome)
        for name, outcome in zip(checks, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    }
    if not failed:
        return {"status": "ready"}
    message = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
    return JSONResponse(
        {"status": "not ready", "error": message, "failed": sorted(failed)}, status_code=503
    )


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return str(error) or type(error).__name__
