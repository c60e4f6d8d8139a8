"""Writes and id lookups on the raw events table, for the consumer."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from weir.store.base import Store
from weir.store.spec import INSERT_COLUMNS, TableSpec

# Ids per lookup query: keeps each request's URL/parameters well under server limits.
LOOKUP_CHUNK = 1000
# Makes a retried insert (same token) deduplicated in every rollup as well as the raw table.
INSERT_SETTINGS: dict[str, str | int] = {"deduplicate_blocks_in_dependent_materialized_views": 1}


async def insert_events(
    store: Store, spec: TableSpec, data: Sequence[Sequence[Any]], dedup_token: str
) -> None:
    """Insert column-oriented events in `INSERT_COLUMNS` order; retry with the same token."""
    settings: dict[str, str | int] = {**INSERT_SETTINGS, "insert_deduplication_token": dedup_token}
    await store.insert(spec.raw_ref, INSERT_COLUMNS, data, settings)


async def existing_event_ids(
    store: Store,
    spec: TableSpec,
    ids: Collection[str],
    min_ts: int,
    max_ts: int,
    event_names: Collection[str],
) -> set[str]:
    """Which of `ids` are stored already. `min_ts`/`max_ts`: the batch's timestamp range
    (unix seconds, inclusive); with `event_names` they narrow the primary-key range, and the
    bloom filter on event_id skips granules within it."""
    found: set[str] = set()
    unique = sorted(set(ids))
    names = sorted(set(event_names))
    for start in range(0, len(unique), LOOKUP_CHUNK):
        rows = await store.query_rows(
            f"SELECT DISTINCT event_id FROM {spec.raw_ref} "
            "WHERE event_name IN {names:Array(String)} "
            "AND timestamp BETWEEN {lo:DateTime('UTC')} AND {hi:DateTime('UTC')} "
            "AND event_id IN {ids:Array(String)}",
            {
                "names": names,
                "lo": min_ts,
                "hi": max_ts,
                "ids": unique[start : start + LOOKUP_CHUNK],
            },
        )
        found.update(str(row[0]) for row in rows)
    return found
