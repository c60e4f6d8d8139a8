"""Erasing a user: every stored event of a `user_id` deleted, and no rollup counting it any more.

1. The hours the user has events in (one read of the raw table's user_id and timestamp columns).
2. A lightweight `DELETE` of the user's raw rows, narrowed to the months of those hours (the
   table's partitions), synchronous: when it returns, no query sees the rows.
3. `rollups.rebuild_rollups` for exactly those hours: each rollup's buckets holding them are
   recomputed from the raw table, now without the user. Rebuilding only the buckets the user was
   counted in keeps the cost proportional to the user's activity, not to the table.

What stays: the user's dense id claim in `<table>_users` (user_id -> uid, no event data). A
returning user keeps their id, so every consumer, including those that cached it, counts them
under one id; forgetting it would let a consumer's cached id and a newly claimed one count one
user twice.

Exact under the same condition as `rebuild_rollups`: no event of those buckets is inserted while
the erasure runs (erase users of past hours, or pause the consumers). Events of the user still
on their way (in Kafka, not yet consumed) are stored after the erasure, and need another one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from weir.store import ddl
from weir.store.base import Store
from weir.store.rollups import rebuild_rollups
from weir.store.spec import TableSpec


@dataclass(frozen=True)
class Erasure:
    """What `erase_user` did: events deleted, hours whose rollup buckets were rebuilt."""

    user_id: str
    events: int
    hours: int
    seconds: float


def _user_is(user_id: str) -> str:
    # As hex: only [0-9a-f] reaches the SQL text, and the engine compares the exact bytes.
    return f"user_id = unhex('{user_id.encode().hex()}')"


async def erase_user(store: Store, spec: TableSpec, user_id: str) -> Erasure:
    started = time.perf_counter()
    rows = await store.query_rows(
        f"SELECT toUInt32(toStartOfHour(timestamp)) AS hour, count() FROM {spec.raw_ref} "
        f"WHERE {_user_is(user_id)} GROUP BY hour"
    )
    hours = {int(hour) for hour, _ in rows}
    events = sum(int(n) for _, n in rows)
    if events:
        on_cluster = f" ON CLUSTER '{spec.cluster}'" if spec.cluster else ""
        table = f"{spec.database}.{ddl.physical(spec, spec.table)}"
        first, last = min(hours), max(hours) + 3599
        await store.command(
            f"DELETE FROM {table}{on_cluster} WHERE timestamp BETWEEN toDateTime({first}, 'UTC') "
            f"AND toDateTime({last}, 'UTC') AND {_user_is(user_id)}",
            {"lightweight_deletes_sync": 2},
        )
        await rebuild_rollups(store, spec, hours)
    return Erasure(user_id, events, len(hours), time.perf_counter() - started)
