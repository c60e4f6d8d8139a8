"""Weir's ClickHouse schema: the one entry point for specs, DDL and migrations.

Used by the consumer, the API, `weir migrate` and the kopf operator:

    spec = TableSpec.from_settings(settings)          # or built from a `Table` custom resource
    result = await migrate(store, spec)               # MigrationResult(applied, refused)
    plan = plan_migration(spec, existing)             # pure: Plan(statements, refused)
    await drop(store, spec)                           # deletionPolicy=Delete

Raw table: ReplacingMergeTree on event_id, partitioned by month, ordered by
(event_name, timestamp, event_id), bloom filter on event_id, TTL timestamp + ttl_days.
Rollups: AggregatingMergeTree of countState()/uniqExactState(user_id) per
(event_name, *dimensions, bucket), fed by `<rollup>_mv` materialized views.
"""

from weir.store.ddl import create_all, drop_all
from weir.store.events import INSERT_SETTINGS, existing_event_ids, insert_events
from weir.store.migrate import (
    ExistingSchema,
    ExistingTable,
    MigrationResult,
    Plan,
    drop,
    migrate,
    plan_migration,
    read_existing,
)
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

__all__ = [
    "DEFAULT_ROLLUPS",
    "EVENT_COLUMNS",
    "EXTRA_COLUMN_TYPES",
    "INSERT_COLUMNS",
    "INSERT_SETTINGS",
    "ExistingSchema",
    "ExistingTable",
    "ExtraColumn",
    "Granularity",
    "MigrationResult",
    "Plan",
    "Rollup",
    "TableSpec",
    "create_all",
    "drop",
    "drop_all",
    "existing_event_ids",
    "insert_events",
    "migrate",
    "plan_migration",
    "read_existing",
]
