"""CORS for browser SDKs on the ingestion routes, from `WEIR_API_CORS_ORIGINS` (none by default).

Starlette's CORSMiddleware does the work (preflights, `Vary`, allowed headers), wrapped so that
it sees only the ingestion routes and is not in the stack at all when no origin is configured:
the hot path pays nothing for a feature it does not use. It sits outside admission control's
gate, so a preflight is never refused as overload and a 503 still carries the headers a browser
needs to read it (with origins configured, the HTTP protocol leaves requests with an `Origin` to
that gate instead of refusing them itself: `Admission` in weir/serving.py).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from weir.serving import REQUEST_ID_HEADER, error_body, request_id

# Weir's own and Segment's (analytics.js runs in pages).
INGESTION_ROUTES = frozenset({"/events", "/events/batch", "/v1/track", "/v1/batch"})
# What an SDK sends (a key, JSON or NDJSON, maybe gzip) and what it reads back: a refusal's
# Retry-After and RateLimit-*, the request id, the store's share of a /metrics answer.
ALLOWED_HEADERS = ("authorization", "content-type", "content-encoding", REQUEST_ID_HEADER)
EXPOSED_HEADERS = (
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    REQUEST_ID_HEADER,
    "server-timing",
)
PREFLIGHT_MAX_AGE = 600


def with_cors(app: ASGIApp, origins: list[str]) -> ASGIApp:
    return IngestionCors(app, origins) if origins else app


class IngestionCors:
    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        self.app = app
        self.cors = _JsonCors(
            app,
            allow_origins=origins,
            allow_methods=["POST"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in INGESTION_ROUTES:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class _JsonCors(CORSMiddleware):
    """A refused preflight answers in Weir's error shape, not Starlette's plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        body = error_body(
            f"cors: this {refused} may not call the API from a browser",
            request_id(request_headers.get(REQUEST_ID_HEADER)),
        )
        kept = {
            name: value
            for name, value in response.headers.items()
            if name not in ("content-length", "content-type")
        }
        return Response(body, response.status_code, kept, media_type="application/json")
