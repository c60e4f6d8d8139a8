"""The client against the real parts: `weir api` and `weir consumer` as OS processes, the Kafka
broker, chDB behind its HTTP interface. The API is SIGKILLed while the client is sending and
started again; every tracked event must be counted exactly once by /metrics."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import REPO_ROOT, settings_env, start_weir, wait_until_up
from tests.harness.clickhouse import free_port
from tests.harness.kafka import TopicFactory
from weir.client import AsyncClient, Client
from weir.core.config import Settings, StoreBackend
from weir.provision import provision


class Api:
    """`weir api` on a fixed port, killable and restartable."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings, self.log = settings, log
        self.url = f"http://127.0.0.1:{settings.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_weir("api", self.settings, self.log)
        wait_until_up(self.url + "/health", self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


@pytest.fixture
async def pipeline(
    kafka_settings: Settings, kafka_topic: TopicFactory, clickhouse_http: str, tmp_path: Path
) -> Any:
    run = uuid.uuid4().hex[:10]
    settings = kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=3),
            "kafka_dlq_topic": await kafka_topic(partitions=1),
            "kafka_consumer_group": f"weir-client-{run}",
            "store_backend": StoreBackend.CLICKHOUSE,
            "clickhouse_url": clickhouse_http,
            "clickhouse_database": f"client_{run}",
            "batch_max_seconds": 0.3,
            "metrics_port": 0,
            "api_workers": 1,
            "port": free_port(),
        }
    )
    await provision(settings)
    api = Api(settings, tmp_path / "api.log")
    api.start()
    consumer = start_weir("consumer", settings, tmp_path / "consumer.log")
    try:
        yield api
    finally:
        api.stop()
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=30)


def wait_for_count(client: Client, name: str, want: tuple[int, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.metrics(name)
        got = (answer["total_events"], answer["unique_users"])
        if got == want:
            return
        assert time.monotonic() < deadline, f"/metrics says {got}, tracked {want}"
        time.sleep(0.3)


def track_steadily(client: Client, name: str, count: int, users: int, every: float) -> None:
    for i in range(count):
        client.track(name, f"user-{i % users}", "web", metadata={"i": i})
        time.sleep(every)


@pytest.mark.timeout(240)
def test_every_event_counted_once_through_an_api_kill(pipeline: Api) -> None:
    client = Client(pipeline.url, batch_size=50, flush_interval=0.1, backoff_max=1.0)
    tracker = threading.Thread(
        target=track_steadily, args=(client, "checkout", 3000, 400, 0.002), daemon=True
    )
    tracker.start()
    time.sleep(2.0)  # batches are flowing: kill the API with requests in flight
    pipeline.kill()
    time.sleep(1.5)
    pipeline.start()
    tracker.join(timeout=60)
    assert client.flush(timeout=60)
    stats = client.stats
    assert stats.retries > 0, "the kill should have cost the client at least one retry"
    assert (stats.queued, stats.delivered, stats.dropped, stats.rejected) == (3000, 3000, 0, 0)
    wait_for_count(client, "checkout", (3000, 400), timeout=90)
    time.sleep(2)  # a redelivered batch stored twice would show up now
    wait_for_count(client, "checkout", (3000, 400), timeout=0)
    client.close()


async def test_async_client_delivers_and_reads_metrics(pipeline: Api) -> None:
    async with AsyncClient(pipeline.url, flush_interval=0.05) as client:
        for i in range(120):
            client.track("signup", f"user-{i % 30}", "mobile", tags=["async"])
        assert await client.flush(timeout=30)
        deadline = time.monotonic() + 60
        while (answer := await client.metrics("signup", group_by="channel"))["data"] != [
            {"group": "mobile", "total_events": 120, "unique_users": 30}
        ]:
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.3)
    assert client.stats.delivered == 120


def test_interpreter_exit_flushes(pipeline: Api) -> None:
    """A script that tracks and simply ends: the client's exit hook delivers what is queued."""
    script = (
        "import sys\n"
        "from weir.client import Client\n"
        "client = Client(sys.argv[1], flush_interval=60)\n"
        "for i in range(40):\n"
        "    client.track('exit_flush', f'user-{i}', 'api')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, pipeline.url],
        env=settings_env(pipeline.settings),
        cwd=REPO_ROOT,
        timeout=60,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    client = Client(pipeline.url)
    try:
        wait_for_count(client, "exit_flush", (40, 40), timeout=60)
    finally:
        client.close()
