"""Admission control at the HTTP protocol (weir/serving.py), with the app served by uvicorn as
`weir api` runs it, over raw sockets: past the in-flight limit a request to any route but the
probes is answered 503 as soon as its headers are in, its body is read past without desyncing
the connection, which stays usable; admitted requests are served as before."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.api.doubles import IdleStore, StalledProducer
from tests.harness.serve import served
from weir.api import serving_app
from weir.core.config import Settings
from weir.serving import Admission, AdmissionGate

EVENT = orjson.dumps(
    {"event_name": "signup", "channel": "web", "user_id": "u1", "timestamp": int(time.time())}
)
APP_ORIGIN = "https://app.example.com"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, str]:
        loaded: dict[str, str] = orjson.loads(self.body)
        return loaded


class Connection:
    """One keep-alive connection: raw bytes out, whole responses in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, receive_buffer: int | None = None) -> Connection:
        sock = socket.socket()
        if receive_buffer is not None:  # before connecting: the window is agreed then
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(*await asyncio.open_connection(sock=sock))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> Response:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout=10)
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers = dict(line.split(": ", 1) for line in lines)
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(self.reader.readexactly(length), timeout=10)
        return Response(int(status_line.split()[1]), headers, body)

    async def closed_by_server(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), timeout=10) == b""

    def close(self) -> None:
        self.writer.close()


