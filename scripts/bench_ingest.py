"""Benchmark ingestion: `weir api` -> real Kafka broker (acks=all), driven by wrk.

Closed loop: `--clients` connections, each with one request in flight, for `--seconds` per mode
(single events on POST /events, and batches on POST /events/batch). wrk (C, Debian's package)
drives the load so that the load generator takes as little of the shared 2 cores as possible.
With `--baseline REF` the same modes run first against the API of that git revision (a worktree,
same venv), so the report carries a before/after ratio measured in the same run.
`--overload-clients N` adds a flood of N connections with probes on new connections (/health on the
main port and on the status port, one POST /events): how fast overload is refused and whether a
kubelet still gets its answer.
Prints a table, writes bench-results/ingest.json.

    .venv/bin/python scripts/bench_ingest.py --clients 128 --seconds 30 --baseline c9ab7db
    .venv/bin/python scripts/bench_ingest.py --batch-sizes 1 --overload-clients 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from bench_common import (
    CORES_NOTE,
    REPO_ROOT,
    baseline_pythonpath,
    baseline_worktree,
    create_topic,
    event_payload,
    free_port,
    kafka_broker,
    kafka_settings,
    percentile,
    process_cpu_seconds,
    tree_cpu_seconds,
    write_report,
)

WRK_SCRIPT = REPO_ROOT / "scripts" / "wrk" / "post_bodies.lua"


@dataclass
class Target:
    """One API under test: the working tree (`current`) or a baseline revision."""

    name: str
    pythonpath: str | None
    cwd: Path
    workers: int


def write_bodies(path: Path, batch_size: int, count: int, seed: int) -> None:
    rng, now = random.Random(seed), int(time.time())
    with path.open("wb") as out:
        for n in range(count):
            first = seed * 10_000_000 + n * batch_size
            events = [event_payload(first + i, now, rng) for i in range(batch_size)]
            out.write(orjson.dumps(events[0] if batch_size == 1 else events) + b"\n")


def run_wrk(
    url: str, path: str, bodies: Path, clients: int, seconds: float, summary: Path
) -> tuple[dict[str, Any], float]:
    """Run wrk; return its summary and its own CPU seconds."""
    env = os.environ | {
        "WEIR_BENCH_PATH": path,
        "WEIR_BENCH_BODIES": str(bodies),
        "WEIR_BENCH_SUMMARY": str(summary),
    }
    command = ["wrk", "-t2", f"-c{clients}", f"-d{int(seconds)}s", "--timeout", "10s"]
    command += ["-s", str(WRK_SCRIPT), url]
    before = os.times()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return json.loads(summary.read_text()), cpu


def mode_row(
    target: Target, mode: str, batch: int, clients: int, wrk: dict[str, Any], cpu: dict[str, float]
) -> dict[str, Any]:
    seconds = wrk["duration_us"] / 1e6
    failed = wrk["non_2xx"] + wrk["connect"] + wrk["read"] + wrk["write"] + wrk["timeout"]
    accepted = wrk["requests"] - failed
    return {
        "target": target.name,
        "api_workers": target.workers,
        "mode": mode,
        "batch_size": batch,
        "clients": clients,
        "requests": wrk["requests"],
        "accepted_requests_per_s": round(accepted / seconds, 1),
        "events_per_s": round(accepted * batch / seconds, 1),
        "p50_ms": wrk["p50_us"] / 1000,
        "p95_ms": wrk["p95_us"] / 1000,
        "p99_ms": wrk["p99_us"] / 1000,
        "max_ms": wrk["max_us"] / 1000,
        "refused_or_failed": failed,
        "seconds": round(seconds, 2),
        "cpu_seconds": {name: round(value, 2) for name, value in cpu.items()},
    }


@contextlib.contextmanager
def weir_api(
    target: Target, env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    if target.pythonpath:
        env = env | {"PYTHONPATH": target.pythonpath}
    env = env | {"WEIR_API_WORKERS": str(target.workers)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "weir.cli", "api"],
            env=env,
            cwd=target.cwd,
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
                    await asyncio.sleep(2)  # every worker up, not just the first
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{base_url}/health did not answer within {timeout}s")


async def probe(host: str, port: int, request: bytes) -> tuple[float, float, int]:
    """One request on a new connection: (seconds to connect, seconds to the answer, status).

    connect() returns once the kernel completed the handshake; a full accept queue shows as a
    slow connect (SYN retried after 1 s, 3 s, ...), a busy worker as a slow answer."""
    began = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    connected = time.perf_counter()
    try:
        writer.write(request)
        status_line = await reader.readline()
        answered = time.perf_counter()
    finally:
        writer.close()
    status = int(status_line.split()[1]) if status_line else 0
    return connected - began, answered - began, status


def probe_summary(samples: list[tuple[float, float, int]]) -> dict[str, Any]:
    connects = sorted(c * 1000 for c, _, _ in samples)
    answers = sorted(a * 1000 for _, a, _ in samples)
    return {
        "probes": len(samples),
        "connect_ms_p50": round(percentile(connects, 0.5), 1),
        "connect_ms_max": round(connects[-1], 1),
        "answer_ms_p50": round(percentile(answers, 0.5), 1),
        "answer_ms_p99": round(percentile(answers, 0.99), 1),
        "answer_ms_max": round(answers[-1], 1),
        "statuses": {
            str(code): sum(1 for *_, s in samples if s == code) for code in {s for *_, s in samples}
        },
    }


async def overload(
    base_url: str,
    ports: tuple[int, int],
    bodies: Path,
    body: bytes,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    """A flood of `--overload-clients` connections on POST /events (wrk) while probes on new
    connections time GET /health on the main port and on the status port (where the chart's
    kubelet asks), and a POST /events, every 0.2 s: what a kubelet and a new client see when
    the API is far past its capacity. `ports`: the main port and the status port."""
    port, status_port = ports
    health = b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    requests = {
        "health": (port, health),
        "status_health": (status_port, health),
        "post_event": (
            port,
            b"POST /events HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body,
        ),
    }
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in requests}
    flood = asyncio.create_task(
        asyncio.to_thread(
            run_wrk,
            base_url,
            "/events",
            bodies,
            args.overload_clients,
            args.seconds,
            work / "wrk-flood.json",
        )
    )
    limits: list[float] = []  # the workers' admission limits added up, from the status port
    await asyncio.sleep(2)  # the flood at full size first
    async with httpx.AsyncClient(timeout=5, follow_redirects=True) as http:
        while not flood.done():
            for name, (to_port, request) in requests.items():
                try:
                    answer = await asyncio.wait_for(probe("127.0.0.1", to_port, request), 30)
                    samples[name].append(answer)
                except (OSError, TimeoutError):
                    samples[name].append((30.0, 30.0, 0))
            with contextlib.suppress(httpx.HTTPError):
                text = (await http.get(f"http://127.0.0.1:{status_port}/metrics")).text
                limits += [
                    float(line.split()[1])
                    for line in text.splitlines()
                    if line.startswith("weir_http_admission_limit ")
                ]
            await asyncio.sleep(0.2)
    wrk, _ = await flood
    seconds = wrk["duration_us"] / 1e6
    return {
        "mode": "overload",
        "clients": args.overload_clients,
        "answers_per_s": round(wrk["requests"] / seconds, 1),
        "refused_or_failed_fraction": round(
            (wrk["non_2xx"] + wrk["timeout"] + wrk["read"] + wrk["write"])
            / max(1, wrk["requests"]),
            3,
        ),
        "accepted_per_s": round((wrk["requests"] - wrk["non_2xx"]) / seconds, 1),
        "flood_p99_ms": wrk["p99_us"] / 1000,
        **{f"probe_{name}": probe_summary(found) for name, found in samples.items() if found},
        "admission_limit_mean": round(sum(limits) / len(limits), 1) if limits else None,
    }


async def bench_target(
    target: Target,
    bootstrap: str,
    broker_pid: int | None,
    work: Path,
    args: argparse.Namespace,
    bodies: dict[int, Path],
    clickhouse_url: str,
) -> list[dict[str, Any]]:
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    await create_topic(kafka_settings(bootstrap), topic, args.partitions)
    port, status_port = free_port(), free_port()
    env = os.environ | {
        "WEIR_STREAM_BACKEND": "kafka",
        # A server (the chDB HTTP shim) rather than chDB in-process, which allows one worker only.
        "WEIR_STORE_BACKEND": "clickhouse",
        "WEIR_CLICKHOUSE_URL": clickhouse_url,
        "WEIR_DATA_DIR": str(work / f"weir-{target.name}"),
        "WEIR_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WEIR_KAFKA_TOPIC": topic,
        "WEIR_HOST": "127.0.0.1",
        "WEIR_PORT": str(port),
        "WEIR_METRICS_PORT": str(status_port),  # the status port: probes served apart
        "WEIR_LOG_LEVEL": "WARNING",
        "WEIR_LOG_FORMAT": "text",
    }
    base_url = f"http://127.0.0.1:{port}"
    rows = []
    with weir_api(target, env, work / f"api-{target.name}.log") as api:
        await wait_healthy(base_url, api, timeout=90)
        for batch in args.batch_sizes:
            mode, path = ("single", "/events") if batch == 1 else ("batch", "/events/batch")
            summary = work / "wrk.json"
            warm_clients = args.clients if batch == 1 else args.batch_clients
            run_wrk(base_url, path, bodies[batch], warm_clients, 3, summary)  # warm-up
            api_before, broker_before = tree_cpu_seconds(api.pid), process_cpu_seconds(broker_pid)
            clients = args.clients if batch == 1 else args.batch_clients
            wrk, wrk_cpu = run_wrk(base_url, path, bodies[batch], clients, args.seconds, summary)
            cpu = {
                "api": tree_cpu_seconds(api.pid) - api_before,
                "broker": process_cpu_seconds(broker_pid) - broker_before,
                "load_generator": wrk_cpu,
            }
            rows.append(mode_row(target, mode, batch, clients, wrk, cpu))
            print(json.dumps(rows[-1]), flush=True)
        if args.overload_clients and 1 in bodies:
            first_body = bodies[1].read_bytes().split(b"\n", 1)[0]
            ports = (port, status_port)
            flood = await overload(base_url, ports, bodies[1], first_body, args, work)
            rows.append({"target": target.name, "api_workers": target.workers, **flood})
            print(json.dumps(rows[-1]), flush=True)
    return rows


@contextlib.contextmanager
def clickhouse_shim(data_dir: Path) -> Iterator[str]:
    """tests/harness/chdb_http.py: ClickHouse's HTTP interface over chDB (no server here)."""
    port = free_port()
    command = [sys.executable, "-m", "tests.harness.chdb_http", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)], cwd=REPO_ROOT, stdout=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError, httpx.HTTPError):
                if httpx.get(f"{url}/ping", timeout=1).text == "Ok.\n":
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("chdb HTTP shim did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(CORES_NOTE)
    print(
        f"{'target':9} {'mode':11} {'workers':>7} {'req/s':>8} {'events/s':>9} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'refused':>7}  cpu s api/broker/wrk  ratio"
    )
    floods = [row for row in rows if row["mode"] == "overload"]
    rows = [row for row in rows if row["mode"] != "overload"]
    baseline = {(r["mode"], r["batch_size"]): r for r in rows if r["target"] != "current"}
    for row in rows:
        key, cpu = (row["mode"], row["batch_size"]), row["cpu_seconds"]
        ratio = ""
        if row["target"] == "current" and key in baseline and baseline[key]["events_per_s"]:
            ratio = f"x{row['events_per_s'] / baseline[key]['events_per_s']:.1f}"
        print(
            f"{row['target']:9} {row['mode'] + ' x' + str(row['batch_size']):11} "
            f"{row['api_workers']:>7} {row['accepted_requests_per_s']:>8.0f} "
            f"{row['events_per_s']:>9.0f} {row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f} "
            f"{row['p99_ms']:>7.1f} {row['refused_or_failed']:>7}  "
            f"{cpu['api']}/{cpu['broker']}/{cpu['load_generator']}  {ratio}"
        )
    for flood in floods:
        print(
            f"{flood['target']:9} overload with {flood['clients']} connections: "
            f"{flood['answers_per_s']:.0f} answers/s, {flood['accepted_per_s']:.0f} accepted/s, "
            f"{flood['refused_or_failed_fraction']:.0%} refused or failed, admission limit "
            f"(workers added up) mean {flood['admission_limit_mean']}"
        )
        for name in ("health", "status_health", "post_event"):
            found = flood.get(f"probe_{name}")
            if found:
                print(
                    f"  new-connection {name:13}: connect p50/max {found['connect_ms_p50']}/"
                    f"{found['connect_ms_max']} ms, answer p50/p99/max {found['answer_ms_p50']}/"
                    f"{found['answer_ms_p99']}/{found['answer_ms_max']} ms, {found['statuses']}"
                )


async def bench(
    bootstrap: str, broker_pid: int | None, work: Path, args: argparse.Namespace
) -> None:
    bodies = {}
    for batch in args.batch_sizes:
        bodies[batch] = work / f"bodies-{batch}.ndjson"
        write_bodies(bodies[batch], batch, count=20_000 if batch == 1 else 200, seed=batch)
    rows: list[dict[str, Any]] = []
    with baseline_worktree(args.baseline, work) as tree:
        targets = []
        if tree is not None:
            # Same worker count: a revision from before WEIR_API_WORKERS ignores it.
            targets.append(Target("baseline", baseline_pythonpath(tree), tree, args.workers))
        targets.append(Target("current", None, REPO_ROOT, args.workers))
        with clickhouse_shim(work / "chdb") as url:
            for target in targets:
                rows += await bench_target(target, bootstrap, broker_pid, work, args, bodies, url)
    print_table(rows)
    write_report(
        args.out,
        {
            "note": CORES_NOTE,
            "load_generator": "wrk -t2 (closed loop: one request in flight per connection)",
            "baseline_ref": args.baseline,
            "seconds_per_mode": args.seconds,
            "topic_partitions": args.partitions,
            "external_broker": args.bootstrap is not None,
            "modes": rows,
        },
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=128, help="connections (closed loop)")
    parser.add_argument(
        "--batch-clients", type=int, default=16, help="connections for the batch modes"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="duration per mode")
    parser.add_argument(
        "--batch-sizes",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 500],
        help="events per request per mode (1 = POST /events), e.g. 1,100,500",
    )
    parser.add_argument("--workers", type=int, default=0, help="WEIR_API_WORKERS (0 = per CPU)")
    parser.add_argument(
        "--overload-clients",
        type=int,
        default=0,
        help="also flood POST /events with this many connections and probe on new ones",
    )
    parser.add_argument("--baseline", help="also measure the API of this git revision")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topic")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--out", type=Path, default=Path("bench-results/ingest.json"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="weir-bench-ingest-") as tmp:
        work = Path(tmp)
        if args.bootstrap:
            await bench(args.bootstrap, None, work, args)
        else:
            with kafka_broker(work / "kafka") as (bootstrap, broker_pid):
                await bench(bootstrap, broker_pid, work, args)


if __name__ == "__main__":
    asyncio.run(main())
