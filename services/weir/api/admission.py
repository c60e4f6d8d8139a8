"""Admission control: a bounded number of requests in flight per worker; the rest are refused.

Past `limit` requests being handled, a request is answered `503` with `Retry-After` before any of
its body is read, so overload costs the client one round trip instead of a wait in a queue, and
the requests already admitted keep their latency. Probes are never refused: a kubelet must see
a busy worker as alive.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from weir.observability import metrics
from weir.serving import REQUEST_ID_HEADER, error_body, request_id

PROBES = frozenset({"/health", "/ready"})


class AdmissionControl:
    def __init__(self, app: ASGIApp, limit: int, retry_after_seconds: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self._retry_after = str(retry_after_seconds).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            metrics.SHED.inc()
            await self._refuse(scope, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _refuse(self, scope: Scope, send: Send) -> None:
        given = next((v for k, v in scope["headers"] if k == _REQUEST_ID), None)
        request = request_id(given.decode("latin-1") if given is not None else None)
        body = error_body("overloaded: too many requests in flight, retry later", request)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"retry-after", self._retry_after),
            (_REQUEST_ID, request.encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_REQUEST_ID = REQUEST_ID_HEADER.encode()
