"""Benchmark /metrics at scale: load N events through the real schema and views (generated inside
chDB with numbers(), not through Python), time the queries module at the store, then `GET /metrics`
on a running `weir dev` on the same data (a plain client in a child process, one keep-alive
connection), idle and under 2,000 events/s of ingestion, with the share of each answer spent in
the store inside the API (its Server-Timing header). Every
answer timed is compared to a brute-force recount over the raw table first. Beside the store's
plan: the raw scan, and for the shapes that read the rollups without channel, the same query
answered from the per-channel rollups alone (the plan before them). Prints a table and writes
bench-results/metrics-<workload>-<events>.json.

    .venv/bin/python scripts/bench_metrics.py --events 100000000
    .venv/bin/python scripts/bench_metrics.py --events 100000000 --workload heavy-tail

Workloads: `uniform`: each event's user drawn uniformly from --users. `heavy-tail`: 40 % of
events from 10k core users (every day), 20 % from 200k users active on ~3 days each, 40 % from a
long tail where most users are seen once (~0.4 x events users). Dense ids are given in order of
first appearance as the consumers would (tail users appear over time, so do their ids).

The loaded database is cached under ${XDG_CACHE_HOME:-~/.cache}/weir/bench-metrics-<params>/ and
reused by the next run with the same parameters (--reload rebuilds it; --load-only stops after
loading, so the timed part can run later on a quiet machine); a cached database made
before a schema change is migrated as an installation would be (`weir.store.migrate`: new
rollups backfilled from the raw table), not reloaded. Run under `flock /tmp/weir-bench.lock`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from bench_common import CORES_NOTE, REPO_ROOT, free_port, write_report
from bench_freshness import background_load

from weir.store import (
    INSERT_COLUMNS,
    Granularity,
    GroupBy,
    MetricsQuery,
    Store,
    TableSpec,
    migrate,
    query_groups,
    query_totals,
    rollup_for,
)
from weir.store.chdb import ChdbStore
from weir.store.queries import RAW_WINDOW_SECONDS
from weir.store.users import SLOT_SIZE

DAY = 86400
CHUNK = 2_000_000
CHANNELS = ("web", "mobile", "api", "email")
SCHEMA = "v2"  # bump when the schema changes: the cache key
SPEC = TableSpec("bench", "events", ttl_days=0)
# The plan before the rollups without channel: every query from the per-channel rollups.
PER_CHANNEL = dataclasses.replace(SPEC, rollups=tuple(r for r in SPEC.rollups if r.dimensions))
NAME = "e3"


def cache_dir(args: argparse.Namespace) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "weir"
    key = f"{SCHEMA}-{args.workload}-{args.events}-{args.names}n-{args.users}u-{args.days}d"
    return base / f"bench-metrics-{key}"


def user_expr(args: argparse.Namespace) -> tuple[str, str, int]:
    """(user index k, timestamp offset within the span, number of user indexes)."""
    span = args.days * DAY
    if args.workload == "uniform":
        return f"cityHash64(number) % {args.users}", f"cityHash64(number, 1) % {span}", args.users
    core, mid, tail = 10_000, 200_000, max(1, int(args.events * 0.4))
    tier, r, h = (
        "cityHash64(number, 2) % 100",
        f"cityHash64(number, 1) % {span}",
        "cityHash64(number, 3)",
    )
    tail_k = f"{core + mid} + intDiv({r} * {tail}, {span})"
    k = f"multiIf({tier} < 40, {h} % {core}, {tier} < 60, {core} + {h} % {mid}, {tail_k})"
    mid_ts = f"(({h} % {mid}) * intDiv({span}, {mid}) + intDiv({h}, {mid}) % (3 * {DAY})) % {span}"
    ts = f"if({tier} >= 40 AND {tier} < 60, {mid_ts}, {r})"
    return k, ts, core + mid + tail


def generate_sql(args: argparse.Namespace, offset: int, count: int, start: int) -> str:
    k, ts, _ = user_expr(args)
    channels = ", ".join(f"'{c}'" for c in CHANNELS)
    values = {
        "event_id": "concat('ev-', toString(number))",
        "event_name": f"concat('e', toString(number % {args.names}))",
        "channel": f"[{channels}][intDiv(number, 7) % {len(CHANNELS)} + 1]",
        "campaign_id": "''",
        "user_id": "concat('u', toString(k))",
        "user_uid": "toUInt32(k + 1)",  # = slot_uids: user k holds the k-th id of slots 0, 1, ...
        "timestamp": f"toDateTime({start} + {ts}, 'UTC')",
        "client_timestamp": f"toDateTime({start} + {ts}, 'UTC')",
        "tags": "[]",
        "metadata": "'{}'",
        "received_at": "now64(3)",
        "trace_id": "''",
    }
    select = ", ".join(values[name] for name in INSERT_COLUMNS)
    return (
        f"INSERT INTO {SPEC.raw_ref} ({', '.join(INSERT_COLUMNS)}) SELECT {select} "
        f"FROM (SELECT number, {k} AS k FROM numbers({offset}, {count}))"
    )


async def load(store: Store, args: argparse.Namespace, start: int) -> float:
    """Raw rows through the real views, plus the user id claims and slot leases they imply."""
    began = time.perf_counter()
    _, _, users = user_expr(args)
    slots = -(-users // SLOT_SIZE)
    await store.command(
        f"INSERT INTO {SPEC.ranges_ref} (slot, owner) SELECT number, 'bench-loader' "
        f"FROM numbers({slots})"
    )
    await store.command(
        f"INSERT INTO {SPEC.users_ref} (user_id, uid) "
        f"SELECT concat('u', toString(number)), toUInt32(number + 1) FROM numbers({users})"
    )
    for offset in range(0, args.events, CHUNK):
        await store.command(generate_sql(args, offset, min(CHUNK, args.events - offset), start))
        print(f"  loaded {min(offset + CHUNK, args.events):,}", file=sys.stderr, flush=True)
    await optimize_derived(store)
    return time.perf_counter() - began


async def optimize_derived(store: Store) -> None:
    """Steady state for the tables queries read: a live table's background merges keep up with
    the rollups and the edges (a load or a backfill leaves them in many parts, and merges run
    only while a process holds the data open). The raw table is left as loaded."""
    for ref in [*(SPEC.rollup_ref(rollup) for rollup in SPEC.rollups), SPEC.edges_ref]:
        await store.command(f"OPTIMIZE TABLE {ref} FINAL")


def reads(spec: TableSpec, q: MetricsQuery) -> list[str]:
    """The tables `spec`'s plan reads for `q`: rollups for whole days and hours, the edges."""
    if q.from_ts is not None and q.to_ts is not None and q.to_ts - q.from_ts < RAW_WINDOW_SECONDS:
        return [spec.edges_table]  # a short window: raw rows only
    grains: tuple[Granularity, ...] = ("hour",) if q.group_by is GroupBy.HOUR else ("day", "hour")
    found = (rollup_for(spec, q, g) for g in grains)
    return [r.table_name(spec.table) for r in found if r is not None] + [spec.edges_table]


