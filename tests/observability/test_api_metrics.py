"""The API's Prometheus metrics move with real requests (producer double: these are HTTP tests)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.doubles import IdleStore, RecordingProducer
from weir.api import create_app
from weir.core.config import Settings
from weir.stream import StreamUnavailable


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
async def api(producer: RecordingProducer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(max_event_bytes=2048), producer=producer, store=IdleStore())  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape() -> Samples:
    """Every sample of the default registry, parsed from the exposition text a scrape gets."""
    samples: Samples = {}
    for family in text_string_to_metric_families(generate_latest().decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def event(**changes: object) -> dict[str, object]:
    base = {"event_name": "signup", "channel": "web", "user_id": "u", "timestamp": int(time.time())}
    return base | changes


async def test_requests_and_events_are_counted(
    api: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    before = scrape()
    assert (await api.post("/events", json=event())).status_code == 202
    batch = [event(), event(channel="fax"), event(user_id="")]
    assert (await api.post("/events/batch", json=batch)).status_code == 207
    assert (
        await api.post("/events", content=b"x", headers={"content-type": "text/plain"})
    ).status_code == 415
    assert (await api.post("/events", json=event(metadata={"x": "y" * 4000}))).status_code == 413
    producer.failure = StreamUnavailable("no broker")
    assert (await api.post("/events/batch", json=[event(), event()])).status_code == 503
    assert (await api.get("/nowhere")).status_code == 404
    after = scrape()

    assert delta(before, after, "weir_events_accepted_total") == 2
    assert delta(before, after, "weir_events_rejected_total", reason="channel") == 1
    assert delta(before, after, "weir_events_rejected_total", reason="user_id") == 1
    assert delta(before, after, "weir_events_rejected_total", reason="content_type") == 1
    assert delta(before, after, "weir_events_rejected_total", reason="size") == 1
    assert delta(before, after, "weir_events_rejected_total", reason="unavailable") == 2
    requests = "weir_http_requests_total"
    assert delta(before, after, requests, route="/events", method="POST", status="202") == 1
    assert delta(before, after, requests, route="/events/batch", method="POST", status="207") == 1
    assert delta(before, after, requests, route="/events/batch", method="POST", status="503") == 1
    assert delta(before, after, requests, route="unmatched", method="GET", status="404") == 1
    assert delta(before, after, "weir_http_request_seconds_count", route="/events") == 3
    assert delta(before, after, "weir_producer_send_seconds_count") == 3


async def test_clock_corrections_and_clamps_are_counted(
    api: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    now = int(time.time())
    before = scrape()
    ahead = event(timestamp=now + 3590, sent_at=now + 3600)  # a clock an hour ahead
    stamped_late = event(timestamp=now + 900, sent_at=now)  # after its own sending: clamped
    assert (await api.post("/events", json=ahead)).status_code == 202
    batch = [event(), ahead | {"user_id": "b"}, stamped_late, event(channel="fax")]  # slow path
    assert (await api.post("/events/batch", json=batch)).status_code == 207
    assert (await api.post("/events/batch", json=[stamped_late | {"user_id": "c"}])).is_success
    elapsed = int(time.time()) - now  # the server's clock may have ticked since `now`
    after = scrape()
    counted = "weir_events_clock_adjusted_total"
    assert delta(before, after, counted, outcome="corrected") == 2
    assert delta(before, after, counted, outcome="clamped") == 2
    stored = [orjson.loads(m.value) for _, m in producer.sent]
    # Corrected by (receive time - sent_at): the receive time lies in [now, now + elapsed].
    corrections = [e["timestamp"] - e["client_timestamp"] for e in stored if e["sent_at"]][:2]
    assert len(corrections) == 2
    assert all(-3600 <= c <= -3600 + elapsed for c in corrections), (corrections, elapsed)
