"""`spec.deletionPolicy`, shared by Topic and Table: what deleting the resource does outside.

`Retain` (the CRDs' default) keeps the Kafka topic or the ClickHouse tables; `Delete` removes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeGuard

DeletionPolicy = Literal["Retain", "Delete"]


def _is_policy(value: object) -> TypeGuard[DeletionPolicy]:
    return value in ("Retain", "Delete")


def deletion_policy(spec: Mapping[str, Any]) -> DeletionPolicy:
    """The spec's policy; ValueError for anything else (the CRD's enum rejects it first)."""
    policy = spec.get("deletionPolicy", "Retain")
    if not _is_policy(policy):
        raise ValueError(f"deletionPolicy {policy!r} must be Retain or Delete")
    return policy
