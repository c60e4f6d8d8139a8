"""The operator's reconcile calls are traced and counted by result."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from weir_operator.observability import reconcile_span


def count(result: str) -> float:
    labels = {"kind": "topic", "action": "apply", "result": result}
    return REGISTRY.get_sample_value("weir_operator_reconciles_total", labels) or 0.0


def test_reconcile_span_and_counter(spans: InMemorySpanExporter) -> None:
    ok_before, error_before = count("ok"), count("error")
    with reconcile_span("topic", "apply", "weir-events"):
        pass
    with pytest.raises(RuntimeError), reconcile_span("topic", "apply", "weir-events"):
        raise RuntimeError("broker down")
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == ["reconcile topic", "reconcile topic"]
    assert finished[0].attributes is not None
    assert finished[0].attributes["weir.resource"] == "weir-events"
    assert not finished[1].status.is_ok
    assert (count("ok") - ok_before, count("error") - error_before) == (1, 1)
