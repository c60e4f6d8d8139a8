"""Every CREATE/ALTER/DROP statement Weir runs, generated from a `TableSpec`.

Single node: the raw table is a ReplacingMergeTree, each rollup an AggregatingMergeTree fed by a
materialized view, the user id claims and range leases plain MergeTrees whose rows keep the block
number of their insert (`enable_block_number_column`: the order claims became visible). Cluster
(`spec.cluster`): the same tables become Replicated* `<name>_local` tables `ON CLUSTER`, with a
Distributed table under the logical `<name>` in front of each.
"""

from __future__ import annotations

from weir.store.spec import (
    ADDED_EVENT_COLUMNS,
    EVENT_COLUMNS,
    ExtraColumn,
    Rollup,
    TableSpec,
    local_name,
    view_name,
)

USERS_TYPE = "AggregateFunction(groupBitmap, UInt32)"
INSERT_INDEX = {name: n for n, (name, _) in enumerate(EVENT_COLUMNS)}

# Lets `insert_deduplication_token` deduplicate retried inserts on non-replicated tables.
DEDUP_WINDOW = 1000
BLOOM_INDEX = "event_id_bloom"
_BASE_DIMENSION_TYPES = {"channel": "LowCardinality(String)", "campaign_id": "String"}


def extraction_expr(column: ExtraColumn) -> str:
    keys = ", ".join(f"'{key}'" for key in column.path.split("."))
    return f"JSONExtract(metadata, {keys}, '{column.type}')"


def dimension_type(spec: TableSpec, dimension: str) -> str:
    for column in spec.extra_columns:
        if column.name == dimension:
            return column.type
    return _BASE_DIMENSION_TYPES[dimension]


def bucket_expr(rollup: Rollup) -> str:
    return "toStartOfHour(timestamp)" if rollup.granularity == "hour" else "toStartOfDay(timestamp)"


def _on_cluster(spec: TableSpec) -> str:
    return f" ON CLUSTER '{spec.cluster}'" if spec.cluster else ""


def physical(spec: TableSpec, name: str) -> str:
    """The table that holds the rows: `name` on a single node, `name_local` on a cluster."""
    return local_name(name) if spec.cluster else name


def _engine(spec: TableSpec, kind: str, name: str) -> str:
    if not spec.cluster:
        return f"{kind}MergeTree"
    path = "/clickhouse/tables/{shard}/{database}/{table}"
    return f"Replicated{kind}MergeTree('{path}', '{{replica}}')"


# A rollup granule holds at most this many bytes (ClickHouse's default: 10 MiB). A query reads
# whole granules, and one day's groupBitmap state of a busy event is ~100 KiB: with 10 MiB granules
# a 30-day window read ~80 states around each one it needed; at 100M events 256 KiB granules
# halved the 30-day totals (55.7 -> 27.9 ms, scripts/bench_metrics.py). The primary index then has
# one mark per 256 KiB of states, which stays small. Fixed when a table is created (readonly
# after): rollups created before keep ClickHouse's default, exact but slower.
ROLLUP_GRANULE_BYTES = 256 * 1024
# Rollups store their users states uncompressed. Roaring bitmaps of dense ids barely compress
# (1.0-1.12x at 100M events, scripts/bench_metrics.py), and every /metrics read would decompress
# them: at 100M events a 30-day read of day states took 11.0 ms with LZ4, 8.7 ms without.
# Unlike the granules, a codec can change on an existing table (`modify_users_codec`).
ROLLUP_USERS_CODEC = "CODEC(NONE)"


def _settings(spec: TableSpec, *extra: str) -> str:
    # Replicated tables deduplicate through Keeper; the window is for single-node tables.
    settings = [] if spec.cluster else [f"non_replicated_deduplication_window = {DEDUP_WINDOW}"]
    settings += extra
    return f"\nSETTINGS {', '.join(settings)}" if settings else ""


def ttl_clause(ttl_column: str, ttl_days: int) -> str:
    return f"\nTTL {ttl_column} + INTERVAL {ttl_days} DAY" if ttl_days > 0 else ""


def create_database(spec: TableSpec) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {spec.database}{_on_cluster(spec)}"


