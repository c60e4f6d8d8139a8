"""Benchmark /metrics queries on chDB: load N events through the real schema and views, then time
the queries module (p50/p95 per query shape). Prints a table, writes bench-results/metrics.json.

    .venv/bin/python scripts/bench_metrics.py --events 10000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from weir.store import (
    INSERT_COLUMNS,
    GroupBy,
    MetricsQuery,
    TableSpec,
    migrate,
    query_groups,
    query_totals,
)
from weir.store.chdb import ChdbStore

DAY = 86400
CHUNK = 1_000_000


def generate_sql(spec: TableSpec, offset: int, count: int, start: int, span: int) -> str:
    """Events made in-engine: 5 names, 4 channels, 200k users, spread over `span` seconds."""
    return (
        f"INSERT INTO {spec.raw_ref} ({', '.join(INSERT_COLUMNS)}) SELECT "
        "concat('ev-', toString(number)), "
        "['click','view','signup','purchase','share'][number % 5 + 1], "
        "['web','ios','android','email'][intDiv(number, 7) % 4 + 1], "
        "if(number % 3 = 0, '', concat('c', toString(number % 17))), "
        "concat('u', toString(cityHash64(number) % 200000)), "
        f"toDateTime({start} + cityHash64(number, 1) % {span}, 'UTC'), "
        "[], '{\"k\":1}', now64(3), '' "
        f"FROM numbers({offset}, {count})"
    )


async def load(store: ChdbStore, spec: TableSpec, events: int, start: int, span: int) -> float:
    began = time.perf_counter()
    for offset in range(0, events, CHUNK):
        await store.command(generate_sql(spec, offset, min(CHUNK, events - offset), start, span))
    return time.perf_counter() - began


async def timed(call: Any, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.95))], 2),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/weir-bench-chdb"))
    parser.add_argument("--out", type=Path, default=Path("bench-results/metrics.json"))
    args = parser.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    store = ChdbStore(args.data_dir)
    spec = TableSpec("bench", "events", ttl_days=0)
    await migrate(store, spec)
    end = int(time.time()) // DAY * DAY
    start, span = end - args.days * DAY, args.days * DAY
    load_seconds = await load(store, spec, args.events, start, span)

    wide = (start + 1234, end - 4321)  # ragged edges: raw, hour and day pieces
    narrow = (end - 3 * DAY + 1800, end - 3 * DAY + 1800 + 5400)  # 90 minutes
    shapes: dict[str, MetricsQuery] = {
        "totals, wide window": MetricsQuery("click", *wide),
        "group_by channel, wide": MetricsQuery("click", *wide, group_by=GroupBy.CHANNEL),
        "group_by hour, wide": MetricsQuery("click", *wide, group_by=GroupBy.HOUR),
        "group_by day, wide": MetricsQuery("click", *wide, group_by=GroupBy.DAY),
        "totals, wide, channel=ios": MetricsQuery("click", *wide, channel="ios"),
        "totals, narrow (90 min)": MetricsQuery("click", *narrow),
        "group_by hour, narrow": MetricsQuery("click", *narrow, group_by=GroupBy.HOUR),
    }
    results: dict[str, dict[str, float]] = {}
    for name, q in shapes.items():
        if q.group_by is None:
            results[name] = await timed(lambda q=q: query_totals(store, spec, q), args.repeat)
        else:
            results[name] = await timed(lambda q=q: query_groups(store, spec, q), args.repeat)
    brute = (
        f"SELECT count(), uniqExact(user_id) FROM {spec.raw_ref} WHERE event_name = 'click' "
        f"AND timestamp BETWEEN {wide[0]} AND {wide[1]}"
    )
    results["reference: raw-table scan, totals wide"] = await timed(
        lambda: store.query_rows(brute), max(3, args.repeat // 4)
    )
    exact = await query_totals(store, spec, shapes["totals, wide window"])
    check = (await store.query_rows(brute))[0]
    assert tuple(exact) == (int(check[0]), int(check[1])), (exact, check)
    await store.close()

    print(f"loaded {args.events:,} events over {args.days} days in {load_seconds:.1f} s")
    print(f"{'query':42} {'p50 ms':>9} {'p95 ms':>9}")
    for name, r in results.items():
        print(f"{name:42} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "events": args.events,
        "days": args.days,
        "repeat": args.repeat,
        "load_seconds": round(load_seconds, 1),
        "queries": results,
        "engine": "chdb",
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
