"""DDL text, cluster mode (never run: there is no cluster here), planning and window splits."""

from __future__ import annotations

import dataclasses

import pytest

from weir.core.config import Settings
from weir.store import (
    DEFAULT_ROLLUPS,
    EVENT_COLUMNS,
    ExistingSchema,
    ExistingTable,
    ExtraColumn,
    GroupBy,
    MetricsQuery,
    Rollup,
    TableSpec,
    ddl,
    plan_migration,
    rollup_for,
)
from weir.store.ddl import create_all, drop_all
from weir.store.queries import _union
from weir.store.rollups import rebuild_statements
from weir.store.windows import DAY, HOUR, Piece, split_window

SPEC = TableSpec("weir", "events", ttl_days=30)
CLUSTER = dataclasses.replace(SPEC, cluster="main")


def test_from_settings_uses_defaults_metrics_needs() -> None:
    spec = TableSpec.from_settings(Settings(clickhouse_cluster="c", ttl_days=7))
    assert (spec.database, spec.table, spec.ttl_days, spec.cluster) == ("weir", "events", 7, "c")
    assert spec.rollups == DEFAULT_ROLLUPS
    assert [r.table_name("events") for r in DEFAULT_ROLLUPS] == [
        "events_hour_by_channel_bitmap",
        "events_day_by_channel_bitmap",
        "events_hour_by_event_bitmap",
        "events_day_by_event_bitmap",
    ]


def test_single_node_raw_table() -> None:
    raw = ddl.create_raw(SPEC)
    assert len(raw) == 1
    sql = raw[0]
    assert "ENGINE = ReplacingMergeTree\n" in sql
    assert "ORDER BY (event_name, timestamp, event_id)" in sql
    assert "PARTITION BY toYYYYMM(timestamp)" in sql
    assert "INDEX event_id_bloom event_id TYPE bloom_filter" in sql
    assert "TTL timestamp + INTERVAL 30 DAY" in sql
    assert "non_replicated_deduplication_window = 1000" in sql
    assert "ON CLUSTER" not in sql


def test_rollup_granules_are_small_on_every_kind_of_node() -> None:
    """A rollup read deserializes whole granules of groupBitmap states: they are bounded."""
    for spec in (SPEC, CLUSTER):
        for rollup in spec.rollups:
            table = ddl.create_rollup_table(spec, rollup)[0]
            assert f"index_granularity_bytes = {ddl.ROLLUP_GRANULE_BYTES}" in table
    assert (
        "non_replicated_deduplication_window"
        not in ddl.create_rollup_table(CLUSTER, CLUSTER.rollups[0])[0]
    )


def test_rollup_states_stored_uncompressed_and_existing_rollups_changed_once() -> None:
    for spec in (SPEC, CLUSTER):
        for rollup in spec.rollups:
            table = ddl.create_rollup_table(spec, rollup)[0]
            assert f"users {ddl.USERS_TYPE} {ddl.ROLLUP_USERS_CODEC}" in table
    assert ddl.modify_users_codec(CLUSTER, CLUSTER.rollups[0]) == (
        "ALTER TABLE weir.events_hour_by_channel_bitmap_local ON CLUSTER 'main' "
        f"MODIFY COLUMN users {ddl.USERS_TYPE} CODEC(NONE)"
    )
    previous = _existing_previous_schema(SPEC)
    for name in ("events_hour_by_channel_bitmap", "events_day_by_channel_bitmap"):
        table = previous.tables[name]
        previous.tables[name] = dataclasses.replace(table, codecs={"users": "CODEC(NONE)"})
    plan = plan_migration(SPEC, previous, "2026-12-01 00:00:00.000")
    assert not any("MODIFY COLUMN" in statement for statement in plan.statements)


def test_no_ttl_when_zero_and_extra_columns_extracted() -> None:
    spec = dataclasses.replace(
        SPEC, ttl_days=0, extra_columns=(ExtraColumn("plan", "String", "account.plan"),)
    )
    sql = "\n".join(create_all(spec))
    assert "TTL" not in sql
    assert "plan String MATERIALIZED JSONExtract(metadata, 'account', 'plan', 'String')" in sql


