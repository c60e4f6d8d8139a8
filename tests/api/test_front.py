"""The ingestion routes served in front of FastAPI (api/front.py) answer exactly as the full stack
does: a request with an `Origin` header (a browser's) takes the full stack, so each answer here
is compared between the two paths."""

from __future__ import annotations

import time

import httpx
from prometheus_client import REGISTRY

from tests.api.doubles import RecordingProducer

BROWSER = {"origin": "https://shop.example"}


def requests_counted(route: str, status: int) -> float:
    labels = {"route": route, "method": "POST", "status": str(status)}
    return REGISTRY.get_sample_value("weir_http_requests_total", labels) or 0.0


def event(**overrides: object) -> dict[str, object]:
    base = {"event_name": "signup", "channel": "web", "user_id": "u-1"}
    return base | {"timestamp": int(time.time())} | overrides


async def test_front_and_full_stack_answer_alike_and_are_counted_alike(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    for path, body in (("/events", event()), ("/events/batch", [event(), event(user_id="u-2")])):
        for headers in ({}, BROWSER):
            before = requests_counted(path, 202)
            response = await client.post(path, json=body, headers=headers)
            assert response.status_code == 202, response.text
            assert requests_counted(path, 202) == before + 1, (path, headers)
    assert len(producer.sent) == 6


async def test_front_and_full_stack_refuse_alike(client: httpx.AsyncClient) -> None:
    cases = [
        ("/events", {"json": event(channel="fax")}),
        ("/events", {"content": b"{", "headers": {"content-type": "application/json"}}),
        ("/events", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
        ("/events/batch", {"json": []}),
    ]
    for path, request in cases:
        answers = []
        for origin in ({}, BROWSER):
            kwargs = dict(request)
            kwargs["headers"] = {**request.get("headers", {}), **origin}  # type: ignore[dict-item]
            response = await client.post(path, **kwargs)  # type: ignore[arg-type]
            assert 400 <= response.status_code < 500, response.text
            body = {k: v for k, v in response.json().items() if k != "request_id"}
            answers.append((response.status_code, body))
        assert answers[0] == answers[1], (path, answers)
        assert "error" in answers[0][1]
