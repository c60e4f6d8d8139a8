"""The raw events table's rows: the event-to-row mapping (and back), inserts, id lookups."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from weir.core.event import StoredEvent
from weir.store.base import Store
from weir.store.params import string_list
from weir.store.spec import INSERT_COLUMNS, TableSpec

# deduplicate_blocks_...: a retried insert (same token) is deduplicated in every rollup as well
# as the raw table. parallel_view_processing: the rollup and edge views are fed side by side
# instead of one after the other (insert-only 1.13x, measured).
INSERT_SETTINGS: dict[str, str | int] = {
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "parallel_view_processing": 1,
}


def to_columns(
    events: Sequence[StoredEvent], trace_ids: Sequence[str], user_uids: Sequence[int]
) -> list[list[Any]]:
    """`INSERT_COLUMNS` of these events, column-oriented (inserted_at is the table's default).

    `trace_ids[i]`: the W3C trace id the stream carried with `events[i]` ("" when none);
    `user_uids[i]`: the dense id of its user (`users.UserIds.uids`).
    """
    metadata = [orjson.dumps(e.metadata).decode() for e in events]
    columns: dict[str, list[Any]] = {
        "event_id": [e.event_id for e in events],
        "event_name": [e.event_name for e in events],
        "channel": [e.channel for e in events],
        "campaign_id": [e.campaign_id or "" for e in events],
        "user_id": [e.user_id for e in events],
        "user_uid": list(user_uids),
        "timestamp": [e.timestamp for e in events],
        "client_timestamp": [
            e.timestamp if e.client_timestamp is None else e.client_timestamp for e in events
        ],
        "tags": [e.tags for e in events],
        "metadata": metadata,
        "received_at": [datetime.fromtimestamp(e.received_at / 1000, UTC) for e in events],
        "trace_id": list(trace_ids),
    }
    return [columns[name] for name in INSERT_COLUMNS]


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
    time_ranges: Sequence[tuple[int, int]],
    event_names: Collection[str],
) -> set[str]:
    """Which of `ids` are stored already. `time_ranges`: where the events' timestamps fall
    (unix seconds, inclusive ranges); with `event_names` they narrow the primary-key ranges, and
    the bloom filter on event_id skips granules within them.

    The ids travel as `params.string_list` (hex JSON), which made the lookup ~3x faster.
    """
    found: set[str] = set()
    unique = sorted(set(ids))
    if not unique or not time_ranges:
        return found
    within = " OR ".join(
        f"timestamp BETWEEN {{lo{n}:DateTime('UTC')}} AND {{hi{n}:DateTime('UTC')}}"
        for n in range(len(time_ranges))
    )
    bounds: dict[str, Any] = {}
    for n, (lo, hi) in enumerate(time_ranges):
        bounds |= {f"lo{n}": lo, f"hi{n}": hi}
    chunk = store.max_lookup_ids
    for start in range(0, len(unique), chunk):
        ids, id_params = string_list("ids", unique[start : start + chunk])
        rows = await store.query_rows(
            f"SELECT event_id FROM {spec.raw_ref} "  # no DISTINCT: the set below is (-30 % CPU)
            "WHERE event_name IN {names:Array(String)} "
            f"AND ({within}) "
            f"AND event_id IN {ids}",
            {**bounds, "names": sorted(set(event_names)), **id_params},
        )
        found.update(str(row[0]) for row in rows)
    return found


# A stored row as GET /events/{event_id} answers it: the stream's fields, times as unix numbers.
_STORED_SELECT = (
    "SELECT event_id, event_name, channel, campaign_id, user_id, toUnixTimestamp(timestamp), "
    "toUnixTimestamp(client_timestamp), tags, metadata, toUnixTimestamp64Milli(received_at), "
    "trace_id"
)


async def stored_event(store: Store, spec: TableSpec, event_id: str) -> dict[str, Any] | None:
    """The stored event with this id (None when there is none), mapped back from its row.

    Read straight from the raw table (no FINAL): a row is there as soon as its insert returned,
    and the consumer never inserts an id twice, so the first row is the event."""
    rows = await store.query_rows(
        f"{_STORED_SELECT} FROM {spec.raw_ref} WHERE event_id = {{id:String}} LIMIT 1",
        {"id": event_id},
    )
    if not rows:
        return None
    (eid, name, channel, campaign, user, ts, client_ts, tags, metadata, received, trace) = rows[0]
    return {
        "event_id": eid,
        "event_name": name,
        "channel": channel,
        "user_id": user,
        "timestamp": int(ts),
        "client_timestamp": int(client_ts),
        "campaign_id": campaign or None,
        "tags": list(tags),
        "metadata": orjson.loads(metadata),
        "received_at": int(received),
        "trace_id": trace or None,
    }