def _distributed(spec: TableSpec, name: str, sharding_key: str) -> str:
    db, local = spec.database, local_name(name)
    return (
        f"CREATE TABLE IF NOT EXISTS {db}.{name}{_on_cluster(spec)} AS {db}.{local}\n"
        f"ENGINE = Distributed('{spec.cluster}', '{db}', '{local}', {sharding_key})"
    )


def extra_column_def(column: ExtraColumn) -> str:
    return f"{column.name} {column.type} MATERIALIZED {extraction_expr(column)}"


def create_raw(spec: TableSpec) -> list[str]:
    columns = [f"{name} {type_}" for name, type_ in EVENT_COLUMNS]
    # The same default as a migrated table: an insert without the column (a consumer of the
    # previous version during an upgrade) stores the client's timestamp as the server's.
    columns[INSERT_INDEX["client_timestamp"]] += " DEFAULT timestamp"
    columns.append("inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)")
    columns += [extra_column_def(column) for column in spec.extra_columns]
    columns.append(f"INDEX {BLOOM_INDEX} event_id TYPE bloom_filter(0.01) GRANULARITY 1")
    body = ",\n  ".join(columns)
    name = physical(spec, spec.table)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {spec.database}.{name}{_on_cluster(spec)} (\n  {body}\n)\n"
        f"ENGINE = {_engine(spec, 'Replacing', name)}\n"
        "PARTITION BY toYYYYMM(timestamp)\nORDER BY (event_name, timestamp, event_id)"
        f"{ttl_clause('timestamp', spec.ttl_days)}{_settings(spec)}"
    ]
    if (
        spec.cluster
    ):  # one event's copies hash to one shard, so the shard's replacing merge sees them
        statements.append(_distributed(spec, spec.table, "cityHash64(event_id)"))
    return statements


def create_rollup_table(spec: TableSpec, rollup: Rollup) -> list[str]:
    table = rollup.table_name(spec.table)
    dims = [f"{d} {dimension_type(spec, d)}" for d in rollup.dimensions]
    columns = ["event_name LowCardinality(String)", *dims, "bucket DateTime('UTC')"]
    columns += ["total AggregateFunction(count)", f"users {USERS_TYPE} {ROLLUP_USERS_CODEC}"]
    body = ",\n  ".join(columns)
    key = ", ".join(["event_name", "bucket", *rollup.dimensions])
    statements = [
        f"CREATE TABLE IF NOT EXISTS {spec.database}.{physical(spec, table)}{_on_cluster(spec)} "
        f"(\n  {body}\n)\nENGINE = {_engine(spec, 'Aggregating', table)}\n"
        f"PARTITION BY toYYYYMM(bucket)\nORDER BY ({key})"
        f"{ttl_clause('bucket', spec.ttl_days)}"
        f"{_settings(spec, f'index_granularity_bytes = {ROLLUP_GRANULE_BYTES}')}"
    ]
    if spec.cluster:
        statements.append(_distributed(spec, table, "cityHash64(event_name)"))
    return statements


def rollup_select(spec: TableSpec, rollup: Rollup, source: str | None = None) -> str:
    """A rollup's rows from raw rows: of each insert's block (the view, on the physical table:
    a shard's own rows on a cluster), or of `source` (a backfill or rebuild: every shard)."""
    keys = ", ".join(["event_name", *rollup.dimensions])
    return (
        f"SELECT {keys}, {bucket_expr(rollup)} AS bucket, countState() AS total, "
        f"groupBitmapState(user_uid) AS users\n"
        f"FROM {source or f'{spec.database}.{physical(spec, spec.table)}'}"
    )


def fill_rollup(spec: TableSpec, rollup: Rollup, where: str) -> str:
    """Insert a rollup's rows recomputed from the raw rows matching `where`.

    On a cluster it reads every shard's raw rows (the Distributed raw table) and inserts through
    the Distributed rollup, synchronously, so the statement returns once the rows are stored;
    a rollup's states may sit on any shard, since a query merges them all."""
    target = spec.rollup_ref(rollup)
    sync = "\nSETTINGS insert_distributed_sync = 1" if spec.cluster else ""
    return (
        f"INSERT INTO {target}{sync}\n{rollup_select(spec, rollup, spec.raw_ref)}\n"
        f"WHERE {where}\nGROUP BY {rollup_group_keys(rollup)}"
    )


