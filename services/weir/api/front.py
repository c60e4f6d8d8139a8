"""The ingestion routes, served in front of FastAPI's stack.

POST /events and /events/batch are most of the API's traffic and their endpoints need nothing of
FastAPI: they read raw bodies and raise `ApiError` (routes/events.py). Going through FastAPI's
native telemetry, its middleware stack, the exception middleware and the router cost ~140 µs of
CPU per request, more than the endpoint itself (~100 µs with its Kafka send; measured on one
worker, wrk with 64 connections). So `WeirApp` (app.py) hands them to `serve` first, which does
what those layers did for them, and nothing more: the SERVER span (same name and parenting as
FastAPI's), the Prometheus request count and latency, errors answered by errors.py as the
exception handlers answer them. Browsers' requests too: CORS is answered in front of both paths,
by api/cors.py, when origins are configured.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from weir.api.errors import ApiError, api_error_response, unexpected_error_response
from weir.observability import http, tracing

Endpoint = Callable[[Request], Awaitable[Response]]
_TRACE_HEADERS = {name.encode(): name for name in tracing.TRACE_HEADERS}


class Front:
    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = {
            (method, route.path): route for route in routes for method in route.methods or ()
        }

    def route_for(self, scope: Scope) -> Route | None:
        if scope["type"] != "http":
            return None
        return self._routes.get((scope["method"], scope["path"]))

    async def serve(
        self, app: ASGIApp, route: Route, scope: Scope, receive: Receive, send: Send
    ) -> None:
        parent: dict[str, str] | None = None
        for name, value in scope["headers"]:
            if name in _TRACE_HEADERS:
                parent = parent or {}
                parent[_TRACE_HEADERS[name]] = value.decode("latin-1")
        started = time.perf_counter()
        scope["app"], scope["route"] = app, route
        endpoint: Endpoint = route.endpoint
        with tracing.server_span(scope["method"], route.path, scope["path"], parent) as span:
            request = Request(scope, receive)
            try:
                response = await endpoint(request)
            except ApiError as error:
                response = api_error_response(request, error)
            except Exception as error:  # a bug: answered as the full stack would, and logged
                response = unexpected_error_response(request, error)
            if span.is_recording():
                span.set_attribute("http.response.status_code", response.status_code)
            await response(scope, receive, send)
        elapsed = time.perf_counter() - started
        http.record(route.path, scope["method"], response.status_code, elapsed)
