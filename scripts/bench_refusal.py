"""CPU per refused request: one API worker whose only admission place is held, so that every other
POST /events is refused (503), driven by wrk at a saturating rate; the worker's CPU (user +
system, from /proc) divided by the requests wrk completed. No broker: the worker's producer is a
stand-in that never acknowledges (that is what holds the place). `--baseline REF` measures that
revision first (a worktree, same venv), then the working tree, `--rounds` times alternating.
Prints a table, writes bench-results/refusal.json.

    .venv/bin/python scripts/bench_refusal.py --seconds 15 --baseline e07472d
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from bench_common import (
    CORES_NOTE,
    REPO_ROOT,
    baseline_pythonpath,
    baseline_worktree,
    free_port,
    process_cpu_seconds,
    write_report,
)

WRK_SCRIPT = REPO_ROOT / "scripts" / "wrk" / "post_bodies.lua"
EVENT = '{"event_name":"signup","channel":"web","user_id":"u1","timestamp":%d}'


class NeverAcked:
    """A producer whose sends never return: a request that reaches it keeps its place."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, topic: str, messages: Sequence[Any], timeout: float | None = None) -> Any:
        await asyncio.Event().wait()

    async def ping(self, timeout: float | None = None, topic: str | None = None) -> None:
        return None


class NoStore:
    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


def serve(port: int) -> None:
    """The worker (a child process): `weir api`'s app and server options, limit 1."""
    import uvicorn

    from weir.api import serving_app
    from weir.core.config import Settings
    from weir.serving import GracefulServer, server_options

    settings = Settings(api_max_in_flight=1, port=port)
    app = serving_app(settings, producer=NeverAcked(), store=NoStore())  # type: ignore[arg-type]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **server_options(settings))
    GracefulServer(config).run()


def measure(pythonpath: str | None, seconds: int, connections: int) -> dict[str, Any]:
    port = free_port()
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    worker = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], env=env, stdout=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        body = EVENT % int(time.time())
        curl = ["curl", "-s", "-o", "/dev/null", "-H", "content-type: application/json"]
        held = subprocess.Popen([*curl, "-d", body, f"{url}/events"])
        for _ in range(200):  # until the place is taken
            refused = httpx.post(f"{url}/events", content=body, timeout=5)
            if refused.status_code == 503:
                break
            time.sleep(0.05)
        assert refused.status_code == 503, refused.text
        before = process_cpu_seconds(worker.pid)
        with tempfile.TemporaryDirectory() as work:
            bodies, summary = Path(work) / "bodies", Path(work) / "summary.json"
            bodies.write_text(body + "\n")
            env = dict(os.environ, WEIR_BENCH_BODIES=str(bodies), WEIR_BENCH_SUMMARY=str(summary))
            wrk = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(WRK_SCRIPT)]
            subprocess.run(
                [*wrk, f"{url}/events"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            cpu = process_cpu_seconds(worker.pid) - before
            done = json.loads(summary.read_text())
        health = httpx.get(f"{url}/health", timeout=5).status_code
        held.kill()
    finally:  # killed: its held request would make a graceful stop wait for the grace period
        worker.kill()
        worker.wait(timeout=30)
    requests = int(done["requests"])
    return {
        "requests": requests,
        "refused": int(done["non_2xx"]),
        "requests_per_second": round(requests / (done["duration_us"] / 1e6)),
        "worker_cpu_seconds": round(cpu, 2),
        "us_per_request": round(cpu / requests * 1e6, 1),
        "health_after": health,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--baseline", help="a git revision to measure first, same run")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results" / "refusal.json")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    runs: dict[str, list[dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory() as work,
        baseline_worktree(args.baseline, Path(work)) as tree,
    ):
        for _ in range(args.rounds):
            if tree is not None:
                path = baseline_pythonpath(tree)
                runs.setdefault("baseline", []).append(
                    measure(path, args.seconds, args.connections)
                )
            runs.setdefault("current", []).append(measure(None, args.seconds, args.connections))
    print(f"{'target':>9} {'µs/refusal':>11} {'refusals/s':>11} {'refused':>9}  (median of rounds)")
    medians = {}
    for target, done in runs.items():
        medians[target] = {
            key: statistics.median(run[key] for run in done)
            for key in ("us_per_request", "requests_per_second")
        }
        refused = sum(run["refused"] for run in done) / sum(run["requests"] for run in done)
        print(
            f"{target:>9} {medians[target]['us_per_request']:>11.1f} "
            f"{medians[target]['requests_per_second']:>11,.0f} {refused:>9.1%}"
        )
    print(CORES_NOTE)
    write_report(
        args.out,
        {
            "seconds": args.seconds,
            "connections": args.connections,
            "baseline": args.baseline,
            "runs": runs,
            "medians": medians,
        },
    )


if __name__ == "__main__":
    main()
