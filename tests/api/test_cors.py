"""CORS for browser SDKs (issue 12): preflights answered on the ingestion routes for the
configured origins; no CORS header at all when none is configured."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.api.doubles import EmptyStore, RecordingProducer
from weir.api import serving_app
from weir.core.config import Settings

APP_ORIGIN = "https://app.example.com"
PREFLIGHT = {
    "origin": APP_ORIGIN,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type, content-encoding",
}
Serve = Callable[[list[str]], AbstractAsyncContextManager[httpx.AsyncClient]]


def event() -> dict[str, object]:
    return {
        "event_name": "signup",
        "channel": "web",
        "user_id": "u1",
        "timestamp": int(time.time()),
    }


@pytest.fixture
def serve(producer: RecordingProducer) -> Serve:
    @asynccontextmanager
    async def serving(origins: list[str]) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(api_cors_origins=origins)
        app = serving_app(settings, producer=producer, store=EmptyStore())  # type: ignore[arg-type]
        async with LifespanManager(app) as manager:  # type: ignore[arg-type]
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
                yield http

    return serving


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_no_cors_unless_origins_are_configured(serve: Serve) -> None:
    async with serve([]) as http:
        preflight = await http.options("/events", headers=PREFLIGHT)
        assert preflight.status_code == 405 and cors_headers(preflight) == {}
        posted = await http.post("/events", json=event(), headers={"origin": APP_ORIGIN})
        assert posted.status_code == 202 and cors_headers(posted) == {}


async def test_preflight_and_answers_for_a_configured_origin(
    serve: Serve, producer: RecordingProducer
) -> None:
    async with serve([APP_ORIGIN]) as http:
        for route in ("/events", "/events/batch", "/v1/track", "/v1/batch"):
            preflight = await http.options(route, headers=PREFLIGHT)
            assert preflight.status_code == 200
            allowed = cors_headers(preflight)
            assert allowed["access-control-allow-origin"] == APP_ORIGIN
            assert "POST" in allowed["access-control-allow-methods"]
            for header in ("authorization", "content-type", "content-encoding"):
                assert header in allowed["access-control-allow-headers"].lower()
            assert allowed["access-control-max-age"] == "600"
        posted = await http.post("/events", json=event(), headers={"origin": APP_ORIGIN})
        assert posted.status_code == 202
        assert posted.headers["access-control-allow-origin"] == APP_ORIGIN
        exposed = posted.headers["access-control-expose-headers"].lower()
        assert "retry-after" in exposed and "ratelimit-remaining" in exposed
        # A refusal is readable by the page too.
        refused = await http.post("/events", json={"x": 1}, headers={"origin": APP_ORIGIN})
        assert refused.status_code == 400
        assert refused.headers["access-control-allow-origin"] == APP_ORIGIN
        assert len(producer.sent) == 1


async def test_other_origins_and_routes_get_no_cors(serve: Serve) -> None:
    async with serve([APP_ORIGIN]) as http:
        other = await http.options("/events", headers=PREFLIGHT | {"origin": "https://evil.test"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        body = other.json()
        assert body["error"] == "cors: this origin may not call the API from a browser"
        assert body["request_id"]
        method = await http.options(
            "/events", headers=PREFLIGHT | {"access-control-request-method": "DELETE"}
        )
        assert method.status_code == 400 and "method" in method.json()["error"]
        posted = await http.post("/events", json=event(), headers={"origin": "https://evil.test"})
        assert posted.status_code == 202 and "access-control-allow-origin" not in posted.headers
        metrics = await http.get(
            "/metrics", params={"event_name": "signup"}, headers={"origin": APP_ORIGIN}
        )
        assert metrics.status_code == 200 and cors_headers(metrics) == {}


async def test_any_origin(serve: Serve) -> None:
    async with serve(["*"]) as http:
        preflight = await http.options("/events/batch", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
