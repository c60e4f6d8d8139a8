"""Prometheus request count and latency by route template (not raw path, whose ids would explode
the label cardinality): `record` for the ingestion routes served in front of FastAPI
(api/front.py), `PrometheusMiddleware` for every other route."""

from __future__ import annotations

import functools
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weir.observability import metrics

UNMATCHED = "unmatched"
# Whole-request refusals of event routes, counted as rejected events with these reasons.
REFUSED_BY_STATUS = {413: "size", 415: "content_type"}
EVENT_ROUTES = ("/events", "/events/batch")


@functools.cache
def _request_counter(route: str, method: str, status: int) -> Counter:
    # `labels()` looks the child up under a lock each time: ~4 µs per request, cached here.
    return metrics.HTTP_REQUESTS.labels(route, method, str(status))


@functools.cache
def _latency(route: str) -> Histogram:
    return metrics.HTTP_SECONDS.labels(route)


def record(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request of `route` (a path template)."""
    _request_counter(route, method, status).inc()
    _latency(route).observe(seconds)
    if route in EVENT_ROUTES and status in REFUSED_BY_STATUS:
        metrics.reject(REFUSED_BY_STATUS[status])


class PrometheusMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before answering

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            record(route_of(scope), scope["method"], status, time.perf_counter() - started)


def route_of(scope: Scope) -> str:
    """The path template of the route that handled the request (the router records it in the
    scope), e.g. `/metrics`; `unmatched` for 404s."""
    return str(getattr(scope.get("route"), "path", UNMATCHED))
