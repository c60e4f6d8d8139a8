"""The api's status port (`WEIR_METRICS_PORT`): `/health`, `/ready` and `/metrics`, served by the
supervising process apart from the workers, so that probes answer while the main port cannot."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.api.test_server import started_workers
from tests.e2e.processes import dev_settings, get_json, start_weir, wait_until_up
from tests.harness.kafka import KafkaBroker, TopicFactory, free_port
from weir.api.status import Workers, api_status_app
from weir.core.config import Settings, StoreBackend
from weir.store import make_store


def answer(url: str, timeout: float = 5.0) -> tuple[int, dict[str, object]]:
    """Status and JSON body of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def wait_for(url: str, status: int, timeout: float = 60.0) -> dict[str, object]:
    """The body of `url` once it answers `status`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, body = answer(url, timeout=3)
            if got == status:
                return body
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer {status} within {timeout} s"
        time.sleep(0.2)


class Api:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, port: int, status: int) -> None:
        self.process, self.log = process, log
        self.main = f"http://127.0.0.1:{port}"
        self.status = f"http://127.0.0.1:{status}"


@pytest.fixture
async def two_workers(
    kafka_settings: Settings, kafka_topic: TopicFactory, clickhouse_http: str, tmp_path: Path
) -> AsyncIterator[Api]:
    port, status_port = free_port(), free_port()
    settings = kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=2),
            "store_backend": StoreBackend.CLICKHOUSE,
            "clickhouse_url": clickhouse_http,
            "port": port,
            "metrics_port": status_port,
            "api_workers": 2,
        }
    )
    log = tmp_path / "api.log"
    api = Api(start_weir("api", settings, log), log, port, status_port)
    try:
        wait_until_up(f"{api.status}/health", api.process)
        # Both workers serving: readiness needs one, the tests below want both.
        deadline = time.monotonic() + 60
        while answer(f"{api.status}/health")[1].get("workers") != {
            "alive": 2,
            "serving": 2,
            "expected": 2,
        }:
            assert time.monotonic() < deadline, "both workers started"
            await asyncio.sleep(0.2)
        yield api
    finally:
        api.process.terminate()
        assert api.process.wait(timeout=30) == 0


def test_status_port_answers_probes_and_metrics_and_names_kafka_when_away(
    two_workers: Api, kafka_broker: KafkaBroker
) -> None:
    api = two_workers
    assert wait_for(f"{api.status}/ready", 200) == {"status": "ready"}
    assert answer(f"{api.status}/health") == (
        200,
        {"status": "healthy", "workers": {"alive": 2, "serving": 2, "expected": 2}},
    )
    with urllib.request.urlopen(f"{api.status}/metrics", timeout=5) as response:
        assert "weir_producer_send_seconds_count" in response.read().decode()  # a worker's
    # The main port keeps its own probes.
    assert answer(f"{api.main}/health") == (200, {"status": "healthy"})

    kafka_broker.stop()
    try:
        body = wait_for(f"{api.status}/ready", 503)
        assert body["failed"] == ["kafka"] and body["error"] == "kafka: not available"
        assert body["status"] == "not ready" and body["request_id"]
        # Kafka away is no reason to restart the pod: liveness holds.
        assert answer(f"{api.status}/health")[0] == 200
    finally:
        kafka_broker.start()
    assert wait_for(f"{api.status}/ready", 200) == {"status": "ready"}


def test_status_port_answers_while_the_workers_cannot(two_workers: Api) -> None:
    """Workers frozen (SIGSTOP: the limiting case of event loops too busy to accept): the main
    port answers nothing, the status port still answers its probes and metrics."""
    api = two_workers
    workers = started_workers(api.log, supervisor=api.process.pid)
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(OSError):  # no worker accepts: the request waits in the accept queue
            urllib.request.urlopen(f"{api.main}/health", timeout=1)
        status, body = answer(f"{api.status}/health")
        assert status == 200 and body["workers"] == {"alive": 2, "serving": 2, "expected": 2}
        assert answer(f"{api.status}/ready") == (200, {"status": "ready"})
        with urllib.request.urlopen(f"{api.status}/metrics", timeout=5) as response:
            assert response.status == 200
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    assert get_json(f"{api.main}/health") == {"status": "healthy"}


def test_single_worker_on_chdb_serves_the_status_port(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "data").model_copy(update={"metrics_port": free_port()})
    status = f"http://127.0.0.1:{settings.metrics_port}"
    api = start_weir("api", settings, tmp_path / "api.log")
    try:
        wait_until_up(f"http://127.0.0.1:{settings.port}/health", api)
        assert wait_for(f"{status}/ready", 200) == {"status": "ready"}
        assert answer(f"{status}/health") == (
            200,
            {"status": "healthy", "workers": {"alive": 1, "serving": 1, "expected": 1}},
        )
        with urllib.request.urlopen(f"{status}/metrics", timeout=5) as response:
            assert "weir_producer_send_seconds_count" in response.read().decode()  # a worker's
    finally:
        api.terminate()
        assert api.wait(timeout=30) == 0


async def test_ready_names_each_dependency_away_and_workers_not_serving() -> None:
    """The status app itself, Kafka and ClickHouse pointed at closed ports."""
    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        clickhouse_url=f"http://127.0.0.1:{free_port()}",
        produce_timeout_seconds=2,
    )
    workers = Workers(alive=1, serving=0, expected=2)
    store = make_store(settings)
    app = api_status_app(settings, lambda: workers, store, CollectorRegistry())
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            ready = await http.get("/ready", headers={"x-request-id": "probe-1"})
            assert ready.status_code == 503
            assert ready.json() == {
                "error": "clickhouse: not available; kafka: not available; "
                "workers: no worker is serving yet",
                "request_id": "probe-1",
                "status": "not ready",
                "failed": ["clickhouse", "kafka", "workers"],
            }
            assert (await http.get("/health")).status_code == 200
            workers = Workers(alive=0, serving=0, expected=2)
            health = await http.get("/health")
            assert health.status_code == 503
            assert health.json()["error"] == "no worker process is alive"
    finally:
        await store.close()
