"""`weir api` as an OS process with two workers: both serve, and Prometheus adds them up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx

from tests.e2e.processes import get_json, start_weir, wait_until_up
from tests.harness.kafka import TopicFactory, free_port
from weir.api.server import available_cpus, worker_count
from weir.core.config import Settings, StoreBackend
from weir.runtime import GC_GEN0_THRESHOLD


def test_worker_count_follows_the_setting_the_cpus_and_chdb() -> None:
    assert worker_count(Settings(api_workers=3)) == 3
    assert worker_count(Settings(api_workers=0)) == available_cpus() >= 1
    assert worker_count(Settings(api_workers=3, store_backend=StoreBackend.CHDB)) == 1


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = samples.get(name, 0.0) + float(value)
    return samples


def test_a_worker_process_collects_garbage_late_with_start_up_frozen() -> None:
    # In a fresh interpreter, as uvicorn's worker is: a batch's thousands of fresh containers
    # must not each time trigger collections over the whole heap.
    probe = (
        "import gc; from weir.api.server import worker_app; worker_app(); "
        "print(gc.get_threshold()[0], gc.get_freeze_count())"
    )
    env = os.environ | {"WEIR_STORE_BACKEND": "clickhouse", "WEIR_STREAM_BACKEND": "kafka"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    threshold, frozen = (int(n) for n in done.stdout.split())
    assert threshold == GC_GEN0_THRESHOLD
    assert frozen > 10_000  # the app and its libraries, out of every collection


async def test_two_workers_serve_and_their_metrics_add_up(
    kafka_settings: Settings, kafka_topic: TopicFactory, clickhouse_http: str, tmp_path: Path
) -> None:
    port, metrics_port = free_port(), free_port()
    settings = kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=3),
            "store_backend": StoreBackend.CLICKHOUSE,
            "clickhouse_url": clickhouse_http,
            "port": port,
            "metrics_port": metrics_port,
            "api_workers": 2,
            "api_latency_target_seconds": 0.0,  # a fixed limit: this test is not about overload
        }
    )
    api = start_weir("api", settings, tmp_path / "api.log")
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", api)
        log = tmp_path / "api.log"
        deadline = time.monotonic() + 60  # the second worker may start later than the first
        while len(started_workers(log, supervisor=api.pid)) < 2:
            assert time.monotonic() < deadline, "both workers started"
            await asyncio.sleep(0.2)
        now = int(time.time())
        events = [
            {"event_name": "signup", "channel": "web", "user_id": f"u{i}", "timestamp": now}
            for i in range(200)
        ]
        # New connections each: the kernel spreads them over both workers' accepts.
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=httpx.Limits(max_keepalive_connections=0)
        ) as http:
            in_flight = asyncio.Semaphore(32)  # under the admission limit: this is not overload

            async def post(event: dict[str, object]) -> httpx.Response:
                async with in_flight:
                    return await http.post("/events", json=event)

            answers = await asyncio.gather(*(post(e) for e in events))
        assert [a.status_code for a in answers] == [202] * 200
        samples = scrape(metrics_port)
        assert samples["weir_events_accepted_total"] == 200
        assert (
            samples['weir_http_requests_total{method="POST",route="/events",status="202"}'] == 200
        )
        # The admission limits of the live workers, added up (livesum); a worker killed and
        # replaced by the supervisor leaves the sum.
        assert samples["weir_http_admission_limit"] == 2 * settings.api_max_in_flight
        killed = min(started_workers(log, supervisor=api.pid))
        os.kill(killed, signal.SIGKILL)
        status = f"http://127.0.0.1:{metrics_port}/health"
        while True:
            assert time.monotonic() < deadline + 60, "the killed worker was replaced"
            replaced = len(started_workers(log, supervisor=api.pid)) == 3
            if replaced and get_json(status)["workers"] == {
                "alive": 2,
                "serving": 2,
                "expected": 2,
            }:
                break
            await asyncio.sleep(0.2)
        assert scrape(metrics_port)["weir_http_admission_limit"] == 2 * settings.api_max_in_flight
    finally:
        api.terminate()
        assert api.wait(timeout=30) == 0


def started_workers(log: Path, supervisor: int) -> set[int]:
    """The pids of the uvicorn workers that logged their start (the supervisor logs one too,
    for its status port)."""
    lines = log.read_text().splitlines() if log.exists() else []
    pids = {int(line.split()[-1].strip("[]")) for line in lines if "Started server process" in line}
    return pids - {supervisor}
