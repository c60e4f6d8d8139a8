"""Reconcile a Table against ClickHouse through weir.store.migrate/drop (the store owns every DDL).

`reconcile_table` and `delete_table` are the units the kopf handlers (and tracing) wrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from weir.store import Store, drop, migrate
from weir_operator.conditions import Condition, not_ready, ready
from weir_operator.table.model import DesiredTable


@dataclass(frozen=True)
class TableOutcome:
    applied: tuple[str, ...]
    refused: tuple[str, ...]
    rows: int | None
    condition: Condition


def summary(statement: str, limit: int = 160) -> str:
    """First line of a DDL statement, for status and Events (full SQL is in the logs)."""
    first = statement.strip().splitlines()[0] if statement.strip() else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _texts(items: Sequence[object]) -> tuple[str, ...]:
    return tuple(str(item) for item in items)


async def count_rows(store: Store, desired: DesiredTable) -> int | None:
    """Raw-table row count for `kubectl get tables`; None when the engine cannot tell."""
    rows = await store.query_rows(f"SELECT count() FROM {desired.spec.raw_ref}")
    return int(rows[0][0]) if rows else None


async def reconcile_table(store: Store, desired: DesiredTable) -> TableOutcome:
    """Apply additive changes; destructive ones come back refused. Idempotent."""
    result = await migrate(store, desired.spec)
    applied, refused = _texts(result.applied), _texts(result.refused)
    rows = await count_rows(store, desired)
    if refused:
        condition = not_ready(
            "DestructiveChangeRefused",
            "not applied (would lose data; migrate by hand or create a new Table): "
            + "; ".join(refused),
        )
    else:
        done = f"{len(applied)} statements applied" if applied else "no changes"
        condition = ready("Reconciled", f"table {desired.spec.raw_ref}: {done}")
    return TableOutcome(applied, refused, rows, condition)


async def delete_table(store: Store, desired: DesiredTable) -> bool:
    """Honour deletionPolicy; True when the tables were dropped."""
    if desired.deletion_policy != "Delete":
        return False
    await drop(store, desired.spec)
    return True
