"""What a Topic CR asks for, and what Kafka has: plain values, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from weir_operator.deletion import DeletionPolicy, deletion_policy


@dataclass(frozen=True)
class DesiredTopic:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)
    deletion_policy: DeletionPolicy = "Retain"

    @classmethod
    def from_resource(cls, name: str, spec: Mapping[str, Any]) -> DesiredTopic:
        """`name` is metadata.name; the API server has applied the CRD's defaults already."""
        policy = deletion_policy(spec)
        partitions, replication = int(spec["partitions"]), int(spec["replicationFactor"])
        if partitions < 1 or replication < 1:
            raise ValueError("partitions and replicationFactor must be >= 1")
        return cls(
            name=str(spec.get("topicName") or name),
            partitions=partitions,
            replication_factor=replication,
            config={str(k): str(v) for k, v in (spec.get("config") or {}).items()},
            deletion_policy=policy,
        )


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


@dataclass(frozen=True)
class TopicPlan:
    """Steps that bring Kafka to the desired topic; refusals are changes Kafka cannot make."""

    create: bool = False
    raise_partitions_to: int | None = None
    set_config: Mapping[str, str] | None = None
    refusals: tuple[Refusal, ...] = ()

    @property
    def changes(self) -> list[str]:
        steps = ["create"] if self.create else []
        if self.raise_partitions_to is not None:
            steps.append(f"partitions->{self.raise_partitions_to}")
        if self.set_config is not None:
            steps.append("config")
        return steps
