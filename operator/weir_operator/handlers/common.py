"""What the Topic and Table handlers share: resource coordinates, runtime state, status writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from weir.core.config import Settings
from weir.store.base import Store
from weir_operator.conditions import Condition, merge_conditions
from weir_operator.settings import OperatorSettings

GROUP = "weir.dev"
VERSION = "v1alpha1"
OPERATOR = OperatorSettings()


@dataclass
class Runtime:
    """Created once at startup (handlers/setup.py); handlers read it through `runtime()`."""

    settings: Settings
    store: Store


_runtime: list[Runtime] = []


def install_runtime(value: Runtime) -> None:
    _runtime[:] = [value]


def runtime() -> Runtime:
    if not _runtime:
        raise kopf.TemporaryError("operator is still starting", delay=1)
    return _runtime[0]


def write_status(
    patch: kopf.Patch,
    status: Mapping[str, Any],
    generation: int | None,
    condition: Condition,
    **fields: Any,
) -> bool:
    """Patch status with `fields` and the condition; True when the Ready condition changed."""
    previous = {c.get("type"): c for c in status.get("conditions") or ()}.get(condition.type)
    conditions = merge_conditions(status.get("conditions"), [condition], generation)
    patch.status["conditions"] = conditions
    patch.status["observedGeneration"] = generation
    for key, value in fields.items():
        patch.status[key] = value
    return previous is None or (previous.get("status"), previous.get("reason")) != (
        condition.status,
        condition.reason,
    )