def test_cluster_ddl() -> None:
    statements = create_all(CLUSTER)
    assert all(" ON CLUSTER 'main'" in s for s in statements)
    text = "\n".join(statements)
    assert "CREATE TABLE IF NOT EXISTS weir.events_local ON CLUSTER 'main'" in text
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"
        in text
    )
    assert "ReplicatedAggregatingMergeTree(" in text
    assert (
        "CREATE TABLE IF NOT EXISTS weir.events ON CLUSTER 'main' AS weir.events_local\n"
        "ENGINE = Distributed('main', 'weir', 'events_local', cityHash64(event_id))"
    ) in text
    assert (
        "Distributed('main', 'weir', 'events_hour_by_channel_bitmap_local', cityHash64(event_name))"
        in (text)
    )
    assert (
        "TO weir.events_hour_by_channel_bitmap_local AS\nSELECT event_name, channel, "
        "toStartOfHour(timestamp) AS bucket"
    ) in text
    assert "FROM weir.events_local\nGROUP BY" in text
    assert "ENGINE = Distributed('main', 'weir', 'events_users_local', cityHash64(user_id))" in text
    assert (  # the rollup without a dimension: keyed by (event_name, bucket) alone
        "CREATE TABLE IF NOT EXISTS weir.events_day_by_event_bitmap_local ON CLUSTER 'main' (\n"
        "  event_name LowCardinality(String),\n  bucket DateTime('UTC'),\n"
    ) in text
    assert "ORDER BY (event_name, bucket)\n" in text
    assert (
        "CREATE TABLE IF NOT EXISTS weir.events_day_by_event_bitmap ON CLUSTER 'main' AS "
        "weir.events_day_by_event_bitmap_local\nENGINE = Distributed('main', 'weir', "
        "'events_day_by_event_bitmap_local', cityHash64(event_name))"
    ) in text
    assert (
        "TO weir.events_day_by_event_bitmap_local AS\nSELECT event_name, toStartOfDay(timestamp) "
        "AS bucket, countState() AS total, groupBitmapState(user_uid) AS users\n"
        "FROM weir.events_local\nGROUP BY event_name, bucket"
    ) in text
    assert "non_replicated_deduplication_window" not in text


def test_cluster_drop_and_add_column() -> None:
    drops = drop_all(CLUSTER)
    assert drops[0] == (
        "DROP TABLE IF EXISTS weir.events_hour_by_channel_bitmap_mv ON CLUSTER 'main' SYNC"
    )
    assert drops[-6:] == [
        "DROP TABLE IF EXISTS weir.events ON CLUSTER 'main' SYNC",
        "DROP TABLE IF EXISTS weir.events_local ON CLUSTER 'main' SYNC",
        "DROP TABLE IF EXISTS weir.events_users ON CLUSTER 'main' SYNC",
        "DROP TABLE IF EXISTS weir.events_users_local ON CLUSTER 'main' SYNC",
        "DROP TABLE IF EXISTS weir.events_user_ranges ON CLUSTER 'main' SYNC",
        "DROP TABLE IF EXISTS weir.events_user_ranges_local ON CLUSTER 'main' SYNC",
    ]
    added = ddl.add_column(CLUSTER, ExtraColumn("n", "Int64", "a.n"))
    assert [s.split(" ADD")[0] for s in added] == [
        "ALTER TABLE weir.events_local ON CLUSTER 'main'",
        "ALTER TABLE weir.events ON CLUSTER 'main'",
    ]


def test_cluster_change_refused() -> None:
    existing = ExistingSchema(True, {"events": ExistingTable("events", "ReplacingMergeTree")})
    plan = plan_migration(CLUSTER, existing)
    assert plan.statements == ()
    assert plan.refused and "needs a manual migration" in plan.refused[0]


def test_fresh_database_plan_creates_everything() -> None:
    plan = plan_migration(SPEC, ExistingSchema(database_exists=False))
    assert plan.statements == tuple(create_all(SPEC)) and plan.refused == ()


@pytest.mark.parametrize(
    "bad",
    [
        lambda: ExtraColumn("event_id", "String", "a"),
        lambda: ExtraColumn("x", "UInt8", "a"),
        lambda: ExtraColumn("x", "String", "a'b"),
        lambda: Rollup("week", ("channel",)),  # type: ignore[arg-type]
        lambda: TableSpec("weir", "events", 1, rollups=(Rollup("hour", ("nope",)),)),
        lambda: TableSpec("weir; DROP", "events", 1),
    ],
)
def test_invalid_specs_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


