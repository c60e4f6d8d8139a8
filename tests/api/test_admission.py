"""Admission control: past the in-flight limit a request is refused at once, probes never are.
Here the app is served without Weir's HTTP protocol (an ASGI client), so its gate decides every
request; test_admission_protocol.py has the protocol's refusals, on the wire."""

from __future__ import annotations

import asyncio
import time

import httpx
from asgi_lifespan import LifespanManager

from tests.api.doubles import IdleStore, StalledProducer
from weir.api import serving_app
from weir.core.config import Settings
from weir.serving import AdmissionGate

EVENT = {"event_name": "signup", "channel": "web", "user_id": "u1"}


async def test_over_the_limit_is_refused_fast_and_probes_still_answer() -> None:
    producer = StalledProducer()
    settings = Settings(api_max_in_flight=2, retry_after_seconds=3)
    app = serving_app(settings, producer=producer, store=IdleStore())  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            body = EVENT | {"timestamp": int(time.time())}
            held = [asyncio.create_task(http.post("/events", json=body)) for _ in range(2)]
            for _ in range(500):  # until both are admitted and waiting on the producer
                if _in_flight(app) == 2:
                    break
                await asyncio.sleep(0.01)
            assert _in_flight(app) == 2
            began = time.perf_counter()
            refused = await http.post("/events", json=body)
            refused_batch = await http.post("/events/batch", json=[body])
            refused_metrics = await http.get("/metrics", params={"event_name": "signup"})
            elapsed = time.perf_counter() - began
            health = await http.get("/health")
            producer.release.set()
            accepted = await asyncio.gather(*held)

    for response in (refused, refused_batch, refused_metrics):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "3"
        assert "overloaded" in response.json()["error"]
        assert response.json()["request_id"] == response.headers["x-request-id"]
    assert elapsed < 0.5, "refusals must not wait for the requests in flight"
    assert health.status_code == 200
    assert [r.status_code for r in accepted] == [202, 202]
    assert len(producer.sent) == 2


def _in_flight(app: object) -> int:
    assert isinstance(app, AdmissionGate)
    return app.admission.in_flight
