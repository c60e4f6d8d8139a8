"""The client's batching, retries and queue bound, against an in-process HTTP double (unit tests
of the sender's logic; tests/client/test_pipeline.py runs it against the real API and broker)."""

from __future__ import annotations

import gzip
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from weir.client import Client
from weir.client.wire import backoff, classify, retry_after

Answer = Callable[[list[dict[str, Any]]], httpx.Response]


class Recorder:
    """Records each POST /events/batch (decoded events, time) and answers with `answer`."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.times: list[float] = []
        self.headers: list[httpx.Headers] = []
        self.answer = answer or accept_all
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        events = json.loads(body)
        with self.lock:
            self.batches.append(events)
            self.times.append(time.monotonic())
            self.headers.append(request.headers)
        return self.answer(events)

    def ids(self) -> list[str]:
        return [e["event_id"] for batch in self.batches for e in batch]


def accept_all(events: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(202, json={"status": "accepted", "accepted": len(events)})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_client(recorder: Recorder) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(**options: Any) -> Client:
        client = Client(
            "http://weir", write_key="wk_test", transport=httpx.MockTransport(recorder), **options
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=1)


def test_batches_by_size_gzipped_with_the_write_key(
    make_client: Callable[..., Client], recorder: Recorder
) -> None:
    client = make_client(batch_size=100, flush_interval=30)
    ids = [client.track("signup", f"u{i}", "web") for i in range(250)]
    assert client.flush(timeout=10)
    assert [len(b) for b in recorder.batches] == [100, 100, 50]
    assert recorder.ids() == ids
    assert all(h["content-encoding"] == "gzip" for h in recorder.headers)
    assert all(h["authorization"] == "Bearer wk_test" for h in recorder.headers)
    assert client.stats.delivered == 250 and client.stats.batches == 3


def test_batches_by_age_without_flush(
    make_client: Callable[..., Client], recorder: Recorder
) -> None:
    client = make_client(batch_size=100, flush_interval=0.3)
    started = time.monotonic()
    for i in range(3):
        client.track("signup", f"u{i}", "web", metadata={"i": i})
    deadline = time.monotonic() + 5
    while not recorder.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [len(b) for b in recorder.batches] == [3]
    assert 0.25 <= recorder.times[0] - started < 2
    assert recorder.batches[0][2]["metadata"] == {"i": 2}


def test_retries_honour_retry_after_and_keep_event_ids(make_client: Callable[..., Client]) -> None:
    answers = iter([503, 429, 202])

    def answer(events: list[dict[str, Any]]) -> httpx.Response:
        status = next(answers)
        if status == 202:
            return accept_all(events)
        return httpx.Response(status, json={"error": "overloaded"}, headers={"Retry-After": "1"})

    recorder = Recorder(answer)
    client = Client("http://weir", transport=httpx.MockTransport(recorder), flush_interval=0)
    try:
        event_id = client.track("signup", "u1", "web")
        assert client.flush(timeout=10)
    finally:
        client.close(timeout=1)
    assert recorder.ids() == [event_id] * 3  # the same event, three attempts
    # each attempt says when it was sent (the API corrects the clock by it)
    sent = [batch[0]["sent_at"] for batch in recorder.batches]
    assert sent == sorted(sent) and sent[-1] - sent[0] >= 1 and abs(sent[-1] - time.time()) < 5
    gaps = [b - a for a, b in zip(recorder.times, recorder.times[1:], strict=False)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert client.stats.retries == 2 and client.stats.delivered == 1


def test_full_queue_drops_counts_and_warns_without_blocking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    def stuck(events: list[dict[str, Any]]) -> httpx.Response:
        release.wait(10)
        return accept_all(events)

    recorder = Recorder(stuck)
    client = Client(
        "http://weir", transport=httpx.MockTransport(recorder), max_queue=5, flush_interval=0
    )
    try:
        client.track("signup", "u0", "web")
        while not recorder.batches:  # the sender holds one event in a stuck request
            time.sleep(0.01)
        with caplog.at_level(logging.WARNING, logger="weir.client"):
            started = time.monotonic()
            for i in range(1, 21):
                client.track("signup", f"u{i}", "web")
            elapsed = time.monotonic() - started
        assert elapsed < 0.5, "track() must never wait for the sender"
        assert client.stats.dropped == 15
        assert "queue full" in caplog.text
        release.set()
        assert client.flush(timeout=10)
        assert client.stats.delivered == 6
    finally:
        release.set()
        client.close(timeout=1)


def test_oversized_batch_is_split_and_refusals_are_counted_not_retried() -> None:
    def answer(events: list[dict[str, Any]]) -> httpx.Response:
        if len(events) > 2:
            return httpx.Response(413, json={"error": "batch: more than 2 events"})
        valid = [e for e in events if e["channel"] != "fax"]
        if not valid:
            return httpx.Response(400, json={"error": "batch: no valid events"})
        status = 207 if len(valid) < len(events) else 202
        return httpx.Response(status, json={"accepted": len(valid)})

    recorder = Recorder(answer)
    client = Client("http://weir", transport=httpx.MockTransport(recorder), flush_interval=5)
    try:
        for i in range(7):
            client.track("signup", f"u{i}", "fax" if i in (5, 6) else "web")
        assert client.flush(timeout=10)
    finally:
        client.close(timeout=1)
    assert client.stats.delivered == 5 and client.stats.rejected == 2
    assert client.stats.retries == 0


def test_close_gives_up_after_its_timeout_and_counts_the_rest() -> None:
    def down(_: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(503, json={"error": "kafka: ..."}, headers={"Retry-After": "30"})

    client = Client("http://weir", transport=httpx.MockTransport(Recorder(down)), flush_interval=0)
    client.track("signup", "u1", "web")
    started = time.monotonic()
    client.close(timeout=0.5)
    assert time.monotonic() - started < 3
    assert client.stats.failed == 1
    assert client.track("signup", "u2", "web")  # after close: an id, but dropped and counted
    assert client.stats.dropped == 1


def test_answers_and_backoff() -> None:
    assert classify(207, {}, b'{"accepted": 3}', 5).rejected == 2
    assert classify(503, {"retry-after": "7"}, b"{}", 5).delay == 7
    assert classify(502, {}, b"", 5).retry
    assert classify(401, {}, b'{"error":"no key"}', 5).error == "401: no key"
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry_after("soon") is None
    assert all(0 <= backoff(n, 0.2, 30) <= min(30, 0.2 * 2**n) for n in range(12))


def test_importing_the_client_loads_nothing_of_the_server() -> None:
    code = (
        "import sys, weir.client\n"
        "heavy = {'fastapi', 'aiokafka', 'pydantic', 'starlette', 'chdb', 'weir.core'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
