"""uvicorn servers as Weir runs them: graceful SIGTERM, no `server` header, error bodies with a
request id, stalled connections timed out and overload refused at the HTTP protocol."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import secrets
import signal
import time
from collections.abc import Iterator
from typing import Any

import orjson
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from weir.core.config import Settings
from weir.observability import metrics

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "x-request-id"
PROBES = frozenset({"/health", "/ready"})
# Where the app's admission control is handed to the protocol (lifespan state) and where the
# protocol marks a request it admitted (scope extensions).
ADMISSION = "weir.admission"
OVERLOADED = "overloaded: too many requests in flight, retry later"
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_REQUEST_ID = REQUEST_ID_HEADER.encode()
_PROBE_TARGETS = frozenset(probe.encode() for probe in PROBES)


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
        "timeout_keep_alive": settings.api_keepalive_timeout_seconds,
    }


class LatencyLimit:
    """An in-flight limit that follows the latency of what it admits: additive increase,
    multiplicative decrease against a latency target (AIMD, as TCP's congestion window, here
    driven by latency as Netflix's concurrency-limits are).

    Pure logic: samples carry their own times. A sample is one admitted request's wait on what is
    downstream, from `started` to `finished` (the API's: from a send to Kafka's ack). Samples are
    judged by windows of at least `WINDOW_SECONDS` and `MIN_SAMPLES`: when more than
    `SLOW_SHARE` of a window's samples took longer than `target` (its p90 is over it), the limit
    shrinks by the ratio of the target to the window's mean latency (by 10 % to 50 %), never below
    `floor`; otherwise it grows by a tenth (at least 1), never above `ceiling`. Requests waiting
    longer than they should means more are admitted than downstream serves promptly: by Little's
    law a smaller limit at the same throughput is a shorter wait, and the rest is refused at once.
    After a change only samples started since count, so the waits of requests admitted under the
    old limit do not cut the new one again (an overshoot to the floor).

    A cut is a test of that law, checked by the next window: when its mean wait fell by less than
    half of what the cut predicted (a cut to 0.5 of the limit predicts 0.5 of the wait; undone
    above 0.75 of it), the waits were not a queue of our making and the cut is undone, and no
    slow window cuts again for `HOLD_SECONDS`. Such waits are a broker stalled whatever is sent
    (a pause, a leader election), or a machine short of CPU: under a flood of 1,000 connections
    on 2 cores, acks took ~160 ms at a limit of 32 and at 128 alike, and a limit that stayed cut
    accepted 377 req/s against 1,350 with a fixed limit, refusing work it could have done in the
    same time. Kafka batches what waits for a partition into one request, so more in flight is
    seldom a longer wait; what makes it one is a bound on bytes (a quota, a saturated disk or
    link), and there a cut holds.
    """

    WINDOW_SECONDS = 0.1
    MIN_SAMPLES = 8
    SLOW_SHARE = 0.1
    HOLD_SECONDS = 5.0

    def __init__(self, floor: int, ceiling: int, target: float, now: float) -> None:
        self.floor = min(floor, ceiling)
        self.ceiling = ceiling
        self.target = target
        self.limit = ceiling  # as a fixed limit would be, until latency says otherwise
        self._since = now
        self._window_end = now + self.WINDOW_SECONDS
        self._samples = self._slow = 0
        self._total = 0.0
        # The last cut until the window after it is judged: (limit before, mean wait before).
        self._cut: tuple[int, float] | None = None
        self._hold_until = now

    def observe(self, started: float, finished: float) -> bool:
        """Count one sample; True when it closed a window that changed the limit."""
        if started < self._since:
            return False  # admitted under an earlier limit
        latency = finished - started
        self._samples += 1
        self._total += latency
        if latency > self.target:
            self._slow += 1
        if finished < self._window_end or self._samples < self.MIN_SAMPLES:
            return False
        return self._judge(finished)

    def _judge(self, now: float) -> bool:
        samples, slow, mean = self._samples, self._slow, self._total / self._samples
        self._samples = self._slow = 0
        self._total = 0.0
        self._window_end = now + self.WINDOW_SECONDS
        cut, self._cut = self._cut, None
        if cut is not None:
            before, waited = cut
            predicted = waited * self.limit / before
            if mean > (waited + predicted) / 2:  # the cut did not shorten the waits
                self._hold_until = now + self.HOLD_SECONDS
                return self._change(before, now)
        if slow <= samples * self.SLOW_SHARE:
            return self._change(min(self.ceiling, self.limit + max(1, self.limit // 10)), now)
        if now < self._hold_until:
            return False
        ratio = min(0.9, max(0.5, self.target / mean))
        limit = max(self.floor, int(self.limit * ratio))
        if limit != self.limit:
            self._cut = (self.limit, mean)
        return self._change(limit, now)

    def _change(self, limit: int, now: float) -> bool:
        if limit == self.limit:
            return False
        self.limit = limit
        self._since = now
        return True


class Admission:
    """Admission control of one worker: at most `limit` requests in flight; past it a request is
    answered `503` + `Retry-After` before any of its body is read, so overload costs the client a
    round trip instead of a wait in a queue, and the admitted requests keep their latency. Probes
    are never refused: a kubelet must see a busy worker as alive.

    The limit follows latency when `latency_target` is set (`LatencyLimit`, between `floor` and
    `ceiling`): the app reports each admitted request's wait downstream (`observe`: the API's
    sends to Kafka), and when those waits grow past the target the worker admits fewer at once.
    Without a target the limit is `ceiling`, fixed. A refusal costs one comparison either way.

    One count, two places that decide with it. The HTTP protocol (`TimedHttpProtocol`) decides for
    nearly every request, when its headers are parsed: a refusal is written to the socket there,
    with no ASGI task, scope or middleware (what it costs is in README's Overload). The `gate`,
    outermost in the app, releases the places the protocol granted and decides itself for what the
    protocol leaves to it: a request pipelined behind an unfinished response (decided when it
    starts), a browser's when CORS is on (`browsers_in_app`: CORS headers make its 503 readable),
    and every request when no Weir protocol serves the app (an ASGI test client).
    A refused request is counted in `weir_http_shed_total`, not in the per-route request metrics:
    it never reached a route.
    """

    def __init__(
        self,
        ceiling: int,
        retry_after_seconds: int,
        *,
        browsers_in_app: bool,
        floor: int = 1,
        latency_target: float = 0.0,
    ) -> None:
        self.limit = ceiling
        self.in_flight = 0
        self.browsers_in_app = browsers_in_app
        self._limiter = (
            LatencyLimit(floor, ceiling, latency_target, time.perf_counter())
            if latency_target > 0
            else None
        )
        self._retry_after = str(retry_after_seconds).encode()
        self._fixed_lines = b"content-type: application/json\r\nretry-after: %s\r\n" % (
            self._retry_after
        )
        metrics.ADMISSION_LIMIT.set(ceiling)

    def admit(self) -> bool:
        """Take a place, if one is free."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    def observe(self, started: float, finished: float) -> None:
        """An admitted request waited downstream from `started` to `finished`
        (`time.perf_counter`); the limit follows (when a latency target is set)."""
        limiter = self._limiter
        if limiter is not None and limiter.observe(started, finished):
            self.limit = limiter.limit
            metrics.ADMISSION_LIMIT.set(self.limit)

    def refused(self, given_id: bytes | None) -> tuple[bytes, bytes]:
        """A refusal, counted as shed: the request's id (its `X-Request-ID` when that is a plain
        token, else a new one) and the 503's body."""
        metrics.SHED.inc()
        request = request_id(given_id.decode("latin-1") if given_id is not None else None)
        return request.encode(), error_body(OVERLOADED, request)

    def headers(self, request: bytes, body: bytes) -> list[tuple[bytes, bytes]]:
        """The 503's headers, as ASGI sends them."""
        return [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"retry-after", self._retry_after),
            (_REQUEST_ID, request),
        ]

    def header_lines(self, request: bytes, body: bytes) -> bytes:
        """The same headers, as the protocol writes them."""
        return b"%scontent-length: %d\r\nx-request-id: %s\r\n" % (
            self._fixed_lines,
            len(body),
            request,
        )

    def gate(self, app: ASGIApp) -> AdmissionGate:
        return AdmissionGate(app, self)


