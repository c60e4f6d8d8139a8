"""Table reconcile logic against the real ClickHouse engine (chDB); DDL is weir.store's."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from weir.store import DEFAULT_ROLLUPS, Store
from weir_operator.table.model import DesiredTable, table_from_resource
from weir_operator.table.reconcile import delete_table, reconcile_table

BASE: dict[str, Any] = {
    "source": {"topicRef": "weir-events"},
    "ttlDays": 30,
    "extraColumns": [{"name": "device_os", "type": "LowCardinality(String)", "path": "device.os"}],
    "rollups": [{"granularity": "hour", "dimensions": ["channel"]}],
}


def table(database: str, **changes: Any) -> DesiredTable:
    return table_from_resource("events", {**BASE, "database": database, **changes})


@pytest.fixture
def database() -> str:
    return f"op_{uuid.uuid4().hex[:10]}"


async def tables_in(store: Store, database: str) -> dict[str, dict[str, str]]:
    rows = await store.query_rows(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String}",
        {"db": database},
    )
    out: dict[str, dict[str, str]] = {}
    for table_name, column, type_ in rows:
        out.setdefault(table_name, {})[column] = type_
    return out


async def test_create_then_idempotent(chdb_store: Store, database: str) -> None:
    store = chdb_store
    first = await reconcile_table(store, table(database))
    assert first.condition.status == "True" and first.applied and not first.refused
    assert first.rows == 0
    found = await tables_in(store, database)
    assert "device_os" in found["events"]
    assert "events_hour_by_channel_bitmap" in found
    second = await reconcile_table(store, table(database))
    assert second.applied == () and second.condition.message.endswith("no changes")


async def test_additive_changes_applied_in_place(chdb_store: Store, database: str) -> None:
    store = chdb_store
    await reconcile_table(store, table(database))
    await store.command(
        f"INSERT INTO {database}.events (event_id, event_name, channel, campaign_id, user_id,"
        " timestamp, tags, metadata, received_at, trace_id, inserted_at) VALUES ('e1', 'open',"
        " 'web', 'c1', 'u1', now(), [], '{}', now64(3), '', now64(3) - INTERVAL 5 SECOND)"
    )
    grown = table(
        database,
        ttlDays=60,
        extraColumns=[*BASE["extraColumns"], {"name": "plan", "type": "String", "path": "plan"}],
        rollups=[*BASE["rollups"], {"granularity": "day", "dimensions": ["campaign_id", "plan"]}],
    )
    outcome = await reconcile_table(store, grown)
    assert outcome.condition.status == "True", outcome.condition.message
    assert not outcome.refused and len(outcome.applied) >= 3
    found = await tables_in(store, database)
    assert found["events"]["plan"] == "String"
    assert "events_day_by_campaign_id_plan_bitmap" in found
    assert outcome.rows == 1
    backfilled = await store.query_rows(
        f"SELECT countMerge(total) FROM {database}.events_day_by_campaign_id_plan_bitmap"
    )
    assert backfilled[0][0] == 1, "the new rollup is backfilled from the raw table"


async def test_destructive_changes_refused_with_reason(chdb_store: Store, database: str) -> None:
    store = chdb_store
    await reconcile_table(store, table(database))
    retyped = table(
        database, extraColumns=[{"name": "device_os", "type": "Int64", "path": "device.os"}]
    )
    outcome = await reconcile_table(store, retyped)
    assert outcome.condition.status == "False"
    assert outcome.condition.reason == "DestructiveChangeRefused"
    assert "retyping refused" in outcome.condition.message
    assert (await tables_in(store, database))["events"]["device_os"] == "LowCardinality(String)"

    removed = table(database, extraColumns=[])
    outcome = await reconcile_table(store, removed)
    assert outcome.condition.reason == "DestructiveChangeRefused"
    assert "device_os exists but is not in the spec" in outcome.condition.message
    assert "device_os" in (await tables_in(store, database))["events"]


async def test_delete_honours_policy(chdb_store: Store, database: str) -> None:
    store = chdb_store
    retained = table(database)
    await reconcile_table(store, retained)
    assert await delete_table(store, retained) is False
    assert "events" in await tables_in(store, database)

    doomed = table(database, deletionPolicy="Delete")
    assert await delete_table(store, doomed) is True
    assert await tables_in(store, database) == {}


def test_resource_defaults_and_invalid_specs() -> None:
    desired = table_from_resource("web-events", {"source": {"topicRef": "t"}})
    assert desired.spec.table == "web_events" and desired.spec.database == "weir"
    assert desired.spec.rollups == DEFAULT_ROLLUPS
    # `dimensions: []` is the rollup without channel that /metrics reads when it can
    listed = table_from_resource(
        "t",
        {"source": {"topicRef": "t"}, "rollups": [{"granularity": "day", "dimensions": []}]},
    )
    assert [r.table_name("t") for r in listed.spec.rollups] == ["t_day_by_event_bitmap"]
    assert desired.deletion_policy == "Retain"
    with pytest.raises(ValueError, match="not columns"):
        table_from_resource(
            "t",
            {
                "source": {"topicRef": "t"},
                "rollups": [{"granularity": "hour", "dimensions": ["nope"]}],
            },
        )
    with pytest.raises(ValueError, match="topicRef"):
        table_from_resource("t", {"source": {}})