class Recorder:
    """In front of the app: the requests that reached any ASGI layer at all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@dataclass
class Served:
    port: int
    admission: Admission
    producer: StalledProducer
    app: Recorder


@asynccontextmanager
async def serving(settings: Settings, keep_alive: float = 5) -> AsyncIterator[Served]:
    producer = StalledProducer()
    app = Recorder(serving_app(settings, producer=producer, store=IdleStore()))  # type: ignore[arg-type]
    async with served(app, settings, timeout_keep_alive=keep_alive) as port:
        try:
            yield Served(port, admission_of(app.app), producer, app)
        finally:
            producer.release.set()


def admission_of(app: ASGIApp) -> Admission:
    while not isinstance(app, AdmissionGate):  # CORS, when on, is in front of it
        app = app.app  # type: ignore[attr-defined]
    return app.admission


def post(path: str = "/events", body: bytes = EVENT, *headers: bytes) -> bytes:
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"host: weir", *headers]
    lines += [b"content-type: application/json", b"content-length: %d" % len(body)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked_batch() -> bytes:
    """POST /events/batch with its JSON array in three chunks."""
    body = b"[" + EVENT + b"," + EVENT + b"]"
    chunks = [body[:5], body[5:40], body[40:]]
    head = b"POST /events/batch HTTP/1.1\r\nhost: weir\r\ncontent-type: application/json\r\n"
    head += b"transfer-encoding: chunked\r\n\r\n"
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def get(path: str) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nhost: weir\r\n\r\n"


async def hold(served: Served, count: int) -> list[Connection]:
    """`count` more requests admitted and waiting on the producer, one per connection."""
    admitted = served.admission.in_flight + count
    held = [await Connection.open(served.port) for _ in range(count)]
    for connection in held:
        await connection.send(post())
        await settled(served, admitted - count + held.index(connection) + 1)
    return held


async def settled(served: Served, in_flight: int) -> None:
    for _ in range(500):
        if served.admission.in_flight == in_flight:
            return
        await asyncio.sleep(0.01)
    assert served.admission.in_flight == in_flight


def shed() -> float:
    return REGISTRY.get_sample_value("weir_http_shed_total") or 0.0


def stalls() -> float:
    metric = REGISTRY.get_sample_value
    return sum(
        metric("weir_http_stalled_total", {"phase": p}) or 0.0 for p in ("headers", "body", "kept")
    )


def requests_counted(route: str, status: int) -> float:
    labels = {"route": route, "method": "POST", "status": str(status)}
    return REGISTRY.get_sample_value("weir_http_requests_total", labels) or 0.0


def assert_overloaded(response: Response, retry_after: str = "3") -> None:
    assert response.status == 503, response
    assert response.headers["retry-after"] == retry_after
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["error"] == "overloaded: too many requests in flight, retry later"
    assert error["request_id"] == response.headers["x-request-id"]


async def test_refused_before_its_body_is_read_on_a_connection_that_stays_usable() -> None:
    async with serving(Settings(api_max_in_flight=2, retry_after_seconds=3)) as served:
        held = await hold(served, 2)
        shed_before = shed()
        counted_before = requests_counted("/events", 503)
        connection = await Connection.open(served.port)
        request = post("/events", EVENT, b"x-request-id: given-1")
        head, body = request[: -len(EVENT)], EVENT
        await connection.send(head)  # the body is not sent yet: the answer must not wait for it
        refused = await connection.response()
        assert_overloaded(refused)
        assert refused.json()["request_id"] == "given-1"
        assert "connection" not in refused.headers  # kept alive
        await connection.send(body + chunked_batch())
        refused_batch = await connection.response()
        assert_overloaded(refused_batch)
        await connection.send(post("/metrics?event_name=signup", b""))  # any route but probes
        assert_overloaded(await connection.response())
        for probe in ("/health", "/ready", "/health?verbose=1"):
            await connection.send(get(probe))
            assert (await connection.response()).status == 200, probe
        assert shed() == shed_before + 3
        assert requests_counted("/events", 503) == counted_before, "refusals reach no route"
        assert served.admission.in_flight == 2 and served.producer.sent == []
        probes = ["GET /health", "GET /ready", "GET /health"]
        assert served.app.seen == ["POST /events"] * 2 + probes, "refused before any ASGI app"

        served.producer.release.set()
        assert [(await c.response()).status for c in held] == [202, 202]
        await connection.send(post())
        assert (await connection.response()).status == 202
        assert served.admission.in_flight == 0
        for c in (*held, connection):
            c.close()


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving(Settings(api_max_in_flight=2, retry_after_seconds=3)) as served:
        held = await hold(served, 1)
        # Behind an admitted request whose answer is still owed: decided when it starts.
        await held[0].send(post())
        held += await hold(served, 1)
        # Refused, refused, a probe, refused: all in one write, bodies of both kinds.
        connection = await Connection.open(served.port)
        await connection.send(post() + chunked_batch() + get("/health") + post())
        answers = [await connection.response() for _ in range(4)]
        assert [a.status for a in answers] == [503, 503, 200, 503]
        served.producer.release.set()
        answered = [await held[0].response(), await held[0].response(), await held[1].response()]
        assert [a.status for a in answered] == [202, 202, 202]
        await connection.send(post() + get("/ready"))
        assert [(await connection.response()).status for _ in range(2)] == [202, 200]
        await settled(served, 0)
        assert len(served.producer.sent) == 4
        for c in (*held, connection):
            c.close()


async def test_a_client_that_sends_faster_than_it_reads_gets_every_answer_in_order() -> None:
    async with serving(Settings(api_max_in_flight=1, retry_after_seconds=3)) as served:
        held = await hold(served, 1)
        connection = await Connection.open(served.port, receive_buffer=4096)
        count = 20_000  # ~5 MB of answers: far more than the socket buffers hold unread
        sending = asyncio.create_task(connection.send(post() * count + get("/health")))
        await asyncio.sleep(0.5)  # the server's writes back up; its reads must wait, not stop
        answers = [(await connection.response()).status for _ in range(count + 1)]
        await sending
        assert answers == [503] * count + [200]
        await connection.send(get("/ready"))
        assert (await connection.response()).status == 200
        for c in (*held, connection):
            c.close()


async def test_closed_when_the_request_does_not_allow_keep_alive() -> None:
    settings = Settings(api_max_in_flight=1, api_body_timeout_seconds=0.5)
    async with serving(settings) as served:
        held = await hold(served, 1)
        # Waiting for `100 Continue`: never told to send its body, so the stream is ended.
        expecting = await Connection.open(served.port)
        await expecting.send(post("/events", EVENT, b"expect: 100-continue")[: -len(EVENT)])
        refused = await expecting.response()
        assert_overloaded(refused, retry_after="1")
        assert refused.headers["connection"] == "close"
        assert await expecting.closed_by_server()
        # HTTP/1.0, and `Connection: close`: answered, body read past, then closed.
        for request in (
            post().replace(b"HTTP/1.1", b"HTTP/1.0"),
            post("/events", EVENT, b"connection: close"),
        ):
            closing = await Connection.open(served.port)
            await closing.send(request)
            refused = await closing.response()
            assert refused.status == 503 and refused.headers["connection"] == "close"
            assert await closing.closed_by_server()
        # A refused request whose body never comes is closed at the body deadline.
        stalled = await Connection.open(served.port)
        await stalled.send(post()[:-10])
        assert_overloaded(await stalled.response(), retry_after="1")
        assert await stalled.closed_by_server()
        held[0].close()


async def test_a_connection_left_idle_after_a_refusal_is_closed() -> None:
    settings = Settings(api_max_in_flight=1, api_header_timeout_seconds=1)
    async with serving(settings, keep_alive=0.2) as served:
        held = await hold(served, 1)
        stalls_before = stalls()
        idle = await Connection.open(served.port)
        for _ in range(3):  # each request moves the deadline on
            await idle.send(post())
            assert_overloaded(await idle.response(), retry_after="1")
        assert await idle.closed_by_server()
        assert stalls() == stalls_before, "an idle connection is no stalled request"
        assert served.admission.in_flight == 1
        held[0].close()


async def test_a_browsers_refusal_carries_cors_headers_and_preflights_are_answered() -> None:
    settings = Settings(api_max_in_flight=1, api_cors_origins=[APP_ORIGIN])
    async with serving(settings) as served:
        held = await hold(served, 1)
        shed_before = shed()
        connection = await Connection.open(served.port)
        await connection.send(post("/events", EVENT, b"origin: " + APP_ORIGIN.encode()))
        browser = await connection.response()
        assert_overloaded(browser, retry_after="1")
        assert browser.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "retry-after" in browser.headers["access-control-expose-headers"]
        preflight = (
            b"OPTIONS /events HTTP/1.1\r\nhost: weir\r\norigin: " + APP_ORIGIN.encode() + b"\r\n"
            b"access-control-request-method: POST\r\n\r\n"
        )
        await connection.send(preflight)
        assert (await connection.response()).status == 200
        await connection.send(post())
        assert_overloaded(await connection.response(), retry_after="1")
        assert shed() == shed_before + 2
        # The browser's was refused in the app, inside CORS; the other at the protocol.
        assert served.app.seen == ["POST /events"] * 2 + ["OPTIONS /events"]
        served.producer.release.set()
        assert (await held[0].response()).status == 202
        for c in (*held, connection):
            c.close()
