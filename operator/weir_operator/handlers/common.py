"""What the Topic and Table handlers share: runtime state, status writes, and the kopf handlers.

`register(plural, ...)` installs, for one kind, the reconcile handler (create, update of spec,
resume), the resync timer and the deletion finalizer, with one failure branch for all of them.
A kind supplies only how to reconcile one resource (-> Report) and how to delete it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from weir.core.config import Settings
from weir.store import Store
from weir_operator.conditions import Condition, merge_conditions, not_ready
from weir_operator.errors import Waiting, reason_for, to_kopf
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


@dataclass(frozen=True)
class Target:
    """The resource one handler call is about; `kwargs` is everything else kopf passed (its
    indexes by their function's name, e.g. `kwargs["topic_names"]`)."""

    name: str
    namespace: str | None
    spec: kopf.Spec
    kwargs: Mapping[str, Any]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> Target:
        return cls(kwargs["name"], kwargs.get("namespace"), kwargs["spec"], kwargs)


@dataclass(frozen=True)
class Report:
    """What one reconcile did, for status and Events."""

    condition: Condition
    status: Mapping[str, Any]  # status fields beside conditions and observedGeneration
    events: tuple[tuple[str, str], ...] = ()  # Normal Events (reason, message)
    refused: bool = False  # a Warning with the condition: on a transition, or always if not quiet


Reconcile = Callable[[Target], Awaitable[Report]]
Delete = Callable[[Target], Awaitable[tuple[str, str]]]  # the Normal Event (reason, message)


async def _sync(
    reconcile: Reconcile, transient_reason: str, kwargs: Mapping[str, Any], quiet: bool
) -> None:
    patch: kopf.Patch = kwargs["patch"]
    status: kopf.Status = kwargs["status"]
    body: kopf.Body = kwargs["body"]
    generation = kwargs["meta"].get("generation")
    try:
        report = await reconcile(Target.of(kwargs))
    except Waiting as error:  # a dependency is missing: not an error of this resource
        write_status(patch, status, generation, not_ready(error.reason, str(error)))
        raise kopf.TemporaryError(str(error), delay=OPERATOR.retry_seconds) from error
    except Exception as error:  # classified: retried with backoff or reported as permanent
        condition = not_ready(reason_for(error, transient_reason), str(error))
        if write_status(patch, status, generation, condition):
            kopf.warn(body, reason=condition.reason, message=condition.message)
        raise to_kopf(error, OPERATOR.retry_seconds) from error
    changed = write_status(patch, status, generation, report.condition, **report.status)
    for reason, message in report.events:
        kopf.info(body, reason=reason, message=message)
    if report.refused and (changed or not quiet):
        kopf.warn(body, reason=report.condition.reason, message=report.condition.message)


def register(plural: str, transient_reason: str, reconcile: Reconcile, delete: Delete) -> None:
    """kopf handlers for `plural` (ids `<kind>_reconcile`, `<kind>_resync`, `<kind>_delete`).

    `transient_reason` is the Ready reason while the backend is unreachable. The timer runs the
    same reconcile every RESYNC_SECONDS, quietly: a refusal is warned about only on transition.
    """
    resource = (GROUP, VERSION, plural)
    kind = plural.removesuffix("s")

    @kopf.on.resume(*resource, id=f"{kind}_reconcile")
    @kopf.on.create(*resource, id=f"{kind}_reconcile")
    @kopf.on.update(*resource, id=f"{kind}_reconcile", field="spec")
    async def on_change(**kwargs: Any) -> None:
        await _sync(reconcile, transient_reason, kwargs, quiet=False)

    @kopf.timer(
        *resource,
        id=f"{kind}_resync",
        interval=OPERATOR.resync_seconds,
        initial_delay=OPERATOR.resync_seconds,
    )
    async def on_timer(**kwargs: Any) -> None:
        await _sync(reconcile, transient_reason, kwargs, quiet=True)

    @kopf.on.delete(*resource, id=f"{kind}_delete")
    async def on_delete(**kwargs: Any) -> None:
        try:
            reason, message = await delete(Target.of(kwargs))
        except Exception as error:
            raise to_kopf(error, OPERATOR.retry_seconds) from error
        kopf.info(kwargs["body"], reason=reason, message=message)
