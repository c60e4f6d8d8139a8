"""Topic reconcile logic (plan + apply) against the real local Kafka broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from weir.core.config import Settings
from weir.stream import TopicAdmin
from weir_operator.topic.apply import delete_topic, reconcile_topic
from weir_operator.topic.model import DesiredTopic
from weir_operator.topic.plan import plan_topic


@pytest.fixture
async def admin(kafka_settings: Settings) -> AsyncIterator[TopicAdmin]:
    async with TopicAdmin(kafka_settings) as client:
        yield client


def topic(partitions: int = 2, replication: int = 1, **config: str) -> DesiredTopic:
    spec = {"partitions": partitions, "replicationFactor": replication, "config": config}
    return DesiredTopic.from_resource(f"op-{uuid.uuid4().hex[:10]}", spec)


def with_spec(base: DesiredTopic, **changes: object) -> DesiredTopic:
    return DesiredTopic(**{**base.__dict__, **changes})  # type: ignore[arg-type]


async def test_create_then_idempotent(admin: TopicAdmin) -> None:
    desired = topic(partitions=3, **{"retention.ms": "3600000"})
    first = await reconcile_topic(admin, desired)
    assert first.plan.create and first.condition.status == "True"
    assert first.actual is not None and first.actual.partitions == 3
    assert first.actual.configs["retention.ms"] == "3600000"
    second = await reconcile_topic(admin, desired)
    assert second.plan.changes == [] and second.condition.reason == "Reconciled"


async def test_partitions_up_and_config_change(admin: TopicAdmin) -> None:
    desired = topic(partitions=1, **{"retention.ms": "3600000"})
    await reconcile_topic(admin, desired)
    grown = with_spec(
        desired, partitions=4, config={"retention.ms": "7200000", "cleanup.policy": "compact"}
    )
    outcome = await reconcile_topic(admin, grown)
    assert outcome.plan.changes == ["partitions->4", "config"]
    actual = await admin.describe_topic(desired.name)
    assert actual is not None and actual.partitions == 4
    assert actual.configs["retention.ms"] == "7200000"
    assert actual.configs["cleanup.policy"] == "compact"
    assert outcome.condition.status == "True"


async def test_partition_decrease_and_replication_change_refused(admin: TopicAdmin) -> None:
    desired = topic(partitions=3)
    await reconcile_topic(admin, desired)
    outcome = await reconcile_topic(admin, with_spec(desired, partitions=2, replication_factor=3))
    assert outcome.condition.status == "False"
    assert outcome.condition.reason == "PartitionDecreaseRefused"
    assert "replication factor 1" in outcome.condition.message
    assert [r.reason for r in outcome.plan.refusals] == [
        "PartitionDecreaseRefused",
        "ReplicationChangeRefused",
    ]
    actual = await admin.describe_topic(desired.name)
    assert actual is not None and (actual.partitions, actual.replication_factor) == (3, 1)


async def test_refusal_still_applies_allowed_config_change(admin: TopicAdmin) -> None:
    desired = topic(partitions=2, **{"retention.ms": "3600000"})
    await reconcile_topic(admin, desired)
    changed = with_spec(desired, partitions=1, config={"retention.ms": "60000"})
    outcome = await reconcile_topic(admin, changed)
    assert outcome.condition.reason == "PartitionDecreaseRefused"
    actual = await admin.describe_topic(desired.name)
    assert actual is not None and actual.configs["retention.ms"] == "60000"


async def test_drift_behind_the_operators_back_is_repaired(admin: TopicAdmin) -> None:
    desired = topic(partitions=2, **{"retention.ms": "3600000", "max.message.bytes": "2097152"})
    await reconcile_topic(admin, desired)
    await admin.alter_configs(desired.name, {"retention.ms": "1000", "segment.ms": "600000"})
    drifted = await admin.describe_topic(desired.name)
    assert drifted is not None
    assert plan_topic(desired, drifted).set_config == {"retention.ms": "3600000"}
    # The timer runs exactly this reconcile.
    repaired = await reconcile_topic(admin, desired)
    assert repaired.plan.changes == ["config"]
    actual = await admin.describe_topic(desired.name)
    assert actual is not None and actual.configs["retention.ms"] == "3600000"
    assert actual.configs["segment.ms"] == "600000", "keys outside spec.config are left alone"


async def test_delete_honours_policy(admin: TopicAdmin) -> None:
    retained = topic()
    await reconcile_topic(admin, retained)
    assert await delete_topic(admin, retained) is False
    assert await admin.describe_topic(retained.name) is not None

    deleted = with_spec(topic(), deletion_policy="Delete")
    await reconcile_topic(admin, deleted)
    assert await delete_topic(admin, deleted) is True
    assert await admin.describe_topic(deleted.name) is None
    assert await delete_topic(admin, deleted) is False, "second delete is a no-op"


def test_spec_defaults_and_validation() -> None:
    named = DesiredTopic.from_resource("weir-events", {"partitions": 1, "replicationFactor": 1})
    assert (named.name, named.deletion_policy, dict(named.config)) == ("weir-events", "Retain", {})
    explicit = DesiredTopic.from_resource(
        "x", {"topicName": "weir.events", "partitions": 6, "replicationFactor": 3}
    )
    assert explicit.name == "weir.events"
    with pytest.raises(ValueError, match="deletionPolicy"):
        DesiredTopic.from_resource(
            "x", {"partitions": 1, "replicationFactor": 1, "deletionPolicy": "Drop"}
        )
    with pytest.raises(ValueError, match=">= 1"):
        DesiredTopic.from_resource("x", {"partitions": 0, "replicationFactor": 1})
