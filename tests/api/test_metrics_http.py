"""GET /metrics over HTTP: the store's share of each answer is in its Server-Timing header."""

from __future__ import annotations

import re
import time

from tests.api.conftest import app_client
from tests.api.doubles import RecordingProducer, SlowStore
from weir.core.config import Settings

STORE_SECONDS = 0.2
TIMING = re.compile(r"store;dur=([0-9]+\.[0-9])")


async def test_server_timing_names_the_stores_share_of_the_answer() -> None:
    async with app_client(Settings(), RecordingProducer(), SlowStore(STORE_SECONDS)) as http:
        began = time.perf_counter()
        response = await http.get("/metrics", params={"event_name": "signup"})
        whole_ms = (time.perf_counter() - began) * 1000
    assert response.status_code == 200, response.text
    found = TIMING.fullmatch(response.headers["server-timing"])
    assert found, response.headers["server-timing"]
    assert STORE_SECONDS * 1000 <= float(found.group(1)) <= whole_ms