def delete_rollup_buckets(spec: TableSpec, rollup: Rollup, buckets: str) -> str:
    """A lightweight DELETE of a rollup's rows of `buckets` (an SQL list), on every shard."""
    table = f"{spec.database}.{physical(spec, rollup.table_name(spec.table))}"
    return f"DELETE FROM {table}{_on_cluster(spec)} WHERE bucket IN ({buckets})"


def rollup_group_keys(rollup: Rollup) -> str:
    return ", ".join(["event_name", *rollup.dimensions, "bucket"])


def modify_users_codec(spec: TableSpec, rollup: Rollup) -> str:
    """A rollup made with the default codec stores new parts (inserts, merges) uncompressed."""
    table = physical(spec, rollup.table_name(spec.table))
    return (
        f"ALTER TABLE {spec.database}.{table}{_on_cluster(spec)} "
        f"MODIFY COLUMN users {USERS_TYPE} {ROLLUP_USERS_CODEC}"
    )


def create_rollup_view(spec: TableSpec, rollup: Rollup) -> str:
    table = rollup.table_name(spec.table)
    keys = rollup_group_keys(rollup)
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {spec.database}.{view_name(table)}"
        f"{_on_cluster(spec)} TO {spec.database}.{physical(spec, table)} AS\n"
        f"{rollup_select(spec, rollup)}\nGROUP BY {keys}"
    )


def backfill_rollup(spec: TableSpec, rollup: Rollup, before: str | None = None) -> str:
    """Fill a rollup added to a live table with the rows inserted before its view existed.

    `before`: server time (`YYYY-MM-DD hh:mm:ss.fff`, UTC) read just before the view is
    created; rows inserted between that instant and the view's creation (milliseconds) are
    missed. Without it, the view's creation second is used (coarser).
    """
    return fill_rollup(spec, rollup, _inserted_before(spec, rollup.table_name(spec.table), before))


def _inserted_before(spec: TableSpec, table: str, before: str | None) -> str:
    """The raw rows a new view of `table` did not see (see `backfill_rollup`)."""
    if before is not None:
        return f"inserted_at < toDateTime64('{before}', 3, 'UTC')"
    return (
        "inserted_at < (SELECT max(metadata_modification_time) FROM system.tables "
        f"WHERE database = '{spec.database}' AND name = '{view_name(table)}')"
    )


# The edges: every raw row's few columns a metrics query reads for the partial hours at a
# window's ends (and for short windows), in (event_name, timestamp) order with 1,024-row granules.
# The raw table answers the same, slower: its wide 8,192-row granules across many parts made such
# a read decompress ~80k rows for ~7k (11.9 vs 8.5 ms at 100M events; 9.5 vs 6.5 ms for a
# 90-minute window). Fed by a view like the rollups; rebuilt with them (`rollups.py`).
EDGES_COLUMNS = "event_name, channel, timestamp, user_uid"
EDGES_GRANULE_ROWS = 1024


def create_edges(spec: TableSpec) -> list[str]:
    name = physical(spec, spec.edges_table)
    body = (
        "event_name LowCardinality(String),\n  channel LowCardinality(String),\n"
        "  timestamp DateTime('UTC'),\n  user_uid UInt32"
    )
    statements = [
        f"CREATE TABLE IF NOT EXISTS {spec.database}.{name}{_on_cluster(spec)} (\n  {body}\n)\n"
        f"ENGINE = {_engine(spec, '', spec.edges_table)}\n"
        "PARTITION BY toYYYYMM(timestamp)\nORDER BY (event_name, timestamp)"
        f"{ttl_clause('timestamp', spec.ttl_days)}"
        f"{_settings(spec, f'index_granularity = {EDGES_GRANULE_ROWS}')}"
    ]
    if spec.cluster:
        statements.append(_distributed(spec, spec.edges_table, "cityHash64(event_name)"))
    return statements


def create_edges_view(spec: TableSpec) -> str:
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {spec.database}.{view_name(spec.edges_table)}"
        f"{_on_cluster(spec)} TO {spec.database}.{physical(spec, spec.edges_table)} AS\n"
        f"SELECT {EDGES_COLUMNS} FROM {spec.database}.{physical(spec, spec.table)}"
    )


