"""What a Weir table is: the raw events table, its extra columns and its rollups.

Plain frozen dataclasses so the kopf operator's `Table` custom resource maps onto them field by
field; every name (rollup tables, views, local/Distributed tables) is derived here, in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from weir.core.config import Settings

Granularity = Literal["hour", "day"]

EXTRA_COLUMN_TYPES = frozenset(
    {"String", "Int64", "Float64", "Bool", "DateTime", "LowCardinality(String)"}
)
# Event fields a rollup may be keyed on besides extra columns; event_name is always the first key.
ROLLUP_EVENT_DIMENSIONS = frozenset({"channel", "campaign_id"})

# Raw-table columns every event carries, in insert order, with their ClickHouse types.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "String"),
    ("event_name", "LowCardinality(String)"),
    ("channel", "LowCardinality(String)"),
    ("campaign_id", "String"),
    ("user_id", "String"),
    ("user_uid", "UInt32"),  # the user's dense id (`store/users.py`), what the rollups count
    ("timestamp", "DateTime('UTC')"),  # on the server's clock (`core.event.device_time`)
    ("client_timestamp", "DateTime('UTC')"),  # as the client sent it (= timestamp without sent_at)
    ("tags", "Array(String)"),
    ("metadata", "String"),
    ("received_at", "DateTime64(3, 'UTC')"),
    ("trace_id", "String"),
)
# Columns added to raw tables made before them (additive migrations), as `ADD COLUMN` definitions:
# a row inserted before, or by a consumer of the previous version, gets the default.
ADDED_EVENT_COLUMNS: dict[str, str] = {
    "user_uid": "user_uid UInt32 AFTER user_id",  # 0: no id yet (`users.backfill_user_ids`)
    "client_timestamp": "client_timestamp DateTime('UTC') DEFAULT timestamp AFTER timestamp",
}
# What the consumer inserts (inserted_at and extra columns are filled by the engine).
INSERT_COLUMNS: tuple[str, ...] = tuple(name for name, _ in EVENT_COLUMNS)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_RESERVED = frozenset(INSERT_COLUMNS) | {"inserted_at"}


def check_identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return name


@dataclass(frozen=True)
class ExtraColumn:
    """A column filled at insert time from the event's `metadata` JSON at a dot-separated path."""

    name: str
    type: str
    path: str

    def __post_init__(self) -> None:
        check_identifier(self.name, "extra column")
        if self.name in _RESERVED:
            raise ValueError(f"extra column {self.name!r} clashes with an event column")
        if self.type not in EXTRA_COLUMN_TYPES:
            raise ValueError(f"extra column type {self.type!r} not in {sorted(EXTRA_COLUMN_TYPES)}")
        if not _PATH.match(self.path):
            raise ValueError(f"metadata path {self.path!r} must be dot-separated keys")


@dataclass(frozen=True)
class Rollup:
    """Pre-aggregated counts and user bitmaps per (event_name, *dimensions, bucket).

    The `_bitmap` suffix names the representation: `groupBitmap` states of dense user ids. Rollups
    of the previous representation (`uniqExact` states of user_id strings, same names without the
    suffix) are left in place by migrations and no longer read (`LEGACY_USERS_TYPE`)."""

    granularity: Granularity
    dimensions: tuple[str, ...] = ("channel",)

    def __post_init__(self) -> None:
        if self.granularity not in ("hour", "day"):
            raise ValueError(f"rollup granularity {self.granularity!r} must be 'hour' or 'day'")
        for dim in self.dimensions:
            check_identifier(dim, "rollup dimension")
        if "event_name" in self.dimensions or len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError("rollup dimensions repeat a key (event_name is always included)")

    def table_name(self, raw_table: str) -> str:
        # No dimension: keyed by event_name alone, hence `_by_event`.
        dims = "_".join(self.dimensions) if self.dimensions else "event"
        return f"{raw_table}_{self.granularity}_by_{dims}_bitmap"


# The users column of a rollup made before dense ids: kept, no longer read or fed by new code.
LEGACY_USERS_TYPE = "AggregateFunction(uniqExact, String)"

# Per channel for group_by=channel and the channel filter; without the channel dimension
# (`<table>_{hour,day}_by_event_bitmap`) for every other query: one state per bucket to merge
# instead of one per channel and bucket (`queries.rollup_for`).
DEFAULT_ROLLUPS: tuple[Rollup, ...] = (
    Rollup("hour", ("channel",)),
    Rollup("day", ("channel",)),
    Rollup("hour", ()),
    Rollup("day", ()),
)


@dataclass(frozen=True)
class TableSpec:
    """One raw events table with its rollups. `cluster` switches to replicated + Distributed."""

    database: str
    table: str
    ttl_days: int
    extra_columns: tuple[ExtraColumn, ...] = ()
    rollups: tuple[Rollup, ...] = field(default=DEFAULT_ROLLUPS)
    cluster: str | None = None

    def __post_init__(self) -> None:
        check_identifier(self.database, "database")
        check_identifier(self.table, "table")
        if self.ttl_days < 0:
            raise ValueError("ttl_days must be >= 0 (0 keeps data forever)")
        names = [c.name for c in self.extra_columns]
        if len(set(names)) != len(names):
            raise ValueError("extra column names repeat")
        allowed = ROLLUP_EVENT_DIMENSIONS | set(names)
        for rollup in self.rollups:
            unknown = set(rollup.dimensions) - allowed
            if unknown:
                raise ValueError(f"rollup dimensions {sorted(unknown)} are not columns")
        tables = [r.table_name(self.table) for r in self.rollups]
        if len(set(tables)) != len(tables):
            raise ValueError("two rollups share a granularity and dimensions")

    @classmethod
    def from_settings(cls, settings: Settings) -> TableSpec:
        return cls(
            database=settings.clickhouse_database,
            table=settings.table,
            ttl_days=settings.ttl_days,
            cluster=settings.clickhouse_cluster,
        )

    @property
    def raw_ref(self) -> str:
        """`database.table` that queries and inserts address (Distributed table on a cluster)."""
        return f"{self.database}.{self.table}"

    @property
    def edges_table(self) -> str:
        """The raw rows' (event_name, channel, timestamp, user_uid) in time order, in small
        granules: what metrics queries read for partial hours (`ddl.create_edges`)."""
        return f"{self.table}_edges"

    @property
    def edges_ref(self) -> str:
        return f"{self.database}.{self.edges_table}"

    @property
    def users_table(self) -> str:
        """Claims of dense user ids: (user_id, uid); the earliest claim of a user wins."""
        return f"{self.table}_users"

    @property
    def ranges_table(self) -> str:
        """Leases of uid slots: (slot, owner); the earliest lease of a slot wins."""
        return f"{self.table}_user_ranges"

    @property
    def users_ref(self) -> str:
        return f"{self.database}.{self.users_table}"

    @property
    def ranges_ref(self) -> str:
        return f"{self.database}.{self.ranges_table}"

    def rollup_ref(self, rollup: Rollup) -> str:
        return f"{self.database}.{rollup.table_name(self.table)}"

    def find_rollup(self, granularity: Granularity, dimensions: tuple[str, ...]) -> Rollup | None:
        for rollup in self.rollups:
            if rollup.granularity == granularity and rollup.dimensions == dimensions:
                return rollup
        return None


def view_name(rollup_table: str) -> str:
    return f"{rollup_table}_mv"


def local_name(name: str) -> str:
    """Per-shard table behind a Distributed table of the same logical name (cluster mode)."""
    return f"{name}_local"
