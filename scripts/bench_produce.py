"""Benchmark the Kafka producer alone: concurrent single-event sends with acks=all, as the API.

`--concurrency` tasks each send one message at a time (what concurrent POST /events do), through
`weir.stream`'s producer (coalescing per partition, batching.py). Reports sends/s and the CPU of
this process per send (the broker's is not counted). With `--baseline REF` the run alternates,
`--rounds` times, between that git revision (a worktree, same venv) and the working tree, each as a
child process against one broker, and reports the medians and their ratio.
Prints the figures, writes bench-results/produce.json.

    .venv/bin/python scripts/bench_produce.py --sends 20000
    .venv/bin/python scripts/bench_produce.py --sends 20000 --baseline main --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop
from bench_common import (
    CORES_NOTE,
    compare_with_baseline,
    create_topic,
    kafka_broker,
    kafka_settings,
    write_report,
)
from bench_consumer import build_messages

from weir.stream import make_producer


async def measure(bootstrap: str, sends: int, concurrency: int, partitions: int) -> dict[str, Any]:
    settings = kafka_settings(bootstrap, kafka_topic=f"bench-produce-{uuid.uuid4().hex[:8]}")
    await create_topic(settings, settings.kafka_topic, partitions)
    messages = build_messages(min(sends, 20_000))
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send(settings.kafka_topic, messages[:10])  # metadata, connections
        numbers = iter(range(sends))

        async def sender() -> None:
            for n in numbers:
                await producer.send(settings.kafka_topic, [messages[n % len(messages)]])

        began, cpu_before = time.perf_counter(), time.process_time()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu_before
    finally:
        await producer.stop()
    return {
        "sends": sends,
        "concurrency": concurrency,
        "sends_per_s": round(sends / wall, 1),
        "cpu_us_per_send": round(cpu / sends * 1e6, 1),
    }


def compare(args: argparse.Namespace, work: Path) -> None:
    print(f"sends={args.sends:,} concurrency={args.concurrency} rounds={args.rounds}")
    child = ["--sends", str(args.sends), "--concurrency", str(args.concurrency)]
    report = compare_with_baseline(
        __file__,
        [*child, "--partitions", str(args.partitions)],
        args.baseline,
        args.rounds,
        work,
        [("sends_per_s", "sends/s", ",.0f"), ("cpu_us_per_send", "CPU µs/send", ".1f")],
    )
    write_report(args.out, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=20_000, help="single-message sends")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent senders")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topic")
    parser.add_argument("--bootstrap", help="use this Kafka broker instead of starting one")
    parser.add_argument("--baseline", help="also measure this git revision, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target (--baseline)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/produce.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="weir-bench-produce-") as tmp:
        work = Path(tmp)
        if args.baseline:
            compare(args, work)
            return
        if args.bootstrap:
            figures = uvloop.run(
                measure(args.bootstrap, args.sends, args.concurrency, args.partitions)
            )
        else:
            with kafka_broker(work / "kafka") as (bootstrap, _pid):
                figures = uvloop.run(
                    measure(bootstrap, args.sends, args.concurrency, args.partitions)
                )
    print(CORES_NOTE)
    print(json.dumps(figures))
    write_report(args.out, {"note": CORES_NOTE, **figures})


if __name__ == "__main__":
    main()
