"""kopf handlers for Table: reconcile (+ wiring ConfigMap), resync timer, deletion finalizer."""

from __future__ import annotations

from typing import Any

import kopf

from weir.observability.tracing import reconcile_span
from weir_operator import wiring
from weir_operator.conditions import not_ready
from weir_operator.errors import reason_for, to_kopf
from weir_operator.handlers import configmaps
from weir_operator.handlers.common import GROUP, OPERATOR, VERSION, runtime, write_status
from weir_operator.table.model import DesiredTable, table_from_resource
from weir_operator.table.reconcile import delete_table, reconcile_table, summary

RESOURCE = (GROUP, VERSION, "tables")


@kopf.index(GROUP, VERSION, "topics")
def topic_names(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, str]:
    """(namespace, Topic name) -> Kafka topic name, for resolving Table.spec.source.topicRef."""
    return {(namespace, name): str(spec.get("topicName") or name)}


def _resolve_topic(
    index: kopf.Index[Any, str], namespace: str | None, desired: DesiredTable
) -> str:
    for kafka_topic in index.get((namespace, desired.topic_ref), ()):
        return kafka_topic
    raise LookupError(f"Topic {desired.topic_ref!r} not found in namespace {namespace!r}")


async def _sync(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    body: kopf.Body,
    patch: kopf.Patch,
    topic_names: kopf.Index[Any, str],
    quiet: bool,
) -> None:
    generation = meta.get("generation")
    try:
        desired = table_from_resource(name, spec)
        kafka_topic = _resolve_topic(topic_names, namespace, desired)
        with reconcile_span("table", "apply", name):
            outcome = await reconcile_table(runtime().store, desired)
        configmap = wiring.configmap_body(name, desired.spec, kafka_topic)
        kopf.adopt(configmap, owner=body)
        wired = await configmaps.apply_configmap(namespace or "default", configmap)
    except LookupError as error:
        write_status(patch, status, generation, not_ready("TopicNotFound", str(error)))
        raise kopf.TemporaryError(str(error), delay=OPERATOR.retry_seconds) from error
    except Exception as error:  # classified: retried with backoff or reported as permanent
        condition = not_ready(reason_for(error, "ClickHouseUnavailable"), str(error))
        if write_status(patch, status, generation, condition):
            kopf.warn(body, reason=condition.reason, message=condition.message)
        raise to_kopf(error, OPERATOR.retry_seconds) from error
    changed = write_status(
        patch,
        status,
        generation,
        outcome.condition,
        table=desired.spec.raw_ref,
        topic=kafka_topic,
        configMap=configmap["metadata"]["name"],
        rows=outcome.rows,
        applied=[summary(s) for s in outcome.applied],
        refused=list(outcome.refused),
    )
    if outcome.applied:
        kopf.info(body, reason="Migrated", message="; ".join(map(summary, outcome.applied)))
    if wired:
        kopf.info(body, reason="Wired", message=f"{configmap['metadata']['name']}: {kafka_topic}")
    if outcome.refused and (changed or not quiet):
        kopf.warn(body, reason=outcome.condition.reason, message=outcome.condition.message)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def table_reconcile(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    body: kopf.Body,
    patch: kopf.Patch,
    **kwargs: Any,
) -> None:
    index = kwargs["topic_names"]  # kopf passes each index by its function's name
    await _sync(name, namespace, spec, status, meta, body, patch, index, quiet=False)


@kopf.timer(*RESOURCE, interval=OPERATOR.resync_seconds, initial_delay=OPERATOR.resync_seconds)
async def table_resync(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    body: kopf.Body,
    patch: kopf.Patch,
    **kwargs: Any,
) -> None:
    """Recreates dropped rollups/views, refreshes the row count, follows Topic renames."""
    index = kwargs["topic_names"]
    await _sync(name, namespace, spec, status, meta, body, patch, index, quiet=True)


@kopf.on.delete(*RESOURCE)
async def table_delete(name: str, spec: kopf.Spec, body: kopf.Body, **_: Any) -> None:
    try:
        desired = table_from_resource(name, spec)
        with reconcile_span("table", "delete", name):
            dropped = await delete_table(runtime().store, desired)
    except Exception as error:
        raise to_kopf(error, OPERATOR.retry_seconds) from error
    what = desired.spec.raw_ref
    if dropped:
        kopf.info(body, reason="Dropped", message=f"dropped {what} and its rollups")
    else:
        kopf.info(body, reason="Retained", message=f"kept {what} ({desired.deletion_policy})")
