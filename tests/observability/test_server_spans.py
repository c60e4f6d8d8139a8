"""POST /events' SERVER span is the same whichever path serves it (api/front.py in front of
FastAPI, or FastAPI's own telemetry in an app whose front serves nothing): same name and kind,
a caller's sampled `traceparent` as its parent, and the PRODUCER span as its child."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.api.doubles import IdleStore, RecordingProducer
from weir.api import create_app
from weir.api.app import WeirApp
from weir.api.front import Front
from weir.core.config import Settings

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture(params=["front", "full"])
async def api(
    request: pytest.FixtureRequest, spans: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), producer=RecordingProducer(), store=IdleStore())  # type: ignore[arg-type]
    if request.param == "full":  # every request takes FastAPI's stack
        assert isinstance(app, WeirApp)
        app.front = Front(())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


async def test_server_span_continues_the_callers_trace(
    api: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    now = int(time.time())
    event = {"event_name": "signup", "channel": "web", "user_id": "u", "timestamp": now}
    headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
    response = await api.post("/events", json=event, headers=headers)
    assert response.status_code == 202, response.text

    (server,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    (producer,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert server.name == "POST /events"
    assert server.context is not None and format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT_ID
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id
    assert (server.attributes or {}).get("http.response.status_code") == 202
