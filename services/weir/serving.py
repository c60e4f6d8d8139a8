"""uvicorn servers as Weir runs them: graceful SIGTERM, no `server` header, error bodies with a
request id, and stalled connections timed out at the HTTP protocol."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import secrets
import signal
from collections.abc import Iterator
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from weir.core.config import Settings
from weir.observability import metrics

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-request-id"
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(given: str | None) -> str:
    """The id of a request in its error body and log lines: the caller's `X-Request-ID` when it
    is a plain token (a proxy's id joins both logs), else a new one."""
    if given is not None and _GIVEN_ID.fullmatch(given):
        return given
    return secrets.token_hex(8)


def error_body(message: str, request: str, **extra: Any) -> bytes:
    """Every error body of Weir's HTTP servers: `{"error": <plain message>, "request_id"}`
    (and what a route adds, such as a batch's results)."""
    return orjson.dumps({"error": message, "request_id": request, **extra})


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options every Weir HTTP server shares (`weir api`, `weir dev`, the consumer's
    status port)."""
    protocol = functools.partial(
        TimedHttpProtocol,
        header_timeout=settings.api_header_timeout_seconds,
        body_timeout=settings.api_body_timeout_seconds,
    )
    return {
        "log_config": None,
        "server_header": False,  # what a client needs to know is the API, not what serves it
        "http": protocol,
        "ws": "none",  # no WebSocket routes: an upgrade request is a plain request
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
    }


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines on reading a request: its headers within
    `header_timeout` seconds of the connection opening or the request's first byte, else the
    connection is closed (as nginx does); its body within `body_timeout` seconds of its headers,
    else `408` and the connection is closed. Without them a client that stops sending holds a
    connection, and an admission slot, for ever.

    One timer per request, re-armed only when a phase outlives the previous deadline: the checks
    sit in the parser's callbacks, so a request costs no middleware.
    """

    def __init__(
        self, *args: Any, header_timeout: float, body_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._phase = "idle"  # "headers", "body" or "idle"
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect("headers", self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != "headers":  # else: the deadline set when the connection opened
            self._expect("headers", self._header_timeout)

    def on_headers_complete(self) -> None:
        self._phase, self._deadline = "body", self.loop.time() + self._body_timeout
        if self._timer is not None and self._timer.when() > self._deadline:  # body timeout is
            self._stop_timer()  # the shorter one: the timer must not wait for the header's
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
        super().on_headers_complete()  # else the timer fires first and finds the body deadline

    def on_message_complete(self) -> None:
        self._phase = "idle"
        self._stop_timer()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._respond(400, f"request: not valid HTTP/1.1 ({msg.rstrip('.')})")

    def _expect(self, phase: str, timeout: float) -> None:
        self._phase, self._deadline = phase, self.loop.time() + timeout
        if self._timer is None:
            self._timer = self.loop.call_later(timeout, self._on_timer)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._phase == "idle" or self.transport.is_closing():
            return
        left = self._deadline - self.loop.time()
        busy = self.pipeline or (self._phase == "headers" and not self._answered())
        if left > 0 or busy:  # the deadline moved on; or an earlier response is in flight
            self._timer = self.loop.call_later(max(left, 0.05), self._on_timer)
            return
        metrics.HTTP_STALLED.labels(self._phase).inc()
        if self._phase == "headers":
            self.transport.close()
            return
        cycle = self.cycle
        if cycle is None or cycle.response_started:  # answered without reading it all
            self.transport.close()
            return
        cycle.disconnected = True  # the app, still reading, answers no one (ClientDisconnect)
        cycle.message_event.set()
        seconds = f"{self._body_timeout:g}"
        self._respond(408, f"body: not received within {seconds} s", self.headers)

    def _answered(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _respond(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        given = next((v for k, v in headers or () if k == REQUEST_ID_HEADER.encode()), None)
        body = error_body(message, request_id(given.decode("latin-1") if given else None))
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: application/json\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()


class GracefulServer(uvicorn.Server):
    """On SIGTERM/SIGINT: stop accepting, finish in-flight requests, run the lifespan shutdown
    (flush the producer), then return normally so the caller can flush what it owns too.

    Stock uvicorn re-raises the signal after shutting down, which would kill the process before
    `weir dev` stops its consumer loop.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class SideServer(uvicorn.Server):
    """A secondary server (status, metrics) that leaves signals to the process's own logic."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
