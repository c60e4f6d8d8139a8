"""One in-memory span exporter for the whole session: the global TracerProvider can be set once."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="session")
def _tracer_provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another TracerProvider was installed first"
    return provider


@pytest.fixture
def spans(_tracer_provider: TracerProvider) -> InMemorySpanExporter:
    """The finished spans of this test (cleared before it starts)."""
    _EXPORTER.clear()
    return _EXPORTER
