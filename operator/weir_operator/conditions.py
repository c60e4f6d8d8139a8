"""Kubernetes-shaped status conditions (type, status, reason, message, lastTransitionTime).

Pure functions over plain dicts so both the reconcile logic and the kopf handlers can use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str


def ready(reason: str = "Reconciled", message: str = "in sync") -> Condition:
    return Condition("Ready", "True", reason, message)


def not_ready(reason: str, message: str) -> Condition:
    return Condition("Ready", "False", reason, message)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    existing: Iterable[Mapping[str, Any]] | None,
    updates: Iterable[Condition],
    generation: int | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """The condition list with `updates` applied.

    lastTransitionTime only moves when a condition's status flips, as kubectl and tools expect.
    """
    timestamp = now or now_rfc3339()
    by_type: dict[str, dict[str, Any]] = {str(c["type"]): dict(c) for c in existing or ()}
    for update in updates:
        previous = by_type.get(update.type)
        changed = previous is None or previous.get("status") != update.status
        entry: dict[str, Any] = {
            "type": update.type,
            "status": update.status,
            "reason": update.reason,
            "message": update.message[:32768],
            "lastTransitionTime": timestamp
            if changed or previous is None
            else previous.get("lastTransitionTime", timestamp),
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        by_type[update.type] = entry
    return sorted(by_type.values(), key=lambda c: str(c["type"]))