def fill_edges(spec: TableSpec, where: str) -> str:
    """Insert the edges of the raw rows matching `where` (every shard's, as `fill_rollup`)."""
    sync = "\nSETTINGS insert_distributed_sync = 1" if spec.cluster else ""
    return (
        f"INSERT INTO {spec.edges_ref}{sync}\n"
        f"SELECT {EDGES_COLUMNS} FROM {spec.raw_ref}\nWHERE {where}"
    )


def backfill_edges(spec: TableSpec, before: str | None = None) -> str:
    """The edges of the rows inserted before their view existed (`before`: `backfill_rollup`)."""
    return fill_edges(spec, _inserted_before(spec, spec.edges_table, before))


def delete_edges(spec: TableSpec, where: str) -> str:
    """A lightweight DELETE of the edges matching `where`, on every shard."""
    table = f"{spec.database}.{physical(spec, spec.edges_table)}"
    return f"DELETE FROM {table}{_on_cluster(spec)} WHERE {where}"


def _claims_table(spec: TableSpec, name: str, body: str, key: str, shard_key: str) -> list[str]:
    statements = [
        f"CREATE TABLE IF NOT EXISTS {spec.database}.{physical(spec, name)}{_on_cluster(spec)} "
        f"(\n  {body}\n)\nENGINE = {_engine(spec, '', name)}\nORDER BY {key}\n"
        "SETTINGS enable_block_number_column = 1"
    ]
    if spec.cluster:  # every claim of one key on one shard, where block numbers order them
        statements.append(_distributed(spec, name, shard_key))
    return statements


def create_users(spec: TableSpec) -> list[str]:
    """The user id claims and the uid slot leases (`store/users.py`); kept forever (no TTL)."""
    claims = "user_id String,\n  uid UInt32"
    leases = "slot UInt32,\n  owner String"
    return [
        *_claims_table(spec, spec.users_table, claims, "user_id", "cityHash64(user_id)"),
        *_claims_table(spec, spec.ranges_table, leases, "slot", "slot"),
    ]


def _add_raw_column(spec: TableSpec, definition: str) -> list[str]:
    names = [physical(spec, spec.table)] + ([spec.table] if spec.cluster else [])
    return [
        f"ALTER TABLE {spec.database}.{name}{_on_cluster(spec)} "
        f"ADD COLUMN IF NOT EXISTS {definition}"
        for name in names
    ]


def add_column(spec: TableSpec, column: ExtraColumn) -> list[str]:
    return _add_raw_column(spec, extra_column_def(column))


def add_event_column(spec: TableSpec, name: str) -> list[str]:
    """An event column (`spec.ADDED_EVENT_COLUMNS`) on a raw table made before it."""
    return _add_raw_column(spec, ADDED_EVENT_COLUMNS[name])


def add_user_uid(spec: TableSpec) -> list[str]:
    """The dense id column on a raw table made before it; 0 (no id yet) until backfilled."""
    return add_event_column(spec, "user_uid")


def modify_ttl(spec: TableSpec, table: str, ttl_column: str) -> str:
    target = f"ALTER TABLE {spec.database}.{physical(spec, table)}{_on_cluster(spec)}"
    if spec.ttl_days == 0:
        return f"{target} REMOVE TTL"
    return f"{target} MODIFY TTL {ttl_column} + INTERVAL {spec.ttl_days} DAY"


def create_all(spec: TableSpec) -> list[str]:
    statements = [create_database(spec), *create_raw(spec), *create_users(spec)]
    statements += [*create_edges(spec), create_edges_view(spec)]
    for rollup in spec.rollups:
        statements += [*create_rollup_table(spec, rollup), create_rollup_view(spec, rollup)]
    return statements


def drop_all(spec: TableSpec) -> list[str]:
    """Views first (so no insert feeds a half-dropped rollup), then rollups, then raw."""
    derived = [*(r.table_name(spec.table) for r in spec.rollups), spec.edges_table]
    names = [view_name(table) for table in derived]
    tables = [*derived, spec.table]
    for table in [*tables, spec.users_table, spec.ranges_table]:
        names += [table, local_name(table)] if spec.cluster else [table]
    return [f"DROP TABLE IF EXISTS {spec.database}.{n}{_on_cluster(spec)} SYNC" for n in names]
