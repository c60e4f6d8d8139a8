"""Stalled clients (issue 12): the app served by uvicorn as `weir api` runs it, over raw sockets.
Incomplete headers close the connection, a body shorter than its Content-Length gets a 408, both
within the configured timeouts; a client that is slow but in time is served."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from prometheus_client import REGISTRY

from tests.api.doubles import IdleStore, RecordingProducer
from tests.harness.serve import served
from weir.api import serving_app
from weir.core.config import Settings

# The body's the shorter: its deadline must not wait for the header timer.
HEADER_TIMEOUT, BODY_TIMEOUT = 2.0, 0.8
HEALTH = b"GET /health HTTP/1.1\r\nhost: weir\r\n\r\n"
LAST_HEALTH = HEALTH.replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n")  # then closed
EVENT = orjson.dumps(
    {"event_name": "signup", "channel": "web", "user_id": "u1", "timestamp": int(time.time())}
)


@pytest.fixture
async def port(producer: RecordingProducer, idle_store: IdleStore) -> AsyncIterator[int]:
    settings = Settings(
        api_header_timeout_seconds=HEADER_TIMEOUT, api_body_timeout_seconds=BODY_TIMEOUT
    )
    app = serving_app(settings, producer=producer, store=idle_store)  # type: ignore[arg-type]
    async with served(app, settings) as chosen:
        yield chosen


async def exchange(port: int, *parts: bytes, pause: float = 0.0) -> tuple[bytes, float]:
    """Send the parts (`pause` s apart; stopping if the server closes first), then read until
    the server closes the connection: what it answered, and how long after connecting."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.monotonic()
    try:
        for index, part in enumerate(parts):
            if index and pause:
                await asyncio.sleep(pause)
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:
                break
        try:
            answer = await asyncio.wait_for(reader.read(), timeout=10)
        except ConnectionError:  # closed by the server while we were still writing
            answer = b""
        return answer, time.monotonic() - opened
    finally:
        writer.close()


def post(length: int, content_type: bytes = b"application/json") -> bytes:
    return (
        b"POST /events HTTP/1.1\r\nhost: weir\r\ncontent-type: " + content_type + b"\r\n"
        b"content-length: %d\r\n\r\n" % length
    )


def stalled(phase: str) -> float:
    return REGISTRY.get_sample_value("weir_http_stalled_total", {"phase": phase}) or 0.0


async def test_incomplete_headers_are_closed_within_the_header_timeout(port: int) -> None:
    before = stalled("headers")
    answer, took = await exchange(port, b"POST /events HTTP/1.1\r\nhost: weir\r\n")
    assert answer == b"" and HEADER_TIMEOUT - 0.1 < took < HEADER_TIMEOUT + 0.5
    silent, took = await exchange(port)  # connected, sent nothing
    assert silent == b"" and took < HEADER_TIMEOUT + 0.5
    # Headers trickled byte by byte (10 s if all were sent) do not extend the deadline.
    trickle = [bytes([b]) for b in b"GET /health HTTP/1.1\r\nhost: weir\r\nx-pad: " + b"0" * 150]
    answer, took = await exchange(port, *trickle, pause=0.05)
    assert answer == b"" and took < HEADER_TIMEOUT + 0.5
    assert stalled("headers") == before + 3


async def test_a_body_shorter_than_its_length_is_408_within_the_body_timeout(
    port: int, producer: RecordingProducer
) -> None:
    before = stalled("body")
    answer, took = await exchange(port, post(len(EVENT)) + EVENT[:10])
    assert BODY_TIMEOUT - 0.1 < took < BODY_TIMEOUT + 0.5
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head
    error = orjson.loads(body)
    assert error["error"] == "body: not received within 0.8 s" and error["request_id"]
    # Answered before reading the body (415) and then stalled: closed all the same.
    answer, took = await exchange(port, post(100, b"text/plain") + b"{")
    assert answer.startswith(b"HTTP/1.1 415 ") and took < BODY_TIMEOUT + 0.5
    assert producer.sent == [] and stalled("body") == before + 2


async def test_a_slow_client_within_the_timeouts_is_served(
    port: int, producer: RecordingProducer
) -> None:
    head = post(len(EVENT)) + b"connection: close\r\n"
    head = head.replace(b"\r\n\r\n", b"\r\n") + b"\r\n"
    middle = len(EVENT) // 2
    answer, _ = await exchange(
        port, head[:20], head[20:], EVENT[:middle], EVENT[middle:], pause=0.2
    )
    assert answer.startswith(b"HTTP/1.1 202 ")
    assert len(producer.sent) == 1
    # Keep-alive: the deadlines are per request, so three requests 0.5 s apart all succeed.
    answer, _ = await exchange(port, HEALTH, HEALTH, LAST_HEALTH, pause=0.5)
    assert answer.count(b"HTTP/1.1 200 ") == 3


async def test_no_server_header_and_a_json_400_for_broken_http(port: int) -> None:
    answer, _ = await exchange(
        port, b"GET /health HTTP/1.1\r\nhost: weir\r\nconnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and b"\r\nserver:" not in answer.lower()
    answer, _ = await exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"server:" not in head.lower()
    assert orjson.loads(body)["error"].startswith("request: not valid HTTP/1.1")


async def test_an_idle_connection_outlives_uvicorns_default_keep_alive(port: int) -> None:
    """Clients and load balancers keep idle connections for up to a minute or more (Go's 90 s,
    an AWS ALB's 60 s); a server that closes first races their next request, which then fails
    with a reset (seen under the load profile at uvicorn's 5 s). So the default is longer."""
    assert Settings().api_keepalive_timeout_seconds > 90
    answer, _ = await exchange(port, HEALTH, LAST_HEALTH, pause=5.5)
    assert answer.count(b"HTTP/1.1 200 ") == 2


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    producer: RecordingProducer, idle_store: IdleStore
) -> None:
    settings = Settings(api_keepalive_timeout_seconds=1.0)
    app = serving_app(settings, producer=producer, store=idle_store)  # type: ignore[arg-type]
    async with served(app, settings) as chosen:
        answer, took = await exchange(chosen, HEALTH)  # reads until the server closes
    assert answer.count(b"HTTP/1.1 200 ") == 1 and 0.9 < took < 2.5