def test_split_window_prefers_coarse_buckets() -> None:
    lo, hi = 2 * DAY - 10, 4 * DAY + HOUR + 5
    assert split_window(lo, hi, (DAY, HOUR, 1)) == [
        Piece(1, lo, 2 * DAY),
        Piece(DAY, 2 * DAY, 4 * DAY),
        Piece(HOUR, 4 * DAY, 4 * DAY + HOUR),
        Piece(1, 4 * DAY + HOUR, hi),
    ]
    assert split_window(10, 20, (DAY, HOUR, 1)) == [Piece(1, 10, 20)]
    assert split_window(None, None, (DAY, HOUR, 1)) == [Piece(DAY, None, None)]
    assert split_window(5, 5, (HOUR, 1)) == []


def test_short_windows_read_raw_rows_only() -> None:
    from weir.store.queries import RAW_WINDOW_SECONDS

    spec = TableSpec.from_settings(Settings())
    start = 1_790_000_000 - 1_790_000_000 % DAY
    short = MetricsQuery("signup", start + 1, start + RAW_WINDOW_SECONDS)
    sql, _ = _union(spec, short)
    assert spec.raw_ref in sql and "UNION ALL" not in sql
    longer = MetricsQuery("signup", start + 1, start + RAW_WINDOW_SECONDS + 1)
    sql, _ = _union(spec, longer)
    assert sql.count("UNION ALL") >= 1  # whole hours from a rollup, the edges from raw rows


def _existing_previous_schema(spec: TableSpec) -> ExistingSchema:
    """What `read_existing` reports for a database made before the rollups without a dimension
    (schema_v2): the raw table, the claims, and the per-channel rollups with their views."""
    raw_columns = {name: type_ for name, type_ in EVENT_COLUMNS} | {
        "inserted_at": "DateTime64(3, 'UTC')"
    }
    rollup_columns = {
        "event_name": "LowCardinality(String)",
        "channel": "LowCardinality(String)",
        "bucket": "DateTime('UTC')",
        "total": "AggregateFunction(count)",
        "users": ddl.USERS_TYPE,
    }
    ttl = spec.ttl_days
    tables = {
        "events": ExistingTable("events", "ReplacingMergeTree", raw_columns, ttl),
        "events_users": ExistingTable("events_users", "MergeTree"),
        "events_user_ranges": ExistingTable("events_user_ranges", "MergeTree"),
    }
    for rollup in ("events_hour_by_channel_bitmap", "events_day_by_channel_bitmap"):
        tables[rollup] = ExistingTable(rollup, "AggregatingMergeTree", rollup_columns, ttl)
        tables[f"{rollup}_mv"] = ExistingTable(f"{rollup}_mv", "MaterializedView")
    return ExistingSchema(True, tables)


def test_previous_schema_plan_adds_and_backfills_the_rollups_without_channel() -> None:
    cutoff = "2026-12-01 00:00:00.000"
    plan = plan_migration(SPEC, _existing_previous_schema(SPEC), cutoff)
    assert plan.refused == ()
    added = [r for r in SPEC.rollups if r.dimensions == ()]
    kept = [r for r in SPEC.rollups if r.dimensions]
    assert plan.statements == (
        *ddl.create_edges(SPEC),
        ddl.create_edges_view(SPEC),
        *(
            s
            for r in SPEC.rollups
            for s in (
                (*ddl.create_rollup_table(SPEC, r), ddl.create_rollup_view(SPEC, r))
                if r in added
                else (ddl.modify_users_codec(SPEC, r),)  # made with the default codec
            )
        ),
    )
    assert len(kept) == 2
    assert plan.backfills == (
        ddl.backfill_edges(SPEC, cutoff),
        *(ddl.backfill_rollup(SPEC, r, cutoff) for r in added),
    )
    assert plan.backfills[0] == (
        "INSERT INTO weir.events_edges\nSELECT event_name, channel, timestamp, user_uid "
        f"FROM weir.events\nWHERE inserted_at < toDateTime64('{cutoff}', 3, 'UTC')"
    )
    assert "INSERT INTO weir.events_hour_by_event_bitmap\n" in plan.backfills[1]
    assert "GROUP BY event_name, bucket" in plan.backfills[2]