class AdmissionGate:
    """The ASGI side of `Admission` (see there): hands it to the protocol at startup, through the
    lifespan state that uvicorn gives each connection's protocol."""

    def __init__(self, app: ASGIApp, admission: Admission) -> None:
        self.app = app
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and "state" in scope:
                scope["state"][ADMISSION] = self.admission
            await self.app(scope, receive, send)
            return
        if ADMISSION not in scope.get("extensions", ()):  # not admitted by the protocol
            if scope["path"] in PROBES:
                await self.app(scope, receive, send)
                return
            if not self.admission.admit():
                given = next((v for k, v in scope["headers"] if k == _REQUEST_ID), None)
                request, body = self.admission.refused(given)
                headers = self.admission.headers(request, body)
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        try:
            await self.app(scope, receive, send)
        finally:
            self.admission.release()


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines on reading a request, and admission control.

    Deadlines: a request's headers within `header_timeout` seconds of the connection opening or
    the request's first byte, else the connection is closed (as nginx does); its body within
    `body_timeout` seconds of its headers, else `408` and the connection is closed. Without them a
    client that stops sending holds a connection, and an admission place, for ever. The checks
    sit in the parser's callbacks, so a request costs no middleware, and one timer serves the
    connection: a new deadline moves only a number, and the timer, when it fires early, is set
    again for the current one (it is replaced only when a deadline comes earlier than it).

    Admission: when the app has an `Admission` (handed over at startup by its `AdmissionGate`),
    a request over the limit is answered `503` here, as soon as its headers are parsed, and its
    body is read past and dropped: no ASGI task, scope or middleware is spent on it. The
    connection stays open when the request allows it (HTTP/1.1, no `Connection: close`), and is
    closed once idle for uvicorn's keep-alive timeout (checked when the timer fires: up to the
    header timeout late); it is closed at once when the client waits for `100 Continue`, since it
    was never told to send the body.
    """

    def __init__(
        self, *args: Any, header_timeout: float, body_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._phase = "idle"  # "headers", "body", "idle" or "kept" (after a refusal)
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._admission: Admission | None = self.app_state.get(ADMISSION)
        self._refused = False  # the current request was answered 503: its body is dropped
        self._close_after_refusal = False
        self._reads_wait_for_writes = False  # refusals are written faster than they are read

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
        self._expect("body", self._body_timeout)
        admission = self._admission
        if admission is not None and self._decides_admission(admission):
            if not admission.admit():
                self._refuse(admission)
                return
            self.scope.setdefault("extensions", {})[ADMISSION] = {}  # the gate releases it
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            self._phase = "idle"  # the app has it: no deadline until the next request
            super().on_message_complete()
            return
        self._refused = False
        if self._close_after_refusal:
            self._phase = "idle"
            self.transport.close()
        else:  # uvicorn's keep-alive, on this timer (no late close harms an idle connection)
            self._expect("kept", self.timeout_keep_alive, exact=False)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._reads_wait_for_writes:
            self._reads_wait_for_writes = False
            self.flow.resume_reading()

    def _decides_admission(self, admission: Admission) -> bool:
        """Whether this request is admitted or refused here rather than by the gate: not a probe
        (as a kubelet sends it: no query, no escapes), no earlier response still owed on this
        connection, and not a browser's while CORS answers in the app."""
        if self.url.partition(b"?")[0] in _PROBE_TARGETS:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False
        return not (admission.browsers_in_app and any(k == b"origin" for k, _ in self.headers))

    def _refuse(self, admission: Admission) -> None:
        given = None
        for name, value in self.headers:
            if name == _REQUEST_ID:
                given = value
                break
        request, body = admission.refused(given)
        parser = self.parser
        keep_alive = (
            not self.expect_100_continue
            and parser.should_keep_alive()
            and parser.get_http_version() != "1.0"
        )
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[503],
                    *[b"%s: %s\r\n" % header for header in self.server_state.default_headers],
                    admission.header_lines(request, body),
                    b"\r\n" if keep_alive else b"connection: close\r\n\r\n",
                    body if parser.get_method() != b"HEAD" else b"",
                ]
            )
        )
        self.server_state.total_requests += 1
        self._refused, self._close_after_refusal = True, not keep_alive
        if self.expect_100_continue:  # what follows is its body, or the next request: unknowable
            self.transport.close()
        elif self.flow.write_paused:  # a client that sends and does not read
            self._reads_wait_for_writes = True
            self.flow.pause_reading()

    def send_400_response(self, msg: str) -> None:
        self._respond(400, f"request: not valid HTTP/1.1 ({msg.rstrip('.')})")

    def _expect(self, phase: str, timeout: float, exact: bool = True) -> None:
        """Enter `phase`, due within `timeout` seconds (`exact`: not later)."""
        self._phase = phase
        self._deadline = deadline = self.loop.time() + timeout
        timer = self._timer
        if timer is not None:
            if not exact or timer.when() <= deadline:  # it fires first and finds the deadline
                return
            timer.cancel()
        self._timer = self.loop.call_at(deadline, self._on_timer)

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
        if self._phase == "kept":  # idle since a refusal for the keep-alive timeout
            self.transport.close()
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
