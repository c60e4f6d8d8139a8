"""Carry out a TopicPlan through a TopicAdmin, and the reconcile entry points built on it.

`reconcile_topic` and `delete_topic` are the units the kopf handlers (and tracing) wrap.
"""

from __future__ import annotations

from dataclasses import dataclass

from weir.stream import TopicAdmin, TopicDescription
from weir_operator.conditions import Condition, not_ready, ready
from weir_operator.topic.model import DesiredTopic, TopicPlan
from weir_operator.topic.plan import plan_topic


@dataclass(frozen=True)
class TopicOutcome:
    plan: TopicPlan
    actual: TopicDescription | None  # after the changes
    condition: Condition


async def apply_topic_plan(admin: TopicAdmin, desired: DesiredTopic, plan: TopicPlan) -> None:
    if plan.create:
        await admin.ensure_topic(
            desired.name, desired.partitions, desired.replication_factor, dict(desired.config)
        )
        return
    if plan.raise_partitions_to is not None:
        await admin.create_partitions(desired.name, plan.raise_partitions_to)
    if plan.set_config is not None:
        await admin.alter_configs(desired.name, dict(plan.set_config))


async def reconcile_topic(admin: TopicAdmin, desired: DesiredTopic) -> TopicOutcome:
    """Describe, plan, apply what Kafka allows, describe again. Idempotent."""
    before = await admin.describe_topic(desired.name)
    plan = plan_topic(desired, before)
    await apply_topic_plan(admin, desired, plan)
    actual = await admin.describe_topic(desired.name) if plan.changes else before
    if plan.refusals:
        first = plan.refusals[0]
        message = "; ".join(r.message for r in plan.refusals)
        return TopicOutcome(plan, actual, not_ready(first.reason, message))
    done = ", ".join(plan.changes) or "no changes"
    return TopicOutcome(plan, actual, ready("Reconciled", f"topic {desired.name}: {done}"))


async def delete_topic(admin: TopicAdmin, desired: DesiredTopic) -> bool:
    """Honour deletionPolicy; True when the Kafka topic was deleted."""
    if desired.deletion_policy != "Delete":
        return False
    if await admin.describe_topic(desired.name) is None:
        return False
    await admin.delete_topic(desired.name)
    return True
