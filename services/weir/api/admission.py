"""Admission control: a bounded number of requests in flight per worker; the rest are refused.

Past `limit` requests being handled, a request is answered `503` with `Retry-After` before any of
its body is read, so overload costs the client one round trip instead of a wait in a queue, and
the requests already admitted keep their latency. Probes are never refused: a kubelet must see
a busy worker as alive.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from weir.observability import metrics

PROBES = frozenset({"/health", "/ready"})


class AdmissionControl:
    def __init__(self, app: ASGIApp, limit: int, retry_after_seconds: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self._body = b'{"error":"overloaded: too many requests in flight, retry later"}'
        self._headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
            (b"retry-after", str(retry_after_seconds).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            metrics.SHED.inc()
            await send({"type": "http.response.start", "status": 503, "headers": self._headers})
            await send({"type": "http.response.body", "body": self._body})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