def test_plan_reads_the_rollups_without_channel_unless_the_query_needs_channel() -> None:
    spec = TableSpec.from_settings(Settings())
    by_event = {r.granularity: r for r in spec.rollups if r.dimensions == ()}
    by_channel = {r.granularity: r for r in spec.rollups if r.dimensions == ("channel",)}
    start = 1_790_000_000 - 1_790_000_000 % DAY
    window = (start + 1234, start + 30 * DAY - 4321)
    for group_by in (None, GroupBy.HOUR, GroupBy.DAY):
        q = MetricsQuery("signup", *window, group_by=group_by)
        assert rollup_for(spec, q, "hour") == by_event["hour"]
        assert rollup_for(spec, q, "day") == by_event["day"]
        sql, _ = _union(spec, q)
        assert "_by_channel_bitmap" not in sql, group_by
        assert spec.rollup_ref(by_event["hour"]) in sql
        # group_by hour reads no day rollup: a day's state cannot be split into hours
        assert (spec.rollup_ref(by_event["day"]) in sql) == (group_by is not GroupBy.HOUR)
    for q in (
        MetricsQuery("signup", *window, group_by=GroupBy.CHANNEL),
        MetricsQuery("signup", *window, channel="web"),
        MetricsQuery("signup", *window, group_by=GroupBy.DAY, channel="web"),
    ):
        assert rollup_for(spec, q, "day") == by_channel["day"]
        sql, _ = _union(spec, q)
        assert "_by_event_bitmap" not in sql and spec.rollup_ref(by_channel["day"]) in sql
    # A spec without them (a `Table` resource listing only per-channel rollups) falls back.
    per_channel = dataclasses.replace(spec, rollups=tuple(by_channel.values()))
    totals = MetricsQuery("signup", *window)
    assert rollup_for(per_channel, totals, "day") == by_channel["day"]
    assert spec.rollup_ref(by_channel["hour"]) in _union(per_channel, totals)[0]
    # Only a day rollup without channel: its days are read, the hours come per channel.
    mixed = dataclasses.replace(spec, rollups=(by_channel["hour"], by_event["day"]))
    sql, _ = _union(mixed, totals)
    assert spec.rollup_ref(by_event["day"]) in sql and spec.rollup_ref(by_channel["hour"]) in sql
    assert rollup_for(mixed, MetricsQuery("signup", channel="web"), "day") is None


def test_cluster_backfill_and_rebuild_reach_every_shard() -> None:
    """A view counts a shard's own inserts into that shard's `_local` rollup, but a backfill or a
    rebuild recounts rows of every shard: it reads the Distributed raw table and inserts through
    the Distributed rollup, synchronously; the rebuild's DELETE runs on every shard."""
    by_event_day = next(r for r in CLUSTER.rollups if r == Rollup("day", ()))
    backfill = ddl.backfill_rollup(CLUSTER, by_event_day, "2026-12-01 00:00:00.000")
    assert backfill.startswith(
        "INSERT INTO weir.events_day_by_event_bitmap\nSETTINGS insert_distributed_sync = 1\n"
    )
    assert "\nFROM weir.events\nWHERE inserted_at < " in backfill
    statements = rebuild_statements(CLUSTER, [DAY + 5])
    # a DELETE and an INSERT for the edges and per rollup
    assert len(statements) == 2 + 2 * len(CLUSTER.rollups)
    assert statements[:2] == [
        (
            "DELETE FROM weir.events_edges_local ON CLUSTER 'main' "
            f"WHERE (timestamp >= {DAY} AND timestamp < {DAY + 3600})",
            {"lightweight_deletes_sync": 2},
        ),
        (
            "INSERT INTO weir.events_edges\nSETTINGS insert_distributed_sync = 1\n"
            "SELECT event_name, channel, timestamp, user_uid FROM weir.events\n"
            f"WHERE (timestamp >= {DAY} AND timestamp < {DAY + 3600})",
            {},
        ),
    ]
    deletes = [sql for sql, settings in statements if settings]
    assert deletes[-1] == (
        "DELETE FROM weir.events_day_by_event_bitmap_local ON CLUSTER 'main' "
        f"WHERE bucket IN ({DAY})"
    )
    inserts = [sql for sql, settings in statements if not settings]
    assert all("SETTINGS insert_distributed_sync = 1" in sql for sql in inserts)
    assert all("_local" not in sql for sql in inserts)
    # single node: the tables themselves, no cluster setting
    single = rebuild_statements(SPEC, [DAY + 5])
    assert single[-1][0].startswith("INSERT INTO weir.events_day_by_event_bitmap\nSELECT ")
    assert single[-2] == (
        f"DELETE FROM weir.events_day_by_event_bitmap WHERE bucket IN ({DAY})",
        {"lightweight_deletes_sync": 2},
    )
