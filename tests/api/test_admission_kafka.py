"""Admission that follows latency, against the real broker: when Kafka's acks slow down in a way
no cut of the in-flight limit shortens (the broker paused with SIGSTOP again and again, as a
stalled disk or a long GC pause would: every send waits for it to resume), the limiter undoes the
cut it tried and keeps admitting what it admitted, instead of refusing work it could do in the
same time. That a cut holds where it shortens the waits (a queue) is tested as logic, with a fake
clock (`test_admission_limit.py`): a broker that queues sends in proportion to what is in flight
is not one a test can make of a real broker reliably (Kafka batches what waits; its byte quotas
throttle in bursts of a second or more)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.harness.kafka import KafkaBroker, TopicFactory
from tests.harness.serve import served
from weir.api import serving_app
from weir.core.config import Settings
from weir.serving import Admission, AdmissionGate, LatencyLimit

CLIENTS = 32
FLOOR = 4
EVENT = {"event_name": "signup", "channel": "web", "user_id": "u1"}


@pytest.fixture
async def api(
    kafka_settings: Settings, kafka_topic: TopicFactory
) -> AsyncIterator[tuple[int, Admission]]:
    """One worker as `weir api` serves it (Weir's HTTP protocol), producing to the broker."""
    settings = kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=3),
            "api_max_in_flight": CLIENTS,
            "api_min_in_flight": FLOOR,
            "api_latency_target_seconds": 0.1,
            "produce_timeout_seconds": 10.0,  # paused for less: every refusal is admission's
            "retry_after_seconds": 2,
        }
    )
    app = serving_app(settings)
    assert isinstance(app, AdmissionGate)  # no CORS in front of it
    async with served(app, settings) as port:
        yield port, app.admission


@contextlib.asynccontextmanager
async def slow_acks(broker: KafkaBroker) -> AsyncIterator[None]:
    """The broker paused for 0.5 s of every 0.53 s: acks come late, in bursts (the short runs
    between pauses leave too few prompt acks to outweigh the late ones)."""
    pid = broker.pid
    assert pid is not None

    async def pause_again_and_again() -> None:
        while True:
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(0.5)
            finally:
                os.kill(pid, signal.SIGCONT)
            await asyncio.sleep(0.03)

    pausing = asyncio.create_task(pause_again_and_again())
    try:
        yield
    finally:
        pausing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pausing
        os.kill(pid, signal.SIGCONT)


async def clients(port: int, until: asyncio.Event, answers: Counter[int]) -> None:
    """CLIENTS clients, each posting one event after another (a short pause after a 503)."""

    async def client(http: httpx.AsyncClient) -> None:
        while not until.is_set():
            body = EVENT | {"timestamp": int(time.time())}
            response = await http.post("/events", json=body)
            answers[response.status_code] += 1
            if response.status_code == 503:
                assert response.headers["retry-after"] == "2"
                assert response.json()["error"].startswith("overloaded"), response.text
                await asyncio.sleep(0.02)
            else:
                assert response.status_code == 202, response.text

    limits = httpx.Limits(max_connections=CLIENTS)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))


async def wait_for(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_acks_no_cut_can_shorten_leave_the_limit_where_it_was(
    api: tuple[int, Admission], kafka_broker: KafkaBroker
) -> None:
    """The broker paused again and again: every send waits for it to resume, however many are in
    flight, so a cut would only turn admissions into refusals. The limiter tries one, sees the
    waits unchanged, undoes it and holds: the clients stay admitted, their events acked."""
    port, admission = api
    assert admission.limit == CLIENTS  # as many places as clients: a fixed limit refuses none
    stop = asyncio.Event()
    answers: Counter[int] = Counter()
    load = asyncio.create_task(clients(port, stop, answers))
    seen: list[int] = []
    try:
        # Prompt acks, and the limit at its ceiling again: a cold broker's first sends can be slow
        # enough to cut it (seen in CI: cut to 17 before the pauses began, never back to 32).
        await wait_for(
            lambda: answers[202] > CLIENTS and admission.limit == CLIENTS,
            "accepted while acks are prompt, at the full limit",
        )
        async with slow_acks(kafka_broker):
            accepted_before = answers[202]
            until = time.monotonic() + LatencyLimit.HOLD_SECONDS + 2
            while time.monotonic() < until:
                seen.append(admission.limit)
                await asyncio.sleep(0.02)
            accepted_while_paused = answers[202] - accepted_before
    finally:
        stop.set()
        await load
    assert min(seen) < CLIENTS, "a cut was tried"
    assert min(seen) > FLOOR, "and undone before the next: the limit never fell to its floor"
    assert seen.count(CLIENTS) > 0.6 * len(seen), Counter(seen)
    # ~0.53 s per round trip while paused: each client's events still acked, one after another
    assert accepted_while_paused > 4 * CLIENTS, answers
    assert set(answers) <= {202, 503}, answers
