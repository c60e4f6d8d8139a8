"""The FastAPI application: wiring of routes, error handlers and the parts' lifecycle."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Receive, Scope, Send

from weir.api.auth import Authenticator
from weir.api.cors import with_cors
from weir.api.errors import install_error_handlers
from weir.api.front import Front
from weir.api.ingest import Ingestor, SendObserver, ignore_send
from weir.api.openapi import install_document
from weir.api.routes import erasure, events, health, metrics, segment, stored
from weir.core.config import Settings
from weir.observability.http import PrometheusMiddleware
from weir.parts import open_parts
from weir.serving import PROBES, Admission
from weir.store import Store
from weir.stream import Producer

# FastAPI's native OpenTelemetry: one SERVER span per request, named after the route, in the
# global tracer provider (`weir.observability.tracing`). Probes stay untraced: they would drown
# real traces at one span per kubelet check. No spans per dependency and endpoint, no OTel metrics
# or logs: Prometheus and our JSON logs cover those, and each costs CPU on every request.
TELEMETRY: TelemetryConfig = {
    "tracing": True,
    "operation_spans": False,
    "metrics": False,
    "logs": False,
    "exclude": lambda scope: scope.get("path") in PROBES,
}


class WeirApp(FastAPI):
    """FastAPI, with the ingestion routes served in front of its stack (front.py). Only
    `__call__` differs, so the app FastAPIOffline builds (a plain FastAPI with offline docs)
    becomes one by its class alone."""

    front = Front(events.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.front.route_for(scope)
        if route is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front.serve(self, route, scope, receive, send)


def create_app(
    settings: Settings,
    producer: Producer | None = None,
    store: Store | None = None,
    workers: int = 1,
    clock: Callable[[], float] = time.time,
    on_sent: SendObserver = ignore_send,
) -> FastAPI:
    """Build the app. Parts passed in are owned by the caller (e.g. `weir dev`); parts left out
    are built from the settings, started with the app and stopped (producer flushed) on shutdown.
    `workers`: how many processes serve the same keys (each gets its share of every quota).
    `on_sent`: told how long each send waited for the broker (admission control follows it).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # No DDL here: the migration owner (operator, `weir migrate`, `weir dev`) runs it.
        async with open_parts(settings, store=store, producer=producer) as parts:
            app.state.settings = settings
            app.state.auth = Authenticator.from_settings(settings, workers)
            app.state.store = parts.store
            app.state.table_spec = parts.spec
            app.state.ingestor = Ingestor(parts.producer, settings, clock=clock, on_sent=on_sent)
            yield

    app = FastAPIOffline(
        title="Weir",
        summary="Event ingestion and metrics: HTTP -> Kafka -> ClickHouse.",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=TELEMETRY,
    )
    app.__class__ = WeirApp
    install_error_handlers(app)
    install_document(app, settings)
    app.router.routes.extend(events.routes)
    app.include_router(metrics.router)
    app.include_router(segment.router)
    app.include_router(stored.router)
    app.include_router(erasure.router)
    app.include_router(health.router)
    app.add_middleware(PrometheusMiddleware)
    return app


def serving_app(
    settings: Settings,
    producer: Producer | None = None,
    store: Store | None = None,
    workers: int = 1,
    clock: Callable[[], float] = time.time,
) -> ASGIApp:
    """What a server runs: the app behind admission control, outside FastAPI (`Admission` in
    weir/serving.py: the HTTP protocol refuses past the limit before any ASGI work, the gate
    releases places and decides what the protocol leaves to it; the limit follows how long sends
    wait for Kafka's ack); CORS, when origins are configured, in front of both (`api/cors.py`),
    so that a browser's 503 is readable."""
    admission = Admission(
        settings.api_max_in_flight,
        settings.retry_after_seconds,
        browsers_in_app=bool(settings.api_cors_origins),
        floor=settings.api_min_in_flight,
        latency_target=settings.api_latency_target_seconds,
    )
    app = create_app(
        settings,
        producer=producer,
        store=store,
        workers=workers,
        clock=clock,
        on_sent=admission.observe,
    )
    return with_cors(admission.gate(app), settings.api_cors_origins)
