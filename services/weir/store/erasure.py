"""Erasing users: every stored event of a `user_id` deleted, and no rollup counting it any more.

1. The hours the user has events in (one read of the raw table's user_id and timestamp columns).
2. A lightweight `DELETE` of the user's raw rows, narrowed to the months of those hours (the
   table's partitions), synchronous: when it returns, no query sees the rows.
3. `rollups.rebuild_rollups` for exactly those hours: each rollup's buckets holding them are
   recomputed from the raw table, now without the user. Rebuilding only the buckets the user was
   counted in keeps the cost proportional to the user's activity, not to the table.

Each step is a synchronous mutation or query whose fixed cost (scheduling, one mutation per
table) dominates for a single user, so `erase_users` erases many in one pass.

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
from collections.abc import Sequence
from dataclasses import dataclass

from weir.store import ddl
from weir.store.base import Store
from weir.store.rollups import rebuild_rollups
from weir.store.spec import TableSpec

_USERS_PER_STATEMENT = 1000  # keeps each statement's text well under the server's query size


@dataclass(frozen=True)
class Erasure:
    """What `erase_users` did: events deleted per user, hours whose rollup buckets were rebuilt
    (for all the users together), and how long it took."""

    events: dict[str, int]
    hours: int
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.events.values())


def _users_are(user_ids: Sequence[str]) -> str:
    # As hex: only [0-9a-f] reaches the SQL text, and the engine compares the exact bytes.
    listed = ", ".join(f"unhex('{user.encode().hex()}')" for user in user_ids)
    return f"user_id IN ({listed})"


async def erase_users(store: Store, spec: TableSpec, user_ids: Sequence[str]) -> Erasure:
    """Erase every event of each of `user_ids` in one pass: one DELETE, one rebuild of the union
    of their hours, so erasing many users at once costs about as much as erasing one."""
    started = time.perf_counter()
    unique = sorted(set(user_ids))
    events = dict.fromkeys(unique, 0)
    hours: set[int] = set()
    for offset in range(0, len(unique), _USERS_PER_STATEMENT):
        chunk = unique[offset : offset + _USERS_PER_STATEMENT]
        rows = await store.query_rows(
            f"SELECT user_id, toUInt32(toStartOfHour(timestamp)) AS hour, count() "
            f"FROM {spec.raw_ref} WHERE {_users_are(chunk)} GROUP BY user_id, hour"
        )
        for user, hour, n in rows:
            events[str(user)] += int(n)
            hours.add(int(hour))
        if not rows:
            continue
        first = min(int(hour) for _, hour, _ in rows)
        last = max(int(hour) for _, hour, _ in rows) + 3599
        on_cluster = f" ON CLUSTER '{spec.cluster}'" if spec.cluster else ""
        table = f"{spec.database}.{ddl.physical(spec, spec.table)}"
        await store.command(
            f"DELETE FROM {table}{on_cluster} WHERE timestamp BETWEEN toDateTime({first}, 'UTC') "
            f"AND toDateTime({last}, 'UTC') AND {_users_are(chunk)}",
            {"lightweight_deletes_sync": 2},
        )
    if hours:
        await rebuild_rollups(store, spec, hours)
    return Erasure(events, len(hours), time.perf_counter() - started)


async def erase_user(store: Store, spec: TableSpec, user_id: str) -> Erasure:
    return await erase_users(store, spec, [user_id])
