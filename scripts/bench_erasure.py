"""Benchmark erasing a user (`weir.store.erase_user`: the user's raw rows deleted, the rollup
buckets they were counted in rebuilt) at N events, and --batch users in one pass (`erase_users`,
what `weir erase-user` does with several). Events are generated inside chDB like
bench_metrics.py's (same generator and workloads) into a scratch directory (not cached: erasing
changes the data, and chDB opens one data path per process, so a cached copy could not be opened
after loading it). Users are picked by activity (the median and the most active user, plus a
sample), each erasure timed, and afterwards every bench_metrics query shape is compared to a
brute-force recount over the raw table. Prints a table and writes
bench-results/erasure-<workload>-<N>.json.

    .venv/bin/python scripts/bench_erasure.py --events 10000000
    .venv/bin/python scripts/bench_erasure.py --events 200000 --users 2000   # a quick check

Run under `flock /tmp/weir-bench.lock`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_common import CORES_NOTE, write_report
from bench_metrics import DAY, SPEC, at_store, load, shapes, user_expr

from weir.store import erase_user, erase_users, migrate
from weir.store.chdb import ChdbStore


async def pick_users(store: ChdbStore, sample: int, batch: int) -> tuple[dict[str, str], list[str]]:
    """(user_id -> why it was picked: the median and the most active user, and a sample; a batch
    of other users spread over the activity range)."""
    rows = await store.query_rows(
        f"SELECT user_id, count() AS n FROM {SPEC.raw_ref} GROUP BY user_id ORDER BY n, user_id"
    )
    picked = {str(rows[len(rows) // 2][0]): "median", str(rows[-1][0]): "most active"}
    step = max(1, len(rows) // (sample + 1))
    for user, _ in rows[step::step][:sample]:
        picked.setdefault(str(user), "sample")
    rest = [str(user) for user, _ in rows if str(user) not in picked]
    return picked, rest[:: max(1, len(rest) // batch)][:batch]


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--workload", choices=("uniform", "heavy-tail"), default="uniform")
    parser.add_argument("--names", type=int, default=10)
    parser.add_argument("--users", type=int, default=1_000_000, help="uniform workload only")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--sample", type=int, default=3, help="users erased besides two picked")
    parser.add_argument("--batch", type=int, default=100, help="users erased in one pass")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="weir-bench-erasure-") as scratch:
        store = ChdbStore(Path(scratch) / "chdb")
        try:
            await migrate(store, SPEC)
            end = (int(time.time()) // DAY + 1) * DAY
            start = end - args.days * DAY
            load_seconds = await load(store, args, start)
            users, batch = await pick_users(store, args.sample, args.batch)
            runs = []
            for user, why in users.items():
                erased = await erase_user(store, SPEC, user)
                runs.append(
                    {
                        "user_id": user,
                        "picked": why,
                        "events": erased.total,
                        "hours": erased.hours,
                        "seconds": round(erased.seconds, 3),
                    }
                )
                print(
                    f"  {why:12} {user:>12}: {erased.total:>6,} events, {erased.hours:>5,} hours"
                    f" rebuilt, {erased.seconds:7.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
            together = await erase_users(store, SPEC, batch)
            print(
                f"  {len(batch)} users in one pass: {together.total:,} events, {together.hours:,}"
                f" hours rebuilt, {together.seconds:.2f} s",
                file=sys.stderr,
                flush=True,
            )
            checked = await at_store(store, shapes(start, end), 1)
            remaining = int((await store.query_rows(f"SELECT count() FROM {SPEC.raw_ref}"))[0][0])
        finally:
            await store.close()
    seconds = [r["seconds"] for r in runs]
    print(
        f"{args.events:,} events ({args.workload}, {user_expr(args)[2]:,} users, "
        f"{args.days} days): {len(runs)} erasures, median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s; {len(batch)} users in one pass {together.seconds:.2f} s; "
        f"afterwards {len(checked)} query shapes equal a recount"
    )
    print(f"{'user':>14} {'picked':12} {'events':>8} {'hours':>7} {'seconds':>8}")
    for r in runs:
        print(
            f"{r['user_id']:>14} {r['picked']:12} {r['events']:>8,} {r['hours']:>7,} "
            f"{r['seconds']:>8.2f}"
        )
    report = {
        "events": args.events,
        "workload": args.workload,
        "names": args.names,
        "users": user_expr(args)[2],
        "days": args.days,
        "load_seconds": round(load_seconds, 1),
        "erasures": runs,
        "median_seconds": round(statistics.median(seconds), 3),
        "max_seconds": round(max(seconds), 3),
        "batch": {
            "users": len(batch),
            "events": together.total,
            "hours": together.hours,
            "seconds": round(together.seconds, 3),
        },
        "remaining_events": remaining,
        "exact_after": all(r["exact"] for r in checked.values()),
        "engine": "chdb",
        "note": CORES_NOTE,
    }
    out = args.out or Path(f"bench-results/erasure-{args.workload}-{args.events}.json")
    write_report(out, report)


if __name__ == "__main__":
    asyncio.run(main())
