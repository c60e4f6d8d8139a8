"""kopf handlers for Topic: create/update/resume reconcile, drift timer, deletion finalizer.

The timer repairs drift: configs changed or partitions lost behind the operator's back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from weir.stream import TopicAdmin
from weir_operator.handlers.common import OPERATOR, Report, Target, register, runtime
from weir_operator.observability import reconcile_span
from weir_operator.topic.apply import delete_topic, reconcile_topic
from weir_operator.topic.model import DesiredTopic


@asynccontextmanager
async def _admin() -> AsyncIterator[TopicAdmin]:
    """A TopicAdmin for one reconcile, which may take at most KAFKA_TIMEOUT_SECONDS."""
    async with asyncio.timeout(OPERATOR.kafka_timeout_seconds):
        async with TopicAdmin(runtime().settings) as admin:
            yield admin


async def reconcile(target: Target) -> Report:
    desired = DesiredTopic.from_resource(target.name, target.spec)
    async with _admin() as admin:
        with reconcile_span("topic", "apply", desired.name):
            outcome = await reconcile_topic(admin, desired)
    actual, changes = outcome.actual, outcome.plan.changes
    return Report(
        outcome.condition,
        status={
            "topicName": desired.name,
            "partitions": actual.partitions if actual else None,
            "replicationFactor": actual.replication_factor if actual else None,
        },
        events=(("Reconciled", f"{desired.name}: {', '.join(changes)}"),) if changes else (),
        refused=bool(outcome.plan.refusals),
    )


async def delete(target: Target) -> tuple[str, str]:
    desired = DesiredTopic.from_resource(target.name, target.spec)
    async with _admin() as admin:
        with reconcile_span("topic", "delete", desired.name):
            deleted = await delete_topic(admin, desired)
    if deleted:
        return "Deleted", f"deleted Kafka topic {desired.name}"
    return "Retained", f"kept Kafka topic {desired.name} ({desired.deletion_policy})"


register("topics", "KafkaUnavailable", reconcile, delete)
