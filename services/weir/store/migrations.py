"""Bring a database in line with a `TableSpec`: create what is missing, apply additive changes,
refuse destructive ones (with a reason each) — never execute them.

`plan_migration` is pure (unit-testable); `migrate` reads what exists, plans and applies;
`drop` removes everything a spec owns (the operator's deletionPolicy=Delete).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from weir.store import ddl
from weir.store.base import Store
from weir.store.rollups import hours_counted_without_ids, rebuild_rollups
from weir.store.spec import (
    ADDED_EVENT_COLUMNS,
    EVENT_COLUMNS,
    LEGACY_USERS_TYPE,
    TableSpec,
    view_name,
)
from weir.store.users import backfill_user_ids

_TTL_DAYS = re.compile(r"\bTTL\s+\w+\s*\+\s*toIntervalDay\((\d+)\)")
_ROLLUP_TAIL = {"bucket", "total", "users"}


@dataclass(frozen=True)
class ExistingTable:
    """A table as the server reports it: engine, ordered columns (name -> type), TTL in days,
    the columns' codecs when not the default (name -> `CODEC(...)`)."""

    name: str
    engine: str
    columns: dict[str, str] = field(default_factory=dict)
    ttl_days: int = 0
    codecs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExistingSchema:
    database_exists: bool
    tables: dict[str, ExistingTable] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """`statements` to run in order; `refused` holds one human-readable reason per refusal.

    `backfills` fill new rollups and the edges from the raw table; `migrate` runs them after
    giving every raw
    row its dense user id (`users.backfill_user_ids`), which the rollups count."""

    statements: tuple[str, ...]
    refused: tuple[str, ...]
    backfills: tuple[str, ...] = ()


@dataclass(frozen=True)
class MigrationResult:
    """What `migrate` ran (`applied`) and what it would not do (`refused`, with reasons)."""

    applied: tuple[str, ...]
    refused: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.refused


def _cluster_mismatch(spec: TableSpec, existing: ExistingSchema) -> str | None:
    raw = existing.tables.get(spec.table)
    if raw is None:
        return None
    clustered = raw.engine == "Distributed"
    if clustered == bool(spec.cluster):
        return None
    now = "a Distributed (cluster) table" if clustered else f"a single-node {raw.engine}"
    want = f"cluster {spec.cluster!r}" if spec.cluster else "single node"
    return f"{spec.database}.{spec.table} is {now}; moving it to {want} needs a manual migration"


def _raw_changes(spec: TableSpec, raw: ExistingTable, out: list[str], refused: list[str]) -> None:
    wanted = {name: type_ for name, type_ in EVENT_COLUMNS}
    wanted["inserted_at"] = "DateTime64(3, 'UTC')"
    wanted |= {c.name: c.type for c in spec.extra_columns}
    have = {name: type_.replace(", ", ",") for name, type_ in raw.columns.items()}
    for name, type_ in wanted.items():
        if name not in have:
            extra = next((c for c in spec.extra_columns if c.name == name), None)
            if name in ADDED_EVENT_COLUMNS:  # raw tables made before the column existed
                out.extend(ddl.add_event_column(spec, name))
            elif extra is None:
                refused.append(f"column {name} of {raw.name} is missing; recreate the table")
            else:
                out.extend(ddl.add_column(spec, extra))
        elif have[name] != type_.replace(", ", ","):
            refused.append(f"column {name} is {have[name]}, spec says {type_}: retyping refused")
    for name in have.keys() - wanted.keys():
        refused.append(f"column {name} exists but is not in the spec: dropping it is refused")
    if raw.ttl_days != spec.ttl_days:
        out.append(ddl.modify_ttl(spec, spec.table, "timestamp"))


def _users_changes(spec: TableSpec, existing: ExistingSchema, out: list[str]) -> None:
    names = [spec.users_table, spec.ranges_table]
    if any(ddl.physical(spec, n) not in existing.tables for n in names):
        out.extend(ddl.create_users(spec))  # IF NOT EXISTS: re-running the pair is harmless


def _is_legacy(table: ExistingTable) -> bool:
    return table.columns.get("users", "").replace(", ", ",") == LEGACY_USERS_TYPE.replace(", ", ",")


def _rollup_changes(
    spec: TableSpec,
    existing: ExistingSchema,
    backfill_before: str | None,
    out: list[str],
    refused: list[str],
    backfills: list[str],
) -> None:
    for rollup in spec.rollups:
        name = rollup.table_name(spec.table)
        table = existing.tables.get(ddl.physical(spec, name))
        if table is None:
            out.extend(ddl.create_rollup_table(spec, rollup))
            out.append(ddl.create_rollup_view(spec, rollup))
            if ddl.physical(spec, spec.table) in existing.tables:
                backfills.append(ddl.backfill_rollup(spec, rollup, backfill_before))
            continue
        dims = tuple(c for c in table.columns if c != "event_name" and c not in _ROLLUP_TAIL)
        if dims != rollup.dimensions:
            refused.append(f"rollup {name} has dimensions {dims}, not {rollup.dimensions}: refused")
            continue
        if spec.cluster and name not in existing.tables:
            out.extend(ddl.create_rollup_table(spec, rollup)[1:])
        if view_name(name) not in existing.tables:
            out.append(ddl.create_rollup_view(spec, rollup))
        if table.ttl_days != spec.ttl_days:
            out.append(ddl.modify_ttl(spec, name, "bucket"))
        if table.codecs.get("users") != ddl.ROLLUP_USERS_CODEC:
            out.append(ddl.modify_users_codec(spec, rollup))
    wanted = {ddl.physical(spec, r.table_name(spec.table)) for r in spec.rollups}
    pattern = re.compile(rf"^{re.escape(spec.table)}_(hour|day)_by_\w+?(_local)?$")
    for name in sorted(existing.tables):
        is_rollup = pattern.match(name) and not name.endswith("_mv")
        if is_rollup and _is_legacy(existing.tables[name]):
            continue  # made before dense ids: kept as it is, no longer read
        # On a cluster the `_local` table stands for the rollup (its Distributed table follows it).
        if is_rollup and name not in wanted and bool(spec.cluster) == name.endswith("_local"):
            refused.append(f"rollup {name} is not in the spec: removing it is refused")


