# ruff: noqa: E501  (the statements are kept exactly as that version generated them)
"""The schema as Weir created it before the rollups without the channel dimension (main at
e07472d: `ddl.create_all` of `TableSpec("DB", "events", 395)`: dense user ids, per-channel bitmap
rollups only), frozen as text: what an existing installation has today. `DB` stands for the
database name. Its rows are inserted as today's consumer inserts them (same columns)."""

from __future__ import annotations

STATEMENTS = (
    "CREATE DATABASE IF NOT EXISTS DB",
    "CREATE TABLE IF NOT EXISTS DB.events (\n  event_id String,\n  event_name LowCardinality(String),\n  channel LowCardinality(String),\n  campaign_id String,\n  user_id String,\n  user_uid UInt32,\n  timestamp DateTime('UTC'),\n  client_timestamp DateTime('UTC') DEFAULT timestamp,\n  tags Array(String),\n  metadata String,\n  received_at DateTime64(3, 'UTC'),\n  trace_id String,\n  inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),\n  INDEX event_id_bloom event_id TYPE bloom_filter(0.01) GRANULARITY 1\n)\nENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(timestamp)\nORDER BY (event_name, timestamp, event_id)\nTTL timestamp + INTERVAL 395 DAY\nSETTINGS non_replicated_deduplication_window = 1000",
    "CREATE TABLE IF NOT EXISTS DB.events_users (\n  user_id String,\n  uid UInt32\n)\nENGINE = MergeTree\nORDER BY user_id\nSETTINGS enable_block_number_column = 1",
    "CREATE TABLE IF NOT EXISTS DB.events_user_ranges (\n  slot UInt32,\n  owner String\n)\nENGINE = MergeTree\nORDER BY slot\nSETTINGS enable_block_number_column = 1",
    "CREATE TABLE IF NOT EXISTS DB.events_hour_by_channel_bitmap (\n  event_name LowCardinality(String),\n  channel LowCardinality(String),\n  bucket DateTime('UTC'),\n  total AggregateFunction(count),\n  users AggregateFunction(groupBitmap, UInt32)\n)\nENGINE = AggregatingMergeTree\nPARTITION BY toYYYYMM(bucket)\nORDER BY (event_name, bucket, channel)\nTTL bucket + INTERVAL 395 DAY\nSETTINGS non_replicated_deduplication_window = 1000",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS DB.events_hour_by_channel_bitmap_mv TO DB.events_hour_by_channel_bitmap AS\nSELECT event_name, channel, toStartOfHour(timestamp) AS bucket, countState() AS total, groupBitmapState(user_uid) AS users\nFROM DB.events\nGROUP BY event_name, channel, bucket",
    "CREATE TABLE IF NOT EXISTS DB.events_day_by_channel_bitmap (\n  event_name LowCardinality(String),\n  channel LowCardinality(String),\n  bucket DateTime('UTC'),\n  total AggregateFunction(count),\n  users AggregateFunction(groupBitmap, UInt32)\n)\nENGINE = AggregatingMergeTree\nPARTITION BY toYYYYMM(bucket)\nORDER BY (event_name, bucket, channel)\nTTL bucket + INTERVAL 395 DAY\nSETTINGS non_replicated_deduplication_window = 1000",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS DB.events_day_by_channel_bitmap_mv TO DB.events_day_by_channel_bitmap AS\nSELECT event_name, channel, toStartOfDay(timestamp) AS bucket, countState() AS total, groupBitmapState(user_uid) AS users\nFROM DB.events\nGROUP BY event_name, channel, bucket",
)


def statements(database: str) -> list[str]:
    return [s.replace("DB", database) for s in STATEMENTS]
