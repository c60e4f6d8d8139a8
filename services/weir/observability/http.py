"""ASGI middleware: Prometheus request count and latency by route template (not raw path, whose
ids would explode the label cardinality)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weir.observability import metrics

UNMATCHED = "unmatched"
# Whole-request refusals of event routes, counted as rejected events with these reasons.
REFUSED_BY_STATUS = {413: "size", 415: "content_type"}
EVENT_ROUTES = ("/events", "/events/batch")


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
            route = route_of(scope)
            metrics.HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            metrics.HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)
            if route in EVENT_ROUTES and status in REFUSED_BY_STATUS:
                metrics.reject(REFUSED_BY_STATUS[status])


def route_of(scope: Scope) -> str:
    """The path template of the route that handled the request (the router records it in the
    scope), e.g. `/events/batch`; `unmatched` for 404s."""
    return str(getattr(scope.get("route"), "path", UNMATCHED))
