"""Desired vs actual topic: which changes to make and which to refuse. Pure."""

from __future__ import annotations

from weir.stream import TopicDescription
from weir_operator.topic.model import DesiredTopic, Refusal, TopicPlan


def plan_topic(desired: DesiredTopic, actual: TopicDescription | None) -> TopicPlan:
    if actual is None:
        return TopicPlan(create=True)
    refusals: list[Refusal] = []
    raise_to: int | None = None
    if desired.partitions > actual.partitions:
        raise_to = desired.partitions
    elif desired.partitions < actual.partitions:
        refusals.append(
            Refusal(
                "PartitionDecreaseRefused",
                f"topic {actual.name} has {actual.partitions} partitions; Kafka cannot lower "
                f"them to {desired.partitions} (recreate the topic to shrink it)",
            )
        )
    if desired.replication_factor != actual.replication_factor:
        refusals.append(
            Refusal(
                "ReplicationChangeRefused",
                f"topic {actual.name} has replication factor {actual.replication_factor}; "
                f"changing it to {desired.replication_factor} needs a partition reassignment, "
                "which the operator does not do",
            )
        )
    # spec.config lists the keys the operator manages; overrides set on other keys are left alone.
    drifted = {k: v for k, v in desired.config.items() if actual.configs.get(k) != v}
    set_config = drifted or None
    return TopicPlan(raise_partitions_to=raise_to, set_config=set_config, refusals=tuple(refusals))
