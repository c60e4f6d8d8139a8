"""Rebuild rollup rows and edges from the raw table: the one place that knows every table
derived from raw rows.

For whatever changes raw rows after they were counted: the user-id backfill of a migration, a
user's erasure (delete the user's raw rows, then rebuild the hours they had events in). Each
rollup's rows of the buckets covering `hours`, and the edges of those hours, are deleted and
recomputed from the raw table.

Exact when no event of those buckets is inserted while the rebuild runs (the delete and the
re-insert are two statements; ClickHouse has no transaction around them): rebuild past buckets,
or pause the consumers first.
"""

from __future__ import annotations

from collections.abc import Collection

from weir.store import ddl
from weir.store.base import SettingsMap, Store
from weir.store.spec import Rollup, TableSpec

_SECONDS = {"hour": 3600, "day": 86400}
# Each statement is one synchronous mutation (whose fixed cost dominates) plus one insert; 2,000
# buckets as plain numbers keep its text (~24 KB of buckets, at most ~104 KB of ranges) well under
# the server's 256 KiB max_query_size.
_BUCKETS_PER_STATEMENT = 2000


def _buckets(rollup: Rollup, hours: Collection[int]) -> list[int]:
    size = _SECONDS[rollup.granularity]
    return sorted({hour - hour % size for hour in hours})


def _within(buckets: list[int], size: int) -> str:
    """The raw rows of these buckets (sorted), as timestamp ranges, neighbours joined: the
    primary key (event_name, timestamp, ...) then reads only those ranges, not everything from
    the first bucket to the last (a user active on a few days of three months)."""
    ranges: list[list[int]] = []
    for bucket in buckets:
        if ranges and ranges[-1][1] == bucket:
            ranges[-1][1] = bucket + size
        else:
            ranges.append([bucket, bucket + size])
    return " OR ".join(f"(timestamp >= {lo} AND timestamp < {hi})" for lo, hi in ranges)


def rebuild_statements(spec: TableSpec, hours: Collection[int]) -> list[tuple[str, SettingsMap]]:
    """What `rebuild_rollups` runs, in order, with each statement's settings (pure): for the
    edges and every rollup of `spec`, per chunk of buckets, a synchronous DELETE and the
    re-insert from raw."""
    statements: list[tuple[str, SettingsMap]] = []
    hour_buckets = sorted({hour - hour % 3600 for hour in hours})
    for start in range(0, len(hour_buckets), _BUCKETS_PER_STATEMENT):
        where = _within(hour_buckets[start : start + _BUCKETS_PER_STATEMENT], 3600)
        statements.append((ddl.delete_edges(spec, where), {"lightweight_deletes_sync": 2}))
        statements.append((ddl.fill_edges(spec, where), {}))
    for rollup in spec.rollups:
        buckets = _buckets(rollup, hours)
        for start in range(0, len(buckets), _BUCKETS_PER_STATEMENT):
            chunk = buckets[start : start + _BUCKETS_PER_STATEMENT]
            listed = ", ".join(str(b) for b in chunk)  # unix seconds: the engine casts them
            delete = ddl.delete_rollup_buckets(spec, rollup, listed)
            statements.append((delete, {"lightweight_deletes_sync": 2}))
            where = _within(chunk, _SECONDS[rollup.granularity])
            statements.append((ddl.fill_rollup(spec, rollup, where), {}))
    return statements


async def rebuild_rollups(store: Store, spec: TableSpec, hours: Collection[int]) -> None:
    """Recompute every rollup of `spec` for the buckets holding `hours` (unix seconds, any
    second within each hour), and the edges of those hours, from the raw table as it is now."""
    for statement, settings in rebuild_statements(spec, hours):
        await store.command(statement, settings or None)


async def hours_counted_without_ids(store: Store, spec: TableSpec) -> set[int]:
    """Hours some rollup counted a row of before it had a dense id (uid 0 in its bitmap)."""
    hours: set[int] = set()
    for rollup in spec.rollups:
        rows = await store.query_rows(
            f"SELECT DISTINCT toUInt32(bucket) FROM {spec.rollup_ref(rollup)} "
            "WHERE bitmapContains(users, toUInt32(0))"
        )
        size = _SECONDS[rollup.granularity]
        hours.update(h for (bucket,) in rows for h in range(int(bucket), int(bucket) + size, 3600))
    return hours