def shapes(start: int, end: int) -> dict[str, MetricsQuery]:
    wide = (end - 30 * DAY + 1234, end - 4321)  # 30 days with ragged edges
    narrow = (end - 3 * DAY + 1800, end - 3 * DAY + 1800 + 5400)
    return {
        "totals, 30 days": MetricsQuery(NAME, *wide),
        "group_by channel, 30 days": MetricsQuery(NAME, *wide, group_by=GroupBy.CHANNEL),
        "group_by hour, 30 days": MetricsQuery(NAME, *wide, group_by=GroupBy.HOUR),
        "group_by day, 30 days": MetricsQuery(NAME, *wide, group_by=GroupBy.DAY),
        "totals, 30 days, channel=mobile": MetricsQuery(NAME, *wide, channel="mobile"),
        "totals, 90-minute window": MetricsQuery(NAME, *narrow),
        "group_by hour, 90 minutes": MetricsQuery(NAME, *narrow, group_by=GroupBy.HOUR),
    }


def brute_sql(q: MetricsQuery) -> str:
    """The recount over the raw table: uniqExact of the user_id strings, no rollup, no uid."""
    where = f"event_name = '{q.event_name}' AND timestamp BETWEEN {q.from_ts} AND {q.to_ts}"
    if q.channel:
        where += f" AND channel = '{q.channel}'"
    group = {
        None: "toUInt8(0)",
        GroupBy.CHANNEL: "channel",
        GroupBy.HOUR: "toStartOfHour(timestamp)",
        GroupBy.DAY: "toStartOfDay(timestamp)",
    }[q.group_by]
    label = (
        "g" if q.group_by in (None, GroupBy.CHANNEL) else "formatDateTime(g, '%Y-%m-%dT%H:%i:%SZ')"
    )
    return (
        f"SELECT {label}, count(), uniqExact(user_id) FROM {SPEC.raw_ref} WHERE {where} "
        f"GROUP BY {group} AS g ORDER BY g"
    )


