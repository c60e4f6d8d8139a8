"""The ingestion routes served in front of FastAPI (api/front.py) answer exactly as the full stack
does: each answer here is compared between the app and the same app with a front that serves
nothing, where every request takes FastAPI's stack."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from tests.api.doubles import IdleStore, RecordingProducer
from weir.api import create_app
from weir.api.app import WeirApp
from weir.api.front import Front
from weir.core.config import Settings


@pytest.fixture
async def full_stack(
    producer: RecordingProducer, idle_store: IdleStore
) -> AsyncIterator[httpx.AsyncClient]:
    """`client`'s app (same settings and parts), without its front."""
    settings = Settings(max_event_bytes=2048, max_batch_events=5, max_batch_bytes=8192)
    app = create_app(settings, producer=producer, store=idle_store)  # type: ignore[arg-type]
    assert isinstance(app, WeirApp)
    app.front = Front(())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


def requests_counted(route: str, status: int) -> float:
    labels = {"route": route, "method": "POST", "status": str(status)}
    return REGISTRY.get_sample_value("weir_http_requests_total", labels) or 0.0


def event(**overrides: object) -> dict[str, object]:
    base = {"event_name": "signup", "channel": "web", "user_id": "u-1"}
    return base | {"timestamp": int(time.time())} | overrides


async def test_front_and_full_stack_answer_alike_and_are_counted_alike(
    client: httpx.AsyncClient, full_stack: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    for path, body in (("/events", event()), ("/events/batch", [event(), event(user_id="u-2")])):
        answers = []
        for http in (client, full_stack):
            before = requests_counted(path, 202)
            response = await http.post(path, json=body)
            assert response.status_code == 202, response.text
            assert requests_counted(path, 202) == before + 1, path
            answers.append((response.json(), response.headers["content-type"]))
        assert answers[0] == answers[1], path
    assert len(producer.sent) == 6


async def test_front_and_full_stack_refuse_alike(
    client: httpx.AsyncClient, full_stack: httpx.AsyncClient
) -> None:
    cases = [
        ("/events", {"json": event(channel="fax")}),
        ("/events", {"content": b"{", "headers": {"content-type": "application/json"}}),
        ("/events", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
        ("/events/batch", {"json": []}),
    ]
    for path, request in cases:
        answers = []
        for http in (client, full_stack):
            response = await http.post(path, **request)  # type: ignore[arg-type]
            assert 400 <= response.status_code < 500, response.text
            body = {k: v for k, v in response.json().items() if k != "request_id"}
            answers.append((response.status_code, body))
        assert answers[0] == answers[1], (path, answers)
        assert "error" in answers[0][1]
