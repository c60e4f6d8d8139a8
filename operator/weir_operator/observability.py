"""The operator's telemetry: one span and one counter per reconcile of a Topic or Table.

The span goes through the process's TracerProvider (weir.observability.tracing sets it up from the
OTEL_* variables); the counter is served with the other Prometheus metrics of the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import Span
from prometheus_client import Counter

from weir.observability.tracing import tracer

OPERATOR_RECONCILES = Counter(
    "weir_operator_reconciles_total",
    "Reconciles of Topic and Table resources by result.",
    ["kind", "action", "result"],
)


@contextmanager
def reconcile_span(kind: str, action: str, name: str) -> Iterator[Span]:
    """The operator's reconcile of one resource against Kafka or ClickHouse, counted by result."""
    attributes = {"weir.kind": kind, "weir.action": action, "weir.resource": name}
    with tracer().start_as_current_span(f"reconcile {kind}", attributes=attributes) as span:
        try:
            yield span
        except Exception:
            OPERATOR_RECONCILES.labels(kind=kind, action=action, result="error").inc()
            raise
        OPERATOR_RECONCILES.labels(kind=kind, action=action, result="ok").inc()
