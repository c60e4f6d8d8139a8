"""DDL text, cluster mode (never run: there is no cluster here), planning and window splits."""

from __future__ import annotations

import dataclasses

import pytest

from weir.core.config import Settings
from weir.store import (
    DEFAULT_ROLLUPS,
    ExistingSchema,
    ExistingTable,
    ExtraColumn,
    Rollup,
    TableSpec,
    ddl,
    plan_migration,
)
from weir.store.ddl import create_all, drop_all
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
    from weir.store.queries import RAW_WINDOW_SECONDS, MetricsQuery, _union

    spec = TableSpec.from_settings(Settings())
    start = 1_790_000_000 - 1_790_000_000 % DAY
    short = MetricsQuery("signup", start + 1, start + RAW_WINDOW_SECONDS)
    sql, _ = _union(spec, short)
    assert spec.raw_ref in sql and "UNION ALL" not in sql
    longer = MetricsQuery("signup", start + 1, start + RAW_WINDOW_SECONDS + 1)
    sql, _ = _union(spec, longer)
    assert sql.count("UNION ALL") >= 1  # whole hours from a rollup, the edges from raw rows
