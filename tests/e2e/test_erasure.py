"""Read back and erasure end to end: the API in-process on the real broker, `weir consumer` as an
OS process, chDB behind the HTTP shim. GET /events/{event_id} answers what was stored; after
`DELETE /users/{user_id}/events` and `weir erase-user`, every /metrics view equals a brute-force
recount over the events that remain (tests/e2e/truth.py)."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.e2e.processes import REPO_ROOT, settings_env, start_weir
from tests.e2e.test_pipeline import (
    api,
    check_every_view,
    make_events,
    pipeline_settings,
    post_all,
    wait_for_totals,
)
from weir.core.config import Settings

__all__ = ["api", "pipeline_settings"]  # fixtures, shared with test_pipeline.py


async def stored(api: httpx.AsyncClient, event_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await api.get(f"/events/{event_id}")
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, f"{event_id} never stored"
        await asyncio.sleep(0.3)


async def test_read_back_and_erasure_keep_metrics_exact(
    api: httpx.AsyncClient, pipeline_settings: Settings, tmp_path: Path
) -> None:
    now = int(time.time())
    rng = random.Random(14)
    truth: dict[str, Any] = {}
    unknown = await api.get("/events/never-sent")
    assert unknown.status_code == 404 and unknown.json()["error"].startswith("event_id: no")
    consumer = start_weir("consumer", pipeline_settings, tmp_path / "consumer.log")
    try:
        clocked = {
            "event_name": "signup", "channel": "web", "user_id": "user-7",
            "timestamp": now + 3600 - 120, "sent_at": now + 3600, "event_id": "clocked/1",
            "metadata": {"plan": "pro"},
        }  # fmt: skip
        response = await api.post("/events", json=clocked)
        assert response.status_code == 202, response.text
        await post_all(api, make_events(1200, now, rng, user_count=40), truth)
        back = await stored(api, "clocked/1")
        assert back["client_timestamp"] == now + 3600 - 120
        assert now - 125 <= back["timestamp"] <= now - 115  # on the server's clock
        assert back["user_id"] == "user-7" and back["metadata"] == {"plan": "pro"}
        truth["clocked/1"] = clocked | {"timestamp": back["timestamp"]}
        await wait_for_totals(api, truth, timeout=60)
        await check_every_view(api, truth, now)

        for user in ("user-7", "user-12"):
            mine = [e for e in truth.values() if e["user_id"] == user]
            erased = await api.delete(f"/users/{user}/events")
            assert erased.status_code == 200, erased.text
            body = erased.json()
            assert body["erased_events"] == len(mine) > 0 and body["rebuilt_hours"] > 0
            truth = {k: e for k, e in truth.items() if e["user_id"] != user}
            await check_every_view(api, truth, now)
        assert (await api.get("/events/clocked/1")).status_code == 404
        again = await api.delete("/users/user-7/events")
        assert again.json()["erased_events"] == 0

        gone = ("user-3", "user-4")
        mine = {u: sum(e["user_id"] == u for e in truth.values()) for u in gone}
        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "weir.cli", "erase-user", *gone],
            env=settings_env(pipeline_settings),
            cwd=REPO_ROOT,
            capture_output=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr.decode()
        lines = [orjson.loads(line) for line in cli.stdout.splitlines()]
        assert lines[:2] == [{"user_id": u, "erased_events": mine[u]} for u in gone]
        assert lines[2]["erased_events"] == sum(mine.values()) > 0
        truth = {k: e for k, e in truth.items() if e["user_id"] not in gone}
        await check_every_view(api, truth, now)
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=30)
