"""kopf handlers for Table: reconcile, resync timer, deletion finalizer.

The timer recreates dropped rollups/views, refreshes the row count and follows Topic renames.
The Table says which Topic feeds it (`spec.source.topicRef`); the operator resolves it for
`status.topic` and waits (Ready=False, TopicNotFound) while it is missing. The api and consumer
are not configured from here: the chart's values set their WEIR_* env and render this Table.
"""

from __future__ import annotations

from typing import Any

import kopf

from weir_operator.errors import Waiting
from weir_operator.handlers.common import GROUP, VERSION, Report, Target, register, runtime
from weir_operator.observability import reconcile_span
from weir_operator.table.model import DesiredTable, table_from_resource
from weir_operator.table.reconcile import delete_table, reconcile_table, summary


@kopf.index(GROUP, VERSION, "topics")
def topic_names(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, str]:
    """(namespace, Topic name) -> Kafka topic name, for resolving Table.spec.source.topicRef."""
    return {(namespace, name): str(spec.get("topicName") or name)}


def _resolve_topic(
    index: kopf.Index[Any, str], namespace: str | None, desired: DesiredTable
) -> str:
    for kafka_topic in index.get((namespace, desired.topic_ref), ()):
        return kafka_topic
    raise Waiting(
        "TopicNotFound", f"Topic {desired.topic_ref!r} not found in namespace {namespace!r}"
    )


async def reconcile(target: Target) -> Report:
    desired = table_from_resource(target.name, target.spec)
    # kopf passes each index by its function's name.
    kafka_topic = _resolve_topic(target.kwargs["topic_names"], target.namespace, desired)
    with reconcile_span("table", "apply", target.name):
        outcome = await reconcile_table(runtime().store, desired)
    applied = [summary(statement) for statement in outcome.applied]
    return Report(
        outcome.condition,
        status={
            "table": desired.spec.raw_ref,
            "topic": kafka_topic,
            "rows": outcome.rows,
            "applied": applied,
            "refused": list(outcome.refused),
        },
        events=(("Migrated", "; ".join(applied)),) if applied else (),
        refused=bool(outcome.refused),
    )


async def delete(target: Target) -> tuple[str, str]:
    desired = table_from_resource(target.name, target.spec)
    with reconcile_span("table", "delete", target.name):
        dropped = await delete_table(runtime().store, desired)
    what = desired.spec.raw_ref
    if dropped:
        return "Dropped", f"dropped {what} and its rollups"
    return "Retained", f"kept {what} ({desired.deletion_policy})"


register("tables", "ClickHouseUnavailable", reconcile, delete)