async def answer(store: Store, q: MetricsQuery, spec: TableSpec = SPEC) -> list[tuple[Any, ...]]:
    if q.group_by is None:
        return [tuple(await query_totals(store, spec, q))]
    return [tuple(row) for row in await query_groups(store, spec, q)]


async def timed(store: Store, q: MetricsQuery, spec: TableSpec, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await answer(store, q, spec)
        samples.append((time.perf_counter() - began) * 1000)
    return summary(samples)


def summary(samples: list[float]) -> dict[str, float]:
    """p50 and p99 by nearest rank: of 100 samples, the 99th (earlier rounds took the 100th, the
    maximum, as p99)."""
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[max(0, math.ceil(len(ordered) * 0.99) - 1)], 2),
        "n": len(ordered),
    }


async def at_store(store: Store, queries: dict[str, MetricsQuery], repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, q in queries.items():
        brute = await store.query_rows(brute_sql(q))
        expected = (
            [(int(t), int(u)) for _, t, u in brute]
            if q.group_by is None
            else [(str(g), int(t), int(u)) for g, t, u in brute]
        )
        got = await answer(store, q)
        assert got == (expected or [(0, 0)]), (name, got[:3], expected[:3])
        result: dict[str, Any] = {"reads": reads(SPEC, q)}
        result["rollups"] = await timed(store, q, SPEC, repeat)
        if reads(PER_CHANNEL, q) != result["reads"]:
            assert await answer(store, q, PER_CHANNEL) == got, name
            result["per_channel"] = await timed(store, q, PER_CHANNEL, repeat)
        raw = []
        for _ in range(max(3, repeat // 10)):
            began = time.perf_counter()
            await store.query_rows(brute_sql(q))
            raw.append((time.perf_counter() - began) * 1000)
        results[name] = result | {"raw_scan": summary(raw), "exact": True}
    return results


def params(q: MetricsQuery) -> dict[str, Any]:
    out: dict[str, Any] = {"event_name": q.event_name, "from": q.from_ts, "to": q.to_ts}
    if q.group_by is not None:
        out["group_by"] = q.group_by.value
    if q.channel is not None:
        out["channel"] = q.channel
    return out


# Untimed GETs of each shape first, as the store's timing follows its correctness check: the
# first answer of a shape through a fresh `weir dev` reads the tables' marks from disk.
API_WARM_UP = 3


def timed_gets(port: int, path: str, repeat: int) -> tuple[list[float], list[float]]:
    """`repeat` sequential GETs of `path` on one keep-alive connection: ms each, and the store's
    ms of each (its Server-Timing). Runs in a child process with a plain blocking client: timed
    from the bench's own event loop with httpx, the client's CPU (and the load generator's,
    sharing the loop) added 3-9 ms per request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples, in_store = [], []
    for n in range(API_WARM_UP + repeat):
        began = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if n >= API_WARM_UP:
            samples.append((time.perf_counter() - began) * 1000)
            timing = response.getheader("server-timing") or ""
            in_store.append(float(timing.partition("dur=")[2] or "nan"))
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
    connection.close()
    return samples, in_store


async def through_api(
    base: str, port: int, queries: dict[str, MetricsQuery], repeat: int, rate: int
) -> dict[str, Any]:
    """p50/p99 of GET /metrics per shape; with `rate` > 0, while events arrive at that rate."""
    results: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1) as client:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http_load:
            stop = asyncio.Event()
            began_all = time.perf_counter()  # the rate is over the whole run, warm-up included
            loader = asyncio.create_task(background_load(http_load, rate, stop)) if rate else None
            if loader:
                await asyncio.sleep(3)  # the consumer is flushing batches by now
            for name, q in queries.items():
                query = {k: v for k, v in params(q).items() if v is not None}
                path = f"/metrics?{urllib.parse.urlencode(query)}"
                samples, in_store = await loop.run_in_executor(
                    client, timed_gets, port, path, repeat
                )
                # The answers' time in the store, inside the API process: the rest is the API's.
                results[name] = summary(samples) | {
                    "store_p50_ms": round(statistics.median(in_store), 2)
                }
            if loader:
                stop.set()
                accepted = await loader
                elapsed = time.perf_counter() - began_all
                results["ingested_events_per_s"] = round(accepted / elapsed)
    return results


def start_dev(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "WEIR_DATA_DIR": str(data_dir),
        "WEIR_STORE_BACKEND": "chdb",
        "WEIR_STREAM_BACKEND": "local",
        "WEIR_CLICKHOUSE_DATABASE": SPEC.database,
        "WEIR_TABLE": SPEC.table,
        "WEIR_TTL_DAYS": "0",
        "WEIR_PORT": str(port),
        "WEIR_METRICS_PORT": "0",
        "WEIR_LOG_LEVEL": "WARNING",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "weir.cli", "dev"], env=env, cwd=REPO_ROOT, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


async def wait_ready(base: str, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("weir dev exited; see its log")
            try:
                if (await http.get("/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("weir dev not ready in time")


def per_channel(result: dict[str, Any]) -> str:
    """The per-channel plan's p50/p99, or `same` where the store's plan is that one."""
    timing = result.get("per_channel")
    return f"{timing['p50_ms']:.1f}/{timing['p99_ms']:.1f}" if timing else "same"


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--workload", choices=("uniform", "heavy-tail"), default="uniform")
    parser.add_argument("--names", type=int, default=10)
    parser.add_argument("--users", type=int, default=1_000_000, help="uniform workload only")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--rate", type=int, default=2000, help="events/s during the API run")
    parser.add_argument("--reload", action="store_true", help="rebuild the cached dataset")
    parser.add_argument("--no-api", action="store_true", help="only time the store")
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="load (or migrate) the cached dataset and stop: the long load can run while the "
        "machine is busy, the timed queries later on a quiet one",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    data = cache_dir(args)
    marker = data / "loaded.json"
    if args.reload or not marker.exists():
        shutil.rmtree(data, ignore_errors=True)
        store = ChdbStore(data / "chdb")
        await migrate(store, SPEC)
        end = (int(time.time()) // DAY + 1) * DAY
        start = end - args.days * DAY
        seconds = await load(store, args, start)
        marker.write_text(json.dumps({"start": start, "end": end, "load_seconds": seconds}))
    else:
        store = ChdbStore(data / "chdb")
        migrated = await migrate(store, SPEC)
        if migrated.applied:
            print(
                f"  migrated the cached data: {len(migrated.applied)} statements", file=sys.stderr
            )
            await optimize_derived(store)
    if args.load_only:
        await store.close()
        print(f"dataset ready in {data}")
        return
    loaded = json.loads(marker.read_text())
    queries = shapes(loaded["start"], loaded["end"])
    store_results = await at_store(store, queries, args.repeat)
    window = await store.query_rows(brute_sql(queries["totals, 30 days"]))
    await store.close()
    api: dict[str, Any] = {}
    if not args.no_api:
        port = free_port()
        log = data / "dev.log"
        dev = start_dev(data, port, log)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base, dev, 300)
            api["idle"] = await through_api(base, port, queries, args.repeat, 0)
            api["ingesting"] = await through_api(base, port, queries, args.repeat, args.rate)
        finally:
            dev.terminate()
            dev.wait(60)

    print(
        f"{args.events:,} events ({args.workload}), {args.names} names over {args.days} days; "
        f"{NAME} in the 30-day window: {int(window[0][1]):,} events, {int(window[0][2]):,} users; "
        f"loaded in {loaded['load_seconds']:.0f} s (cached in {data})"
    )
    head = (
        f"{'query':34} {'raw scan p50/p99':>17} {'per-channel p50/p99':>19} {'store p50/p99':>15}"
    )
    if api:
        head += f" {'API p50/p99':>13} {'in store p50':>12} {'API+ingest p50/p99':>19}"
    print(head)
    for name, r in store_results.items():
        line = (
            f"{name:34} {r['raw_scan']['p50_ms']:>8.1f}/{r['raw_scan']['p99_ms']:<8.1f}"
            f" {per_channel(r):>19}"
            f" {r['rollups']['p50_ms']:>7.1f}/{r['rollups']['p99_ms']:<7.1f}"
        )
        if api:
            idle, busy = api["idle"][name], api["ingesting"][name]
            line += f" {idle['p50_ms']:>6.1f}/{idle['p99_ms']:<6.1f}"
            line += f" {idle['store_p50_ms']:>12.1f}"
            line += f" {busy['p50_ms']:>9.1f}/{busy['p99_ms']:<9.1f}"
        print(line)
    if api:
        print(f"ingestion during the last column: {api['ingesting']['ingested_events_per_s']} ev/s")
    report = {
        "events": args.events,
        "workload": args.workload,
        "names": args.names,
        "users": user_expr(args)[2],
        "days": args.days,
        "window_events": int(window[0][1]),
        "window_users": int(window[0][2]),
        "repeat": args.repeat,
        "load_seconds": round(loaded["load_seconds"], 1),
        "store": store_results,
        "api": api,
        "engine": "chdb",
        "note": CORES_NOTE,
    }
    out = args.out or Path(f"bench-results/metrics-{args.workload}-{args.events}.json")
    write_report(out, report)


if __name__ == "__main__":
    asyncio.run(main())
