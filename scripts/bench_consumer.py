"""Benchmark the consumer: decode -> dedupe -> insert -> commit, in-process, into chDB.

Pre-fills a topic (Kafka via scripts/kafka.sh, or `--stream local`), runs ConsumerLoop until the
group's lag is 0, and reports events/s by wall time and per CPU-second of this process (chDB's
engine threads count in it), timed from the group's join (the join, a one-off, is reported apart;
before this round it was inside the pipeline's time). Then splits the cost: the stream's fetch
alone (a second group reading the whole topic, records dropped: the floor aiokafka sets), decode()
alone and insert_events alone. Prints the figures, writes bench-results/consumer.json.

With `--baseline REF` the run alternates, `--rounds` times, between that git revision (a worktree,
same venv) and the working tree, each as a child process against one broker, and reports the median
of each and their ratio: the machine's noise hits both alike.

    .venv/bin/python scripts/bench_consumer.py --events 200000
    .venv/bin/python scripts/bench_consumer.py --events 200000 --baseline main --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_common import (
    CORES_NOTE,
    compare_with_baseline,
    create_topic,
    event_payload,
    kafka_broker,
    write_report,
)

from weir.consumer.decode import Decoded, decode
from weir.consumer.dedupe import not_yet_stored
from weir.consumer.runner import ConsumerLoop
from weir.core.config import Settings, StoreBackend, StreamBackend
from weir.core.event import SCHEMA_VERSION, StoredEvent, validate_event
from weir.runtime import tune_gc
from weir.store import (
    Store,
    TableSpec,
    UserIds,
    insert_events,
    make_store,
    migrate,
    to_columns,
)
from weir.stream import Message, local_log, make_consumer, make_producer

try:
    from weir.stream import PlainRecord
except ImportError:  # a --baseline revision from before it (1c264d4 and older): same fields
    from weir.stream import Record as PlainRecord  # type: ignore[assignment]

PRODUCE_CHUNK = 10_000
PROFILE = bool(os.environ.get("WEIR_BENCH_PROFILE"))


def build_messages(count: int) -> list[Message]:
    """Events as the API puts them on the stream (same model, key and headers)."""
    rng, now, received = random.Random(7), int(time.time()), time.time_ns() // 1_000_000
    messages = []
    for index in range(count):
        event = validate_event(event_payload(index, now, rng), window=None)
        stored = StoredEvent.accept(event, received)
        key = stored.event_id.encode()
        headers = (
            ("content-type", b"application/json"),
            ("weir-schema", SCHEMA_VERSION),
            ("event-id", key),
        )
        messages.append(Message(key=key, value=stored.encode(), headers=headers))
    return messages


async def prefill(settings: Settings, messages: list[Message]) -> float:
    producer = make_producer(settings)
    await producer.start()
    began = time.perf_counter()
    try:
        for start in range(0, len(messages), PRODUCE_CHUNK):
            await producer.send(settings.kafka_topic, messages[start : start + PRODUCE_CHUNK])
    finally:
        await producer.stop()
    return time.perf_counter() - began


async def consume_all(settings: Settings, store: Store, partitions: int) -> dict[str, float]:
    """Run the real loop until every partition is assigned and fully committed."""
    spec = TableSpec.from_settings(settings)
    await migrate(store, spec)
    dlq = make_producer(settings)
    await dlq.start()

    loop = ConsumerLoop.from_settings(settings, store, spec, dlq)
    tune_gc()  # as `weir consumer` does
    task = asyncio.create_task(loop.run())
    try:
        # The group's join is timed apart: a one-off (0.15-0.2 s measured here), not part of
        # the rate at which a running consumer drains.
        join_began = time.perf_counter()
        while not loop.joined:
            await asyncio.sleep(0.01)
            if task.done():
                task.result()  # surfaces the loop's error
        join = time.perf_counter() - join_began
        cpu_before, began = time.process_time(), time.perf_counter()
        if PROFILE:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        rss_before = peak_rss = resident_mib()
        while True:
            await asyncio.sleep(0.02)
            peak_rss = max(peak_rss, resident_mib())
            if task.done():
                task.result()
            assigned = loop.consumer.assignment()
            if len(assigned) == partitions and sum((await loop.consumer.lag()).values()) == 0:
                break
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu_before
        if PROFILE:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    finally:
        loop.stop()
        await task
        await dlq.stop()
    rows = await store.query_rows(f"SELECT count() FROM {spec.raw_ref}")
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "join_seconds": join,
        "rss_growth_mib": peak_rss - rss_before,
        "stored": float(rows[0][0]),
    }


async def fetch_only(settings: Settings, events: int) -> tuple[float, float]:
    """Read the whole topic as the loop polls it, in a group of its own, and drop the records:
    what the stream layer (aiokafka's fetch, its record objects, ours) costs before any work."""
    consumer = make_consumer(
        settings, settings.kafka_topic, f"{settings.kafka_consumer_group}-fetch"
    )
    await consumer.start()
    try:
        seen = 0
        while not consumer.assignment():  # the join, as in the pipeline, is not timed
            polled = await consumer.getmany(timeout_ms=100, max_records=1)
            seen += sum(len(records) for records in polled.values())
        cpu_before, began = time.process_time(), time.perf_counter()
        while seen < events:
            polled = await consumer.getmany(timeout_ms=5000, max_records=settings.batch_max_events)
            if not polled:
                raise SystemExit(f"fetch only: read {seen} of {events} records, then nothing")
            seen += sum(len(records) for records in polled.values())
        return time.perf_counter() - began, time.process_time() - cpu_before
    finally:
        await consumer.stop()


def resident_mib() -> float:
    """This process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def decode_only(messages: list[Message], topic: str) -> tuple[list[Decoded], float, float]:
    records = [
        PlainRecord(topic, 0, offset, m.key, m.value, m.headers, 0)
        for offset, m in enumerate(messages)
    ]
    cpu_before, began = time.process_time(), time.perf_counter()
    decoded = [d for d in map(decode, records) if isinstance(d, Decoded)]
    return decoded, time.perf_counter() - began, time.process_time() - cpu_before


async def insert_only(
    store: Store, decoded: list[Decoded], batch: int
) -> tuple[dict[str, float], float, float]:
    """insert_events on pre-built columns into a fresh table; then the dedupe lookup of the same
    ids (the redelivery case: every id found)."""
    spec = TableSpec(f"bench_insert_{uuid.uuid4().hex[:6]}", "events", ttl_days=0)
    await migrate(store, spec)
    chunks = [decoded[i : i + batch] for i in range(0, len(decoded), batch)]
    users = UserIds(store, spec)  # dense ids claimed before timing: the rows are pre-built
    columns = [
        to_columns(
            [d.event for d in c],
            [d.trace_id for d in c],
            await users.uids([d.event.user_id for d in c]),
        )
        for c in chunks
    ]
    cpu_before, began = time.process_time(), time.perf_counter()
    for number, data in enumerate(columns):
        await insert_events(store, spec, data, dedup_token=f"bench/{number}")
    insert = {"wall": time.perf_counter() - began, "cpu": time.process_time() - cpu_before}
    cpu_before, began = time.process_time(), time.perf_counter()
    for chunk in chunks:
        await not_yet_stored(store, spec, chunk)
    return insert, time.perf_counter() - began, time.process_time() - cpu_before


def rate(events: int, seconds: float) -> float:
    return round(events / seconds, 1) if seconds > 0 else 0.0


async def bench(settings: Settings, args: argparse.Namespace) -> None:
    began = time.perf_counter()
    messages = build_messages(args.events)
    build_seconds = time.perf_counter() - began
    if settings.stream_backend is StreamBackend.KAFKA:
        await create_topic(settings, settings.kafka_topic, args.partitions)
    else:
        local_log(settings).topic(settings.kafka_topic, args.partitions)
    prefill_seconds = await prefill(settings, messages)
    fetch_wall, fetch_cpu = await fetch_only(settings, args.events)
    store = make_store(settings)
    try:
        run = await consume_all(settings, store, args.partitions)
        decoded, decode_wall, decode_cpu = decode_only(messages, settings.kafka_topic)
        insert, dedupe_wall, dedupe_cpu = await insert_only(
            store, decoded, settings.batch_max_events
        )
    finally:
        await store.close()
    if run["stored"] != args.events:
        raise SystemExit(f"stored {run['stored']:.0f} rows, expected {args.events}")
    n = args.events
    figures: dict[str, Any] = {
        "pipeline_events_per_s_wall": rate(n, run["wall_seconds"]),
        "pipeline_events_per_cpu_s": rate(n, run["cpu_seconds"]),
        "pipeline_wall_seconds": round(run["wall_seconds"], 2),
        "pipeline_cpu_seconds": round(run["cpu_seconds"], 2),
        "group_join_seconds": round(run["join_seconds"], 2),
        "pipeline_rss_growth_mib": round(run["rss_growth_mib"], 1),
        "fetch_only_events_per_s": rate(n, fetch_wall),
        "fetch_only_events_per_cpu_s": rate(n, fetch_cpu),
        "decode_only_events_per_s": rate(n, decode_wall),
        "decode_only_events_per_cpu_s": rate(n, decode_cpu),
        "insert_only_events_per_s": rate(n, insert["wall"]),
        "insert_only_events_per_cpu_s": rate(n, insert["cpu"]),
        "dedupe_lookup_events_per_s": rate(n, dedupe_wall),
        "dedupe_lookup_events_per_cpu_s": rate(n, dedupe_cpu),
    }
    print(CORES_NOTE)
    print(
        f"stream={settings.stream_backend.value} store=chdb events={n:,} "
        f"partitions={args.partitions} batch_max_events={settings.batch_max_events} "
        f"batch_max_bytes={settings.batch_max_bytes} "
        f"(built in {build_seconds:.1f} s, pre-filled in {prefill_seconds:.1f} s)"
    )
    print("CPU = this process (Python + chDB engine threads); the broker's CPU is not counted")
    print(f"group join (not in the pipeline's time): {run['join_seconds']:.2f} s")
    print(f"resident memory grew by at most {run['rss_growth_mib']:.0f} MiB during the pipeline")
    print(f"{'step':40} {'events/s wall':>14} {'events/CPU-s':>13}")
    for label, key in (
        ("pipeline (joined loop until lag 0)", "pipeline"),
        ("fetch only (records dropped)", "fetch_only"),
        ("decode only", "decode_only"),
        ("dedupe lookup only (ids all present)", "dedupe_lookup"),
        ("insert only (pre-built columns)", "insert_only"),
    ):
        wall_key = f"{key}_events_per_s_wall" if key == "pipeline" else f"{key}_events_per_s"
        print(
            f"{label:40} {figures[wall_key]:>14,.0f} {figures[f'{key}_events_per_cpu_s']:>13,.0f}"
        )
    write_report(
        args.out,
        {
            "note": CORES_NOTE,
            "stream": settings.stream_backend.value,
            "store": "chdb",
            "events": n,
            "partitions": args.partitions,
            "batch_max_events": settings.batch_max_events,
            "batch_max_bytes": settings.batch_max_bytes,
            "prefill_seconds": round(prefill_seconds, 2),
            **figures,
        },
    )


def compare(args: argparse.Namespace, work: Path) -> None:
    """Alternate baseline and working tree, each a child run of this script on one broker."""
    print(f"events={args.events:,} partitions={args.partitions} rounds={args.rounds}")
    child = ["--events", str(args.events), "--partitions", str(args.partitions)]
    report = compare_with_baseline(
        __file__,
        [*child, *(["--batch", str(args.batch)] if args.batch else [])],
        args.baseline,
        args.rounds,
        work,
        [
            ("pipeline_events_per_s_wall", "events/s wall", ",.0f"),
            ("pipeline_events_per_cpu_s", "events/CPU-s", ",.0f"),
        ],
    )
    write_report(args.out, {**report, "events": args.events})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to pre-fill")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topic")
    parser.add_argument(
        "--batch", type=int, help="WEIR_BATCH_MAX_EVENTS (default: the settings' own)"
    )
    parser.add_argument("--stream", choices=["kafka", "local"], default="kafka")
    parser.add_argument("--bootstrap", help="use this Kafka broker instead of starting one")
    parser.add_argument("--baseline", help="also measure this git revision, alternating")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target (--baseline)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/consumer.json"))
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="weir-bench-consumer-") as tmp:
        work = Path(tmp)
        if args.baseline:
            compare(args, work)
            return
        common: dict[str, Any] = {
            "store_backend": StoreBackend.CHDB,
            "data_dir": work / "weir",
            "kafka_topic": f"bench-consumer-{run}",
            "kafka_dlq_topic": f"bench-consumer-{run}.dlq",
            "kafka_consumer_group": f"bench-{run}",
            "kafka_auto_offset_reset": "earliest",
            **({"batch_max_events": args.batch} if args.batch else {}),
            "metrics_port": 0,
            "producer_max_pending": PRODUCE_CHUNK * 4,
            "produce_timeout_seconds": 60.0,
        }
        if args.stream == "local":
            settings = Settings(stream_backend=StreamBackend.LOCAL, **common)
            await bench(settings, args)
        elif args.bootstrap:
            settings = Settings(kafka_bootstrap_servers=args.bootstrap, **common)
            await bench(settings, args)
        else:
            with kafka_broker(work / "kafka") as (bootstrap, _pid):
                settings = Settings(kafka_bootstrap_servers=bootstrap, **common)
                await bench(settings, args)


if __name__ == "__main__":
    asyncio.run(main())
