"""ClickHouse storage, one entry point: callers import from `weir.store` only.

    store = make_store(settings)                       # chDB in-process or a ClickHouse server
    spec = TableSpec.from_settings(settings)           # or built from a `Table` custom resource
    result = await migrate(store, spec)                # MigrationResult(applied, refused)
    await insert_events(store, spec, to_columns(events), dedup_token)
    users = UserIds(store, spec)                       # one per process: dense user ids
    await insert_events(store, spec, to_columns(events, trace_ids, await users.uids(ids)), token)
    totals = await query_totals(store, spec, MetricsQuery("signup"))
    await rebuild_rollups(store, spec, hours)          # after raw rows changed
    await erase_users(store, spec, ["user-42"])        # their events gone from raw and rollups
    await stored_event(store, spec, event_id)          # GET /events/{event_id}

Modules: `spec` (what a table is), `ddl` (every statement), `migrations` (plan and apply),
`events` (the event-to-row mapping and back, inserts, id lookups), `users` (dense user ids every
consumer agrees on), `rollups` (rebuilding rollup rows from the raw table), `erasure` (a user's
events out of raw and rollups), `queries` and `windows`
(/metrics); backends in `chdb/` and `server/`, chosen here by `make_store`.

Raw table: ReplacingMergeTree on event_id, partitioned by month, ordered by
(event_name, timestamp, event_id), bloom filter on event_id, TTL timestamp + ttl_days.
Rollups: AggregatingMergeTree of countState()/groupBitmapState(user_uid) per
(event_name, *dimensions, bucket), fed by `<rollup>_mv` materialized views; by default hourly and
daily, per channel and without a dimension (`spec.DEFAULT_ROLLUPS`).
Users: `<table>_users` (claims of dense ids) and `<table>_user_ranges` (leased id slots).
"""

from __future__ import annotations

from weir.core.config import Settings, StoreBackend
from weir.store.base import Store, StoreError, StoreUnavailable
from weir.store.erasure import Erasure, erase_user, erase_users
from weir.store.events import (
    INSERT_SETTINGS,
    existing_event_ids,
    insert_events,
    stored_event,
    to_columns,
)
from weir.store.migrations import (
    ExistingSchema,
    ExistingTable,
    MigrationResult,
    Plan,
    drop,
    migrate,
    plan_migration,
    read_existing,
)
from weir.store.queries import (
    GroupBy,
    GroupRow,
    MetricsQuery,
    Totals,
    query_groups,
    query_totals,
    rollup_for,
)
from weir.store.rollups import rebuild_rollups
from weir.store.spec import (
    DEFAULT_ROLLUPS,
    EVENT_COLUMNS,
    EXTRA_COLUMN_TYPES,
    INSERT_COLUMNS,
    ExtraColumn,
    Granularity,
    Rollup,
    TableSpec,
)
from weir.store.users import UserIds, backfill_user_ids, winning_uids

__all__ = [
    "DEFAULT_ROLLUPS",
    "EVENT_COLUMNS",
    "EXTRA_COLUMN_TYPES",
    "INSERT_COLUMNS",
    "INSERT_SETTINGS",
    "Erasure",
    "ExistingSchema",
    "ExistingTable",
    "ExtraColumn",
    "Granularity",
    "GroupBy",
    "GroupRow",
    "MetricsQuery",
    "MigrationResult",
    "Plan",
    "Rollup",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TableSpec",
    "Totals",
    "UserIds",
    "backfill_user_ids",
    "drop",
    "erase_user",
    "erase_users",
    "existing_event_ids",
    "insert_events",
    "make_store",
    "migrate",
    "plan_migration",
    "query_groups",
    "query_totals",
    "read_existing",
    "rebuild_rollups",
    "rollup_for",
    "stored_event",
    "to_columns",
    "winning_uids",
]


def make_store(settings: Settings) -> Store:
    """The backend `settings.store_backend` names: chDB in-process or a ClickHouse server.

    Imported lazily: an API talking to a server never loads chDB's engine, and vice versa.
    """
    if settings.store_backend == StoreBackend.CHDB:
        from weir.store.chdb import ChdbStore

        return ChdbStore(settings.data_dir / "chdb")
    from weir.store.server import ServerStore

    return ServerStore.from_settings(settings)
