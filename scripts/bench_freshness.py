"""Benchmark freshness: how long after its 202 an event is counted by GET /metrics.

Starts a broker, the chDB HTTP shim (ClickHouse's HTTP interface over chDB; no server package
exists here), `weir migrate`, `weir api` and `weir consumer` as processes, as a cluster runs them.
A background load of `--rate` events/s (batches of 20 on POST /events/batch) keeps the pipeline
busy; once a second a probe event with an event_name of its own goes to POST /events and
GET /metrics is polled every 20 ms until it counts it. Prints p50/p95/max, writes
bench-results/freshness.json.

    .venv/bin/python scripts/bench_freshness.py --rate 2000 --seconds 60
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
from pathlib import Path
from typing import Any

import httpx
from bench_common import (
    CORES_NOTE,
    REPO_ROOT,
    event_payload,
    free_port,
    kafka_broker,
    percentile,
    write_report,
)
from bench_ingest import clickhouse_shim, wait_healthy

BATCH = 20


def weir(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "weir.cli", command],
            env=env,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def background_load(http: httpx.AsyncClient, rate: int, stop: asyncio.Event) -> int:
    """POST batches at `rate` events/s until stopped; returns the events accepted."""
    rng, sent, accepted = random.Random(3), 0, 0
    started = time.perf_counter()
    pending: set[asyncio.Task[httpx.Response]] = set()
    while not stop.is_set():
        due = int((time.perf_counter() - started) * rate / BATCH)
        while sent < due:
            now = int(time.time())
            events = [event_payload(sent * BATCH + i, now, rng) for i in range(BATCH)]
            pending.add(asyncio.create_task(http.post("/events/batch", json=events)))
            sent += 1
        done = {task for task in pending if task.done()}
        for task in done:
            with contextlib.suppress(Exception):
                accepted += task.result().json().get("accepted", 0)
        pending -= done
        await asyncio.sleep(0.005)
    for task in pending:
        with contextlib.suppress(Exception):
            accepted += (await task).json().get("accepted", 0)
    return accepted


async def probe(http: httpx.AsyncClient, number: int, run: str) -> float:
    name = f"probe-{run}-{number}"
    event = {"event_name": name, "channel": "web", "user_id": "p", "timestamp": int(time.time())}
    response = await http.post("/events", json=event)
    response.raise_for_status()
    accepted_at = time.perf_counter()
    while True:
        answer = (await http.get("/metrics", params={"event_name": name})).json()
        if answer.get("total_events") == 1:
            return time.perf_counter() - accepted_at
        if time.perf_counter() - accepted_at > 30:
            raise TimeoutError(f"{name} not visible after 30 s")
        await asyncio.sleep(0.02)


async def bench(bootstrap: str, work: Path, args: argparse.Namespace) -> None:
    with clickhouse_shim(work / "chdb") as clickhouse_url:
        port, run = free_port(), uuid.uuid4().hex[:8]
        env = os.environ | {
            "WEIR_STREAM_BACKEND": "kafka",
            "WEIR_STORE_BACKEND": "clickhouse",
            "WEIR_CLICKHOUSE_URL": clickhouse_url,
            "WEIR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "WEIR_KAFKA_TOPIC": f"bench-fresh-{run}",
            "WEIR_KAFKA_DLQ_TOPIC": f"bench-fresh-{run}.dlq",
            "WEIR_KAFKA_CONSUMER_GROUP": f"bench-fresh-{run}",
            "WEIR_PORT": str(port),
            "WEIR_METRICS_PORT": "0",
            "WEIR_LOG_LEVEL": "WARNING",
            "WEIR_LOG_FORMAT": "text",
        }
        migrate = [sys.executable, "-m", "weir.cli", "migrate"]  # the migration owner's Job
        await asyncio.to_thread(
            subprocess.run, migrate, env=env, cwd=REPO_ROOT, check=True, capture_output=True
        )
        api = weir("api", env, work / "api.log")
        consumer = weir("consumer", env, work / "consumer.log")
        try:
            base_url = f"http://127.0.0.1:{port}"
            await wait_healthy(base_url, api, timeout=90)
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                await probe(http, -1, run)  # warm-up: the consumer has joined its group
                stop = asyncio.Event()
                load = asyncio.create_task(background_load(http, args.rate, stop))
                await asyncio.sleep(2)
                latencies = []
                for number in range(args.seconds):
                    began = time.perf_counter()
                    latencies.append(await probe(http, number, run))
                    await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - began)))
                stop.set()
                accepted = await load
        finally:
            for process in (consumer, api):
                process.terminate()
                process.wait(timeout=30)
    samples = sorted(latency * 1000 for latency in latencies)
    figures: dict[str, Any] = {
        "background_events_per_s": args.rate,
        "background_events_accepted": accepted,
        "probes": len(samples),
        "p50_ms": round(percentile(samples, 0.50), 1),
        "p95_ms": round(percentile(samples, 0.95), 1),
        "max_ms": round(samples[-1], 1),
        "consumer_batch_max_seconds": float(os.environ.get("WEIR_BATCH_MAX_SECONDS", "1.0")),
    }
    print(CORES_NOTE)
    print(
        "202 -> counted by GET /metrics, under background load of "
        f"{args.rate} events/s ({accepted} accepted):"
    )
    print(
        f"p50 {figures['p50_ms']} ms   p95 {figures['p95_ms']} ms   max {figures['max_ms']} ms"
        f"   ({len(samples)} probes)"
    )
    write_report(args.out, {"note": CORES_NOTE, **figures})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="background events per second")
    parser.add_argument("--seconds", type=int, default=60, help="probes (one per second)")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--out", type=Path, default=Path("bench-results/freshness.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="weir-bench-fresh-") as tmp:
        work = Path(tmp)
        if args.bootstrap:
            await bench(args.bootstrap, work, args)
        else:
            with kafka_broker(work / "kafka") as (bootstrap, _pid):
                await bench(bootstrap, work, args)


if __name__ == "__main__":
    asyncio.run(main())
