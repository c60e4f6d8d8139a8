"""One contract, run against every `Store` backend (see test_backends.py: chDB in-process, and
clickhouse-connect over HTTP to the chDB shim of tests/harness/chdb_http.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from tests.store import schema_v1, schema_v2
from tests.store.events import (
    Ev,
    brute_groups,
    brute_totals,
    columns,
    old_columns,
    random_events,
)
from weir.core.event import StoredEvent
from weir.store import (
    INSERT_COLUMNS,
    ExtraColumn,
    GroupBy,
    MetricsQuery,
    Rollup,
    Store,
    StoreError,
    TableSpec,
    UserIds,
    ddl,
    erase_user,
    erase_users,
    existing_event_ids,
    insert_events,
    migrate,
    query_groups,
    query_totals,
    rebuild_rollups,
    rollup_for,
    stored_event,
    to_columns,
    winning_uids,
)

DAY = 86400


def recent_start() -> int:
    """Midnight three days ago: inside the TTL, with whole days, hours and partial edges."""
    return (int(time.time()) // DAY - 3) * DAY


async def count(store: Store, sql: str) -> int:
    return int((await store.query_rows(sql))[0][0])


async def users_codecs(store: Store, spec: TableSpec) -> list[str]:
    """The codec of every rollup's users column, in the spec's order ('' = the default)."""
    codecs = []
    for rollup in spec.rollups:
        rows = await store.query_rows(
            "SELECT compression_codec FROM system.columns WHERE database = {db:String} "
            "AND table = {name:String} AND name = 'users'",
            {"db": spec.database, "name": rollup.table_name(spec.table)},
        )
        codecs.append(str(rows[0][0]))
    return codecs


async def assert_stored_once(store: Store, spec: TableSpec, events: int) -> None:
    """The raw table and the edges hold `events` rows and every rollup counts each once."""
    assert await count(store, f"SELECT count() FROM {spec.database}.events") == events
    assert await count(store, f"SELECT count() FROM {spec.edges_ref}") == events
    for rollup in spec.rollups:
        counted = await count(store, f"SELECT countMerge(total) FROM {spec.rollup_ref(rollup)}")
        assert counted == events, rollup


async def assert_metrics_exact(
    store: Store, spec: TableSpec, events: list[Ev], start: int, rng: random.Random
) -> None:
    """Every group_by, windows cutting hours and days, open ends, the channel filter."""
    windows = [(None, None), (start + 7, None), (None, start + 2 * DAY + 1234)]
    windows += [(start + 3599, start + 3600), (start + 100, start + 200)]
    for _ in range(6):
        lo = start + rng.randrange(3 * DAY)
        windows.append((lo, lo + rng.randrange(2 * DAY)))
    for from_ts, to_ts in windows:
        for channel in (None, "ios"):
            q = MetricsQuery("click", from_ts, to_ts, channel=channel)
            assert await query_totals(store, spec, q) == brute_totals(events, q), q
            for group_by in GroupBy:
                grouped = dataclasses.replace(q, group_by=group_by)
                assert await query_groups(store, spec, grouped) == brute_groups(events, grouped)


class ClaimsRace:
    """A store whose inserts into the user id claims wait until `parties` callers got there:
    every consumer has looked its users up and found them new before anyone claims them."""

    def __init__(self, store: Store, spec: TableSpec, parties: int) -> None:
        self.store, self.spec = store, spec
        self.barrier = asyncio.Barrier(parties)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def insert(
        self, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]], **kw: Any
    ) -> None:
        if table == self.spec.users_ref:
            await self.barrier.wait()
        await self.store.insert(table, columns, data, **kw)


class StoreContract:
    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError  # each backend's test class provides it

    async def test_ping_and_errors(self, store: Store) -> None:
        assert await store.ping()
        with pytest.raises(StoreError) as caught:
            await store.query_rows("SELECT * FROM no_such_db.no_such_table")
        assert caught.value.code in (60, 81)

    async def test_a_query_is_answered_beside_a_long_one(self, store: Store) -> None:
        """Statements run side by side, as on a ClickHouse server: a consumer's long insert does
        not hold up the API's queries (chDB: one engine, a pool of connection handles)."""
        long = asyncio.create_task(
            store.query_rows(
                "SELECT sum(sleepEachRow(0.1)) FROM numbers(30) SETTINGS max_block_size = 1"
            )
        )
        await asyncio.sleep(0.3)  # the long one is running
        assert await store.query_rows("SELECT 1") == [(1,)]
        assert not long.done()  # answered while the 3 s statement still ran
        assert await long == [(0,)]

    async def test_migrate_is_idempotent(self, store: Store, table_spec: TableSpec) -> None:
        first = await migrate(store, table_spec)
        # database, raw, users + ranges, edges + view, 4 x (rollup + view)
        assert first.clean and len(first.applied) == 14
        second = await migrate(store, table_spec)
        assert second.applied == () and second.clean
        tables = await store.query_rows(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}"
            " ORDER BY name",
            {"db": table_spec.database},
        )
        names = [t[0] for t in tables]
        assert names == [
            "events",
            "events_day_by_channel_bitmap",
            "events_day_by_channel_bitmap_mv",
            "events_day_by_event_bitmap",
            "events_day_by_event_bitmap_mv",
            "events_edges",
            "events_edges_mv",
            "events_hour_by_channel_bitmap",
            "events_hour_by_channel_bitmap_mv",
            "events_hour_by_event_bitmap",
            "events_hour_by_event_bitmap_mv",
            "events_user_ranges",
            "events_users",
        ]
        engines = dict(tables)
        assert "TTL timestamp + toIntervalDay(395)" in engines["events"]
        assert "TTL bucket + toIntervalDay(395)" in engines["events_hour_by_channel_bitmap"]
        assert "TTL timestamp + toIntervalDay(395)" in engines["events_edges"]
        assert f"index_granularity = {ddl.EDGES_GRANULE_ROWS}" in engines["events_edges"]
        assert (
            "non_replicated_deduplication_window = 1000" in engines["events_day_by_channel_bitmap"]
        )
        assert "enable_block_number_column = 1" in engines["events_users"]
        assert "ORDER BY (event_name, bucket)" in engines["events_day_by_event_bitmap"]

    async def test_additive_migration_applied(self, store: Store, table_spec: TableSpec) -> None:
        await migrate(store, table_spec)
        events = random_events(random.Random(1), 300, recent_start(), 2 * DAY)
        await insert_events(store, table_spec, await columns(store, table_spec, events), "before")
        grown = dataclasses.replace(
            table_spec,
            ttl_days=30,
            extra_columns=(ExtraColumn("plan", "LowCardinality(String)", "account.plan"),),
            rollups=(*table_spec.rollups, Rollup("day", ("campaign_id", "plan"))),
        )
        result = await migrate(store, grown)
        assert result.clean
        assert any("ADD COLUMN IF NOT EXISTS plan" in s for s in result.applied)
        assert any("MODIFY TTL timestamp + INTERVAL 30 DAY" in s for s in result.applied)
        assert (await migrate(store, grown)).applied == ()
        # the new column is computed for old rows, the new rollup is backfilled
        raw = f"{grown.database}.events"
        pro = sum(e.plan == "pro" for e in events)
        assert await count(store, f"SELECT countIf(plan = 'pro') FROM {raw}") == pro
        rollup = f"{grown.database}.events_day_by_campaign_id_plan_bitmap"
        got = await count(store, f"SELECT countMerge(total) FROM {rollup} WHERE plan = 'pro'")
        assert got == pro

    async def test_destructive_change_refused(self, store: Store, table_spec: TableSpec) -> None:
        spec = dataclasses.replace(
            table_spec, extra_columns=(ExtraColumn("plan", "String", "account.plan"),)
        )
        await migrate(store, spec)
        shrunk = dataclasses.replace(
            table_spec,
            extra_columns=(ExtraColumn("plan", "Int64", "account.plan"),),
            rollups=(Rollup("hour", ("channel", "campaign_id")),),
        )
        result = await migrate(store, shrunk)
        assert not result.clean
        reasons = " | ".join(result.refused)
        assert "retyping refused" in reasons
        assert "events_day_by_channel_bitmap is not in the spec" in reasons
        assert "events_hour_by_channel_bitmap is not in the spec" in reasons
        assert all("DROP" not in s and "MODIFY COLUMN" not in s for s in result.applied)
        assert (
            await count(store, f"SELECT count() FROM {spec.database}.events_day_by_channel_bitmap")
            == 0
        )
        dropped = dataclasses.replace(table_spec, extra_columns=())
        assert "plan exists but is not in the spec" in " ".join(
            (await migrate(store, dropped)).refused
        )

    async def test_rollups_created_with_small_granules_and_plain_states(
        self, store: Store, table_spec: TableSpec
    ) -> None:
        await migrate(store, table_spec)
        for rollup in table_spec.rollups:
            rows = await store.query_rows(
                "SELECT create_table_query FROM system.tables "
                "WHERE database = {db:String} AND name = {name:String}",
                {"db": table_spec.database, "name": rollup.table_name(table_spec.table)},
            )
            assert f"index_granularity_bytes = {ddl.ROLLUP_GRANULE_BYTES}" in str(rows[0][0])
        assert await users_codecs(store, table_spec) == [ddl.ROLLUP_USERS_CODEC] * len(
            table_spec.rollups
        )

    async def test_retried_insert_not_doubled(self, store: Store, table_spec: TableSpec) -> None:
        await migrate(store, table_spec)
        events = random_events(random.Random(2), 500, recent_start(), DAY)
        data = await columns(store, table_spec, events)
        for _ in range(3):  # the consumer retries a failed insert verbatim with the same token
            await insert_events(store, table_spec, data, "events/0/100-599")
        await assert_stored_once(store, table_spec, 500)
        await insert_events(
            store, table_spec, await columns(store, table_spec, events[:10]), "events/0/600-609"
        )
        await assert_stored_once(store, table_spec, 510)  # a new token is a new insert

    async def test_large_insert_stored_whole(self, store: Store, table_spec: TableSpec) -> None:
        # A large batch (a consumer's holds up to 100,000): 20,000 events of ~700 bytes, more
        # than one block of the client's insert stream (clickhouse-connect compresses each block
        # apart). Every row must land, under the token, in the raw table and every rollup.
        await migrate(store, table_spec)
        events = random_events(random.Random(7), 20_000, recent_start(), DAY)
        data = await columns(store, table_spec, events)
        metadata = INSERT_COLUMNS.index("metadata")
        data[metadata] = [f'{{"note": "{"x" * 700}", "n": {n}}}' for n in range(len(events))]
        await insert_events(store, table_spec, data, "events/0:0-9999,events/1:0-9999")
        await assert_stored_once(store, table_spec, 20_000)

    async def test_metrics_equal_brute_force(self, store: Store, table_spec: TableSpec) -> None:
        await migrate(store, table_spec)
        rng = random.Random(3)
        start = recent_start()
        events = random_events(rng, 3000, start, 3 * DAY)
        await insert_events(store, table_spec, await columns(store, table_spec, events), "metrics")
        await assert_metrics_exact(store, table_spec, events, start, rng)
        assert (await query_totals(store, table_spec, MetricsQuery("none"))) == (0, 0)
        # The same answers from the per-channel rollups alone (a `Table` listing only those).
        per_channel = dataclasses.replace(
            table_spec, rollups=tuple(r for r in table_spec.rollups if r.dimensions)
        )
        await assert_metrics_exact(store, per_channel, events, start, rng)
        # And the answers above came from the rollups without channel: emptied, the whole days
        # they held are gone from totals, not from a channel's view.
        for rollup in table_spec.rollups:
            if not rollup.dimensions:
                await store.command(f"TRUNCATE TABLE {table_spec.rollup_ref(rollup)}")
        everything = MetricsQuery("click")
        assert await query_totals(store, table_spec, everything) == (0, 0)
        assert await query_totals(store, per_channel, everything) == brute_totals(
            events, everything
        )
        by_channel = dataclasses.replace(everything, group_by=GroupBy.CHANNEL)
        assert await query_groups(store, table_spec, by_channel) == brute_groups(events, by_channel)

    async def test_existing_event_ids(self, store: Store, table_spec: TableSpec) -> None:
        await migrate(store, table_spec)
        start = recent_start()
        events = random_events(random.Random(4), 200, start, DAY)
        await insert_events(
            store, table_spec, await columns(store, table_spec, events[:150]), "ids"
        )
        ids = [e.event_id for e in events] + ["never-seen"]
        names = {e.event_name for e in events}
        found = await existing_event_ids(store, table_spec, ids, [(start, start + DAY)], names)
        assert found == {e.event_id for e in events[:150]}
        narrow = await existing_event_ids(
            store, table_spec, ids, [(start + DAY, start + 2 * DAY)], names
        )
        assert narrow == set()
        # Two ranges find what either holds, and nothing between them.
        early = {e.event_id for e in events[:150] if e.timestamp < start + DAY // 4}
        late = {e.event_id for e in events[:150] if e.timestamp > start + 3 * DAY // 4}
        quarters = [(start, start + DAY // 4 - 1), (start + 3 * DAY // 4 + 1, start + DAY)]
        split = await existing_event_ids(store, table_spec, ids, quarters, names)
        assert split == early | late
        # More ids than one query carries: several queries, the same answer.
        assert store.max_lookup_ids >= 1000
        original = store.max_lookup_ids
        store.max_lookup_ids = 7
        try:
            chunked = await existing_event_ids(
                store, table_spec, ids, [(start, start + DAY)], names
            )
        finally:
            store.max_lookup_ids = original
        assert chunked == found

    async def test_lookups_of_a_whole_large_batch(
        self, store: Store, table_spec: TableSpec
    ) -> None:
        """A consumer's batch of 50,000 is looked up in as few queries as the backend allows:
        the ids reach `IN` as a subquery's set (an `IN` over a constant array of more than
        ~25,000 strings took chDB 10-20 s and drained a consumer at 2,700 events/s)."""
        await migrate(store, table_spec)
        start = recent_start()
        events = random_events(random.Random(8), 200, start, DAY)
        await insert_events(store, table_spec, await columns(store, table_spec, events), "big")
        stored = [e.event_id for e in events]
        ids = [f"absent-{n}" for n in range(30_000)] + stored
        names = {e.event_name for e in events}
        found = await existing_event_ids(store, table_spec, ids, [(start, start + DAY)], names)
        assert found == set(stored)
        known = {e.user_id for e in events}
        users = [f"nobody-{n}" for n in range(30_000)] + sorted(known)
        assert (await winning_uids(store, table_spec, users)).keys() == known

    async def test_any_string_is_counted_by_its_own_name(
        self, store: Store, table_spec: TableSpec
    ) -> None:
        """Parameters reach the engine verbatim: no escape sequence is re-interpreted, no
        character breaks the query, `\\N` is not NULL."""
        await migrate(store, table_spec)
        start = recent_start()
        base = random_events(random.Random(5), 1, start, DAY)[0]
        events = [
            dataclasses.replace(base, event_id=f"{name}#{n}", event_name=name, timestamp=start + n)
            for n, name in enumerate(HOSTILE_STRINGS)
        ]
        await insert_events(store, table_spec, await columns(store, table_spec, events), "hostile")
        for name in HOSTILE_STRINGS:
            assert await query_totals(store, table_spec, MetricsQuery(name)) == (1, 1), name
            groups = await query_groups(
                store, table_spec, MetricsQuery(name, start, start + DAY, GroupBy.CHANNEL)
            )
            assert [(g.total_events, g.unique_users) for g in groups] == [(1, 1)], name
        ids = [e.event_id for e in events]
        found = await existing_event_ids(
            store, table_spec, ids, [(start, start + DAY)], set(HOSTILE_STRINGS)
        )
        assert found == set(ids)
        echoed = await store.query_rows(
            "SELECT {s:String}, {a:Array(String)}", {"s": "a\\tb\t\\", "a": list(HOSTILE_STRINGS)}
        )
        assert echoed == [("a\\tb\t\\", list(HOSTILE_STRINGS))]

    async def test_existing_event_ids_finds_exactly_the_stored_of_any_text(
        self, store: Store, table_spec: TableSpec
    ) -> None:
        # Client-chosen ids may hold any character: each is found as it is, and only if stored.
        await migrate(store, table_spec)
        start = recent_start()
        events = [
            dataclasses.replace(e, event_id=text)
            for e, text in zip(
                random_events(random.Random(6), len(HOSTILE_STRINGS), start, 60),
                HOSTILE_STRINGS,
                strict=True,
            )
        ]
        await insert_events(
            store, table_spec, await columns(store, table_spec, events[::2]), "odd-ids"
        )
        names = {e.event_name for e in events}
        ids = list(HOSTILE_STRINGS)
        found = await existing_event_ids(store, table_spec, ids, [(start, start + 60)], names)
        assert found == set(HOSTILE_STRINGS[::2])

    async def test_dense_user_ids_converge(self, store: Store, table_spec: TableSpec) -> None:
        """Two consumers meet the same 300 new users at once (their events came through
        different partitions); both claim every one of them; one claim per user wins and both
        use it. A restarted consumer (empty cache, new slot) reads the same ids."""
        await migrate(store, table_spec)
        race: Any = ClaimsRace(store, table_spec, 2)
        first, second = UserIds(race, table_spec), UserIds(race, table_spec)
        shared = [f"user-{i}" for i in range(300)]
        a_users, b_users = [*shared, "only-a"], ["only-b", *reversed(shared)]
        a_ids, b_ids = await asyncio.gather(first.uids(a_users), second.uids(b_users))
        claims = await count(
            store, f"SELECT countIf(n = 2) FROM (SELECT count() AS n FROM {table_spec.users_ref} "
            "GROUP BY user_id)",
        )  # fmt: skip
        assert claims == 300  # the race happened: both claimed every shared user
        a, b = dict(zip(a_users, a_ids, strict=True)), dict(zip(b_users, b_ids, strict=True))
        assert all(a[user] == b[user] for user in shared)
        every = a | b
        assert len(set(every.values())) == len(every) and 0 not in every.values()
        restarted = UserIds(store, table_spec)
        assert await restarted.uids(list(every)) == list(every.values())
        (late,) = await restarted.uids(["late"])
        assert late not in every.values()
        assert await winning_uids(store, table_spec, [*every, "late"]) == every | {"late": late}

    async def test_existing_installation_migrated(
        self, store: Store, table_spec: TableSpec
    ) -> None:
        """A database made by the previous schema keeps its data and answers exactly after the
        migration, for rows from before it, rows inserted after it, and rows a consumer of the
        previous version inserted meanwhile (repaired by the next `migrate`)."""
        db = table_spec.database
        for statement in schema_v1.statements(db):
            await store.command(statement)
        rng = random.Random(5)
        start = recent_start()
        events = random_events(rng, 2000, start, 3 * DAY)
        old, new, straggler = events[:1200], events[1200:1700], events[1700:]

        async def insert_as_previous_version(rows: list[Ev]) -> None:
            data = old_columns(rows)
            await store.insert(f"{db}.events", schema_v1.INSERT_COLUMNS, data)

        await insert_as_previous_version(old)
        legacy = await count(store, f"SELECT countMerge(total) FROM {db}.events_hour_by_channel")
        result = await migrate(store, table_spec)
        assert result.clean, result.refused
        assert any("ADD COLUMN IF NOT EXISTS user_uid" in s for s in result.applied)
        # every new rollup backfilled, and the edges
        assert sum("INSERT INTO" in s for s in result.applied) == 5
        assert await count(store, f"SELECT count() FROM {db}.events WHERE user_uid = 0") == 0
        await assert_metrics_exact(store, table_spec, old, start, rng)
        # the previous rollups are kept as they were
        assert legacy == 1200
        assert (
            await count(store, f"SELECT countMerge(total) FROM {db}.events_day_by_channel") == 1200
        )
        await insert_events(store, table_spec, await columns(store, table_spec, new), "v2")
        await insert_as_previous_version(straggler)
        repaired = await migrate(store, table_spec)
        assert repaired.applied == () and repaired.clean
        await assert_metrics_exact(store, table_spec, events, start, rng)

    async def test_installation_before_rollups_without_channel_migrated(
        self, store: Store, table_spec: TableSpec
    ) -> None:
        """A database at the previous schema (per-channel rollups only, schema_v2) with data: the
        migration adds the rollups without channel and backfills them from the raw table; every
        answer is what it was, equal to a recount, before and after more events arrive."""
        db = table_spec.database
        for statement in schema_v2.statements(db):
            await store.command(statement)
        previous = dataclasses.replace(
            table_spec, rollups=tuple(r for r in table_spec.rollups if r.dimensions)
        )
        rng = random.Random(12)
        start = recent_start()
        events = random_events(rng, 2000, start, 3 * DAY)
        old, new = events[:1500], events[1500:]
        await insert_events(store, previous, await columns(store, previous, old), "v2")
        queries = [
            MetricsQuery("click", lo, hi, group_by)
            for lo, hi in ((None, None), (start + 4000, start + 2 * DAY + 99))
            for group_by in (None, *GroupBy)
        ]

        async def answers(spec: TableSpec) -> list[Any]:
            return [
                await (query_totals if q.group_by is None else query_groups)(store, spec, q)
                for q in queries
            ]

        # what the previous version answered: a recount (this version reads the edges, which
        # the previous schema lacks)
        before = [
            brute_totals(old, q) if q.group_by is None else brute_groups(old, q) for q in queries
        ]
        result = await migrate(store, table_spec)
        assert result.clean, result.refused
        added = [r for r in table_spec.rollups if not r.dimensions]
        created = [s for s in result.applied if s.startswith("CREATE")]
        assert len(created) == 2 * len(added) + 2 == 6  # each with its view; the edges too
        assert sum("_by_event_bitmap" in s for s in created) == 4
        assert sum(s.startswith("INSERT INTO") for s in result.applied) == len(added) + 1
        assert await count(store, f"SELECT count() FROM {db}.events") == 1500  # data kept
        assert await count(store, f"SELECT count() FROM {table_spec.edges_ref}") == 1500
        for rollup in added:  # backfilled from the raw table
            got = await count(
                store, f"SELECT countMerge(total) FROM {table_spec.rollup_ref(rollup)}"
            )
            assert got == 1500
        assert rollup_for(table_spec, queries[0], "day") in added  # the new plan reads them
        assert await answers(table_spec) == before
        await assert_metrics_exact(store, table_spec, old, start, rng)
        # the previous rollups store new parts uncompressed too (a codec change, no rewrite)
        assert await users_codecs(store, table_spec) == [ddl.ROLLUP_USERS_CODEC] * 4
        assert (await migrate(store, table_spec)).applied == ()
        await insert_events(store, table_spec, await columns(store, table_spec, new), "v3")
        await assert_metrics_exact(store, table_spec, events, start, rng)
        await assert_metrics_exact(store, previous, events, start, rng)

    async def test_client_timestamp_stored_and_added_to_existing_tables(
        self, store: Store, table_spec: TableSpec
    ) -> None:
        """The client's timestamp is stored beside the corrected one; a raw table made before the
        column gets it by an additive migration, its old rows reading their timestamp."""
        await migrate(store, table_spec)
        raw = table_spec.raw_ref
        await store.command(f"ALTER TABLE {raw} DROP COLUMN client_timestamp")
        start = recent_start()
        old = random_events(random.Random(8), 40, start, DAY)
        data = await columns(store, table_spec, old)
        index = INSERT_COLUMNS.index("client_timestamp")
        previous = [c for c in INSERT_COLUMNS if c != "client_timestamp"]
        await store.insert(raw, previous, data[:index] + data[index + 1 :])
        result = await migrate(store, table_spec)
        assert result.clean, result.refused
        assert [s for s in result.applied if "client_timestamp" in s] == [
            f"ALTER TABLE {raw} ADD COLUMN IF NOT EXISTS client_timestamp DateTime('UTC') "
            "DEFAULT timestamp AFTER timestamp"
        ]
        assert (await migrate(store, table_spec)).applied == ()
        differ = f"SELECT countIf(client_timestamp != timestamp), count() FROM {raw}"
        assert (await store.query_rows(differ))[0] == (0, 40)
        received = (start + DAY) * 1000
        clocked = StoredEvent(
            event_id="clocked", event_name="click", channel="web", user_id="u1",
            timestamp=start + 100, client_timestamp=start + 7300, sent_at=start + 7400,
            received_at=received,
        )  # fmt: skip
        plain = msgspec.structs.replace(
            clocked, event_id="plain", client_timestamp=None, sent_at=None
        )
        uids = await UserIds(store, table_spec).uids(["u1", "u1"])
        await insert_events(
            store, table_spec, to_columns([clocked, plain], ["", ""], uids), "clocked"
        )
        rows = await store.query_rows(
            f"SELECT event_id, toUnixTimestamp(timestamp), toUnixTimestamp(client_timestamp) "
            f"FROM {raw} WHERE event_id IN ('clocked', 'plain') ORDER BY event_id"
        )
        assert rows == [("clocked", start + 100, start + 7300), ("plain", start + 100, start + 100)]
        assert (await store.query_rows(differ))[0] == (1, 42)

    async def test_stored_event_read_back(self, store: Store, table_spec: TableSpec) -> None:
        await migrate(store, table_spec)
        start = recent_start()
        event = StoredEvent(
            event_id="order-1", event_name="buy", channel="web", user_id="u1",
            timestamp=start + 100, client_timestamp=start + 7300, sent_at=start + 7400,
            received_at=(start + 200) * 1000 + 123, tags=["a", "b"],
            metadata={"sku": "x", "n": [1, {"deep": None}]}, campaign_id="c9",
        )  # fmt: skip
        odd = msgspec.structs.replace(
            event, event_id=HOSTILE_STRINGS[0], campaign_id=None, tags=[], metadata={}
        )
        uids = await UserIds(store, table_spec).uids(["u1", "u1"])
        data = to_columns([event, odd], ["0af7651916cd43dd8448eb211c80319c", ""], uids)
        await insert_events(store, table_spec, data, "read-back")
        assert await stored_event(store, table_spec, "order-1") == {
            "event_id": "order-1", "event_name": "buy", "channel": "web", "user_id": "u1",
            "timestamp": start + 100, "client_timestamp": start + 7300, "campaign_id": "c9",
            "tags": ["a", "b"], "metadata": {"sku": "x", "n": [1, {"deep": None}]},
            "received_at": (start + 200) * 1000 + 123,
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
        }  # fmt: skip
        found = await stored_event(store, table_spec, HOSTILE_STRINGS[0])
        assert found is not None and found["campaign_id"] is None and found["trace_id"] is None
        for unknown in ("order-2", HOSTILE_STRINGS[1], "order-1 "):
            assert await stored_event(store, table_spec, unknown) is None

    async def test_erase_user(self, store: Store, table_spec: TableSpec) -> None:
        """A user's events leave the raw table and every rollup; /metrics equals a recount of
        what remains, for every shape; users of any text are erased as themselves."""
        await migrate(store, table_spec)
        rng = random.Random(9)
        start = recent_start()
        events = random_events(rng, 1500, start, 3 * DAY)
        odd_user = HOSTILE_STRINGS[1]  # `probe\\ttab`: must not erase `probe\ttab`
        events = [
            dataclasses.replace(e, user_id=odd_user if n % 50 == 0 else e.user_id)
            for n, e in enumerate(events)
        ]
        events.append(dataclasses.replace(events[1], event_id="near", user_id=HOSTILE_STRINGS[0]))
        await insert_events(store, table_spec, await columns(store, table_spec, events), "e")
        for user in ("u7", odd_user):
            gone = [e for e in events if e.user_id == user]
            hours = {e.timestamp // 3600 for e in gone}
            erased = await erase_user(store, table_spec, user)
            assert (erased.total, erased.hours) == (len(gone), len(hours)) and erased.total
            events = [e for e in events if e.user_id != user]
            await assert_metrics_exact(store, table_spec, events, start, rng)
        raw = table_spec.raw_ref
        assert await count(store, f"SELECT count() FROM {raw}") == len(events)
        assert await count(store, f"SELECT count() FROM {raw} WHERE user_id = 'u7'") == 0
        assert await stored_event(store, table_spec, "near") is not None
        again = await erase_user(store, table_spec, "u7")
        assert (again.total, again.hours) == (0, 0)
        # several users in one pass, one of them unknown
        users = ["u1", "u2", "never-seen", HOSTILE_STRINGS[0]]
        many = await erase_users(store, table_spec, users)
        assert many.events == {u: sum(e.user_id == u for e in events) for u in users}
        assert many.hours == len({e.timestamp // 3600 for e in events if e.user_id in users})
        events = [e for e in events if e.user_id not in users]
        await assert_metrics_exact(store, table_spec, events, start, rng)
        assert await stored_event(store, table_spec, "near") is None

    async def test_rebuild_rollups_after_erasure(self, store: Store, table_spec: TableSpec) -> None:
        """The store's one place that rebuilds rollup rows: delete a user's raw rows, rebuild the
        hours they had events in, and /metrics equals a recount without them."""
        await migrate(store, table_spec)
        rng = random.Random(6)
        start = recent_start()
        events = random_events(rng, 1500, start, 3 * DAY)
        await insert_events(store, table_spec, await columns(store, table_spec, events), "e")
        gone = [e for e in events if e.user_id == "u7"]
        await store.command(
            f"ALTER TABLE {table_spec.raw_ref} DELETE WHERE user_id = 'u7'", {"mutations_sync": 2}
        )
        await rebuild_rollups(store, table_spec, {e.timestamp for e in gone})
        kept = [e for e in events if e.user_id != "u7"]
        await assert_metrics_exact(store, table_spec, kept, start, rng)


# Each must be stored and counted as itself: TAB, LF, CR, NUL, literal backslash sequences, a
# trailing backslash, quotes, the escaped-format NULL marker.
HOSTILE_STRINGS = (
    "probe\ttab",
    "probe\\ttab",
    "probe\n",
    "probe\\n",
    "trailing\\",
    "cr\rnul\0",
    "quote'`\"",
    "\\N",
    "{event_name:String}",
    "ünïcødé 😀",
)
