"""A Table CR's spec as weir.store.TableSpec (the one definition of a Weir table). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weir.store import ExtraColumn, Rollup, TableSpec
from weir_operator.deletion import DeletionPolicy, deletion_policy


@dataclass(frozen=True)
class DesiredTable:
    spec: TableSpec
    topic_ref: str
    deletion_policy: DeletionPolicy


def default_table_name(resource_name: str) -> str:
    """metadata.name may hold dashes; ClickHouse identifiers here may not."""
    return resource_name.replace("-", "_").replace(".", "_")


def table_from_resource(name: str, spec: Mapping[str, Any]) -> DesiredTable:
    """Raises ValueError (from TableSpec's own checks too) when the spec cannot be a table."""
    policy = deletion_policy(spec)
    topic_ref = (spec.get("source") or {}).get("topicRef")
    if not topic_ref:
        raise ValueError("source.topicRef is required")
    rollups = spec.get("rollups")
    table = TableSpec(
        database=str(spec.get("database") or "weir"),
        table=str(spec.get("tableName") or default_table_name(name)),
        ttl_days=int(spec.get("ttlDays", 395)),
        extra_columns=tuple(
            ExtraColumn(name=str(c["name"]), type=str(c["type"]), path=str(c["path"]))
            for c in spec.get("extraColumns") or ()
        ),
        cluster=spec.get("cluster") or None,
        **(
            {}
            if rollups is None
            else {
                "rollups": tuple(
                    Rollup(r["granularity"], tuple(r.get("dimensions", ("channel",))))
                    for r in rollups
                )
            }
        ),
    )
    return DesiredTable(spec=table, topic_ref=str(topic_ref), deletion_policy=policy)