def _edges_changes(
    spec: TableSpec,
    existing: ExistingSchema,
    backfill_before: str | None,
    out: list[str],
    backfills: list[str],
) -> None:
    table = existing.tables.get(ddl.physical(spec, spec.edges_table))
    if table is None:
        out.extend(ddl.create_edges(spec))
        out.append(ddl.create_edges_view(spec))
        if ddl.physical(spec, spec.table) in existing.tables:
            backfills.append(ddl.backfill_edges(spec, backfill_before))
        return
    if spec.cluster and spec.edges_table not in existing.tables:
        out.extend(ddl.create_edges(spec)[1:])
    if view_name(spec.edges_table) not in existing.tables:
        out.append(ddl.create_edges_view(spec))
    if table.ttl_days != spec.ttl_days:
        out.append(ddl.modify_ttl(spec, spec.edges_table, "timestamp"))


def plan_migration(
    spec: TableSpec, existing: ExistingSchema, backfill_before: str | None = None
) -> Plan:
    """Statements turning `existing` into `spec`, and the changes refused as destructive.

    A rollup added to an existing raw table is backfilled from rows inserted before
    `backfill_before` (server time read at planning, see `ddl.backfill_rollup`).
    """
    if not existing.database_exists:
        return Plan(tuple(ddl.create_all(spec)), ())
    mismatch = _cluster_mismatch(spec, existing)
    if mismatch:
        return Plan((), (mismatch,))
    out: list[str] = []
    refused: list[str] = []
    backfills: list[str] = []
    raw = existing.tables.get(ddl.physical(spec, spec.table))
    if raw is None:
        out.extend(ddl.create_raw(spec))
    else:
        if spec.cluster and spec.table not in existing.tables:
            out.extend(ddl.create_raw(spec)[1:])
        _raw_changes(spec, raw, out, refused)
    _users_changes(spec, existing, out)
    _edges_changes(spec, existing, backfill_before, out, backfills)
    _rollup_changes(spec, existing, backfill_before, out, refused, backfills)
    return Plan(tuple(out), tuple(refused), tuple(backfills))


async def read_existing(store: Store, spec: TableSpec) -> ExistingSchema:
    params = {"db": spec.database}
    found = await store.query_rows(
        "SELECT count() FROM system.databases WHERE name = {db:String}", params
    )
    if found[0][0] == 0:
        return ExistingSchema(database_exists=False)
    tables = await store.query_rows(
        "SELECT name, engine, engine_full FROM system.tables WHERE database = {db:String}", params
    )
    columns = await store.query_rows(
        "SELECT table, name, type, compression_codec FROM system.columns "
        "WHERE database = {db:String} ORDER BY table, position",
        params,
    )
    by_table: dict[str, dict[str, str]] = {}
    codecs: dict[str, dict[str, str]] = {}
    for table, name, type_, codec in columns:
        by_table.setdefault(table, {})[name] = type_
        if codec:
            codecs.setdefault(table, {})[name] = codec
    result = {}
    for name, engine, engine_full in tables:
        ttl = _TTL_DAYS.search(engine_full or "")
        result[name] = ExistingTable(
            name, engine, by_table.get(name, {}), int(ttl[1]) if ttl else 0, codecs.get(name, {})
        )
    return ExistingSchema(database_exists=True, tables=result)


async def migrate(store: Store, spec: TableSpec) -> MigrationResult:
    """Idempotent: a second run applies nothing. Refused changes are reported, not run.

    Between the schema and the backfills, raw rows without a dense user id get one; a rollup
    bucket fed such a row (by a consumer of the previous version running meanwhile) is rebuilt."""
    now = await store.query_rows("SELECT toString(now64(3, 'UTC'))")
    plan = plan_migration(spec, await read_existing(store, spec), str(now[0][0]))
    for statement in plan.statements:
        await store.command(statement)
    raw = (await read_existing(store, spec)).tables.get(ddl.physical(spec, spec.table))
    if raw is None or "user_uid" not in raw.columns:  # refused: nothing to fill
        return MigrationResult(applied=plan.statements, refused=plan.refused)
    backfilled = await backfill_user_ids(store, spec)
    for statement in plan.backfills:
        await store.command(statement)
    if backfilled:
        await rebuild_rollups(store, spec, await hours_counted_without_ids(store, spec))
    applied = plan.statements + plan.backfills
    return MigrationResult(applied=applied, refused=plan.refused)


async def drop(store: Store, spec: TableSpec) -> tuple[str, ...]:
    """Drop the views, rollups and raw table of `spec` (the database itself is kept)."""
    statements = tuple(ddl.drop_all(spec))
    for statement in statements:
        await store.command(statement)
    return statements
