"""kopf handlers for Topic: create/update/resume reconcile, drift timer, deletion finalizer."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from weir.observability.tracing import reconcile_span
from weir.stream.admin import TopicAdmin
from weir_operator.conditions import not_ready
from weir_operator.errors import reason_for, to_kopf
from weir_operator.handlers.common import GROUP, OPERATOR, VERSION, runtime, write_status
from weir_operator.topic.apply import TopicOutcome, delete_topic, reconcile_topic
from weir_operator.topic.model import DesiredTopic

RESOURCE = (GROUP, VERSION, "topics")


async def _reconcile(name: str, spec: kopf.Spec) -> tuple[DesiredTopic, TopicOutcome]:
    desired = DesiredTopic.from_resource(name, spec)
    async with asyncio.timeout(OPERATOR.kafka_timeout_seconds):
        async with TopicAdmin(runtime().settings) as admin:
            with reconcile_span("topic", "apply", desired.name):
                return desired, await reconcile_topic(admin, desired)


async def _sync(
    name: str,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    body: kopf.Body,
    patch: kopf.Patch,
    quiet: bool,
) -> None:
    generation = meta.get("generation")
    try:
        desired, outcome = await _reconcile(name, spec)
    except Exception as error:  # classified below: retried with backoff or reported as permanent
        condition = not_ready(reason_for(error, "KafkaUnavailable"), f"{error}")
        if write_status(patch, status, generation, condition):
            kopf.warn(body, reason=condition.reason, message=condition.message)
        raise to_kopf(error, OPERATOR.retry_seconds) from error
    actual = outcome.actual
    changed = write_status(
        patch,
        status,
        generation,
        outcome.condition,
        topicName=desired.name,
        partitions=actual.partitions if actual else None,
        replicationFactor=actual.replication_factor if actual else None,
    )
    if outcome.plan.changes:
        kopf.info(
            body, reason="Reconciled", message=f"{desired.name}: {', '.join(outcome.plan.changes)}"
        )
    if outcome.plan.refusals and (changed or not quiet):
        kopf.warn(body, reason=outcome.condition.reason, message=outcome.condition.message)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
async def topic_reconcile(
    name: str,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    body: kopf.Body,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    await _sync(name, spec, status, meta, body, patch, quiet=False)


@kopf.timer(*RESOURCE, interval=OPERATOR.resync_seconds, initial_delay=OPERATOR.resync_seconds)
async def topic_resync(
    name: str,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    body: kopf.Body,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Repairs drift: configs changed or partitions lost behind the operator's back."""
    await _sync(name, spec, status, meta, body, patch, quiet=True)


@kopf.on.delete(*RESOURCE)
async def topic_delete(name: str, spec: kopf.Spec, body: kopf.Body, **_: Any) -> None:
    desired = DesiredTopic.from_resource(name, spec)
    try:
        async with asyncio.timeout(OPERATOR.kafka_timeout_seconds):
            async with TopicAdmin(runtime().settings) as admin:
                with reconcile_span("topic", "delete", desired.name):
                    deleted = await delete_topic(admin, desired)
    except Exception as error:
        raise to_kopf(error, OPERATOR.retry_seconds) from error
    if deleted:
        kopf.info(body, reason="Deleted", message=f"deleted Kafka topic {desired.name}")
    else:
        kopf.info(
            body,
            reason="Retained",
            message=f"kept Kafka topic {desired.name} ({desired.deletion_policy})",
        )
