"""Benchmark ingestion: `weir api` (uvicorn subprocess) -> real Kafka broker (acks=all).

Drives POST /events and POST /events/batch from this process with httpx at a fixed concurrency,
each mode bounded by a duration and a request count. Prints a table, writes
bench-results/ingest.json.

    .venv/bin/python scripts/bench_ingest.py --concurrency 64 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from bench_common import (
    CORES_NOTE,
    REPO_ROOT,
    create_topic,
    event_payload,
    free_port,
    kafka_broker,
    kafka_settings,
    percentile,
    process_cpu_seconds,
    write_report,
)


@dataclass
class ModeResult:
    mode: str
    batch_size: int
    concurrency: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    api_cpu_seconds: float = 0.0
    broker_cpu_seconds: float = 0.0
    loadgen_cpu_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        samples = sorted(self.latencies_ms)
        requests = len(samples)
        accepted_events = (requests - self.errors) * self.batch_size
        return {
            "mode": self.mode,
            "batch_size": self.batch_size,
            "concurrency": self.concurrency,
            "requests": requests,
            "events": accepted_events,
            "seconds": round(self.seconds, 2),
            "events_per_s": round(accepted_events / self.seconds, 1) if self.seconds else 0.0,
            "requests_per_s": round(requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(percentile(samples, 0.50), 2),
            "p95_ms": round(percentile(samples, 0.95), 2),
            "p99_ms": round(percentile(samples, 0.99), 2),
            "errors": self.errors,
            "cpu_seconds": {
                "api": round(self.api_cpu_seconds, 2),
                "broker": round(self.broker_cpu_seconds, 2),
                "load_generator": round(self.loadgen_cpu_seconds, 2),
            },
        }


class Bodies:
    """Pre-serialised request bodies, so the load generator spends its CPU on HTTP, not JSON."""

    def __init__(self, batch_size: int, seed: int) -> None:
        self.batch_size = batch_size
        self.rng = random.Random(seed)
        self.now = int(time.time())
        self.next_index = seed * 10_000_000  # distinct events across modes and runs

    def next(self) -> bytes:
        start, self.next_index = self.next_index, self.next_index + self.batch_size
        events = [event_payload(i, self.now, self.rng) for i in range(start, self.next_index)]
        return orjson.dumps(events[0] if self.batch_size == 1 else events)


async def drive(
    clients: list[httpx.AsyncClient],
    path: str,
    bodies: Bodies,
    result: ModeResult,
    seconds: float,
    max_requests: int,
) -> None:
    deadline = time.perf_counter() + seconds
    issued = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued
        while issued < max_requests and time.perf_counter() < deadline:
            issued += 1
            body = bodies.next()
            began = time.perf_counter()
            try:
                response = await client.post(
                    path, content=body, headers={"content-type": "application/json"}
                )
                ok = response.status_code == 202
            except httpx.HTTPError:
                ok = False
            result.latencies_ms.append((time.perf_counter() - began) * 1000)
            result.errors += not ok

    await asyncio.gather(*(worker(client) for client in clients[: result.concurrency]))


async def run_mode(
    base_url: str,
    mode: str,
    batch_size: int,
    args: argparse.Namespace,
    pids: tuple[int | None, int | None],
) -> ModeResult:
    path = "/events" if batch_size == 1 else "/events/batch"
    # One single-connection client per worker: a shared httpx pool at high concurrency costs
    # more CPU in the load generator than the API spends serving the requests.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0)
            )
            for _ in range(args.concurrency)
        ]
        warmup = ModeResult(mode, batch_size, args.concurrency)
        warmup_bodies = Bodies(batch_size, seed=random.randrange(1, 10_000))
        await drive(clients, path, warmup_bodies, warmup, 2.0, 2 * args.concurrency)
        result = ModeResult(mode, batch_size, args.concurrency)
        bodies = Bodies(batch_size, seed=random.randrange(10_000, 100_000))
        max_requests = max(args.concurrency, args.max_events // batch_size)
        api_before, broker_before = (process_cpu_seconds(pid) for pid in pids)
        cpu_before, began = time.process_time(), time.perf_counter()
        await drive(clients, path, bodies, result, args.seconds, max_requests)
        result.seconds = time.perf_counter() - began
        result.loadgen_cpu_seconds = time.process_time() - cpu_before
        result.api_cpu_seconds = process_cpu_seconds(pids[0]) - api_before
        result.broker_cpu_seconds = process_cpu_seconds(pids[1]) - broker_before
    return result


@contextlib.contextmanager
def weir_api(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "weir.cli", "api"],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"weir api exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{base_url}/health did not answer within {timeout}s")


async def bench(
    bootstrap: str, broker_pid: int | None, work: Path, args: argparse.Namespace
) -> None:
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_settings(bootstrap), topic, args.partitions)
    port = free_port()
    env = os.environ | {
        "WEIR_STREAM_BACKEND": "kafka",
        "WEIR_STORE_BACKEND": "chdb",
        "WEIR_DATA_DIR": str(work / "weir"),
        "WEIR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEIR_KAFKA_TOPIC": topic,
        "WEIR_HOST": "127.0.0.1",
        "WEIR_PORT": str(port),
        "WEIR_METRICS_PORT": "0",
        "WEIR_LOG_LEVEL": "WARNING",
        "WEIR_LOG_FORMAT": "text",
    }
    modes = [("single", 1), ("batch", 100)] + ([("batch", 1000)] if args.with_1000 else [])
    base_url = f"http://127.0.0.1:{port}"
    results: list[ModeResult] = []
    with weir_api(env, work / "api.log") as api:
        await wait_healthy(base_url, api, timeout=90)
        for mode, size in modes:
            results.append(await run_mode(base_url, mode, size, args, (api.pid, broker_pid)))
    rows = [r.summary() for r in results]
    print(CORES_NOTE)
    print("api: uvicorn, 1 worker, asyncio loop; load generator: httpx.AsyncClient, same machine")
    header = f"{'mode':10} {'conc':>5} {'requests':>9} {'events':>9} {'events/s':>10}"
    print(
        header + f" {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}  cpu s api/broker/gen"
    )
    for row in rows:
        cpu = row["cpu_seconds"]
        print(
            f"{row['mode'] + ' x' + str(row['batch_size']):10} {row['concurrency']:>5} "
            f"{row['requests']:>9} {row['events']:>9} {row['events_per_s']:>10.1f} "
            f"{row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['errors']:>7}  {cpu['api']}/{cpu['broker']}/{cpu['load_generator']}"
        )
    write_report(
        args.out,
        {
            "note": CORES_NOTE,
            "seconds_per_mode": args.seconds,
            "max_events_per_mode": args.max_events,
            "topic_partitions": args.partitions,
            "external_broker": args.bootstrap is not None,
            "modes": rows,
        },
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration bound per mode")
    parser.add_argument(
        "--max-events", type=int, default=300_000, help="event-count bound per mode"
    )
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topic")
    parser.add_argument("--with-1000", action="store_true", help="also batches of 1000 events")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--out", type=Path, default=Path("bench-results/ingest.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="weir-bench-ingest-") as tmp:
        work = Path(tmp)
        if args.bootstrap:
            await bench(args.bootstrap, None, work, args)
        else:
            with kafka_broker(work / "kafka") as (bootstrap, broker_pid):
                await bench(bootstrap, broker_pid, work, args)


if __name__ == "__main__":
    asyncio.run(main())
