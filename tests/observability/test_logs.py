"""JSON log lines carry the ids of the span they were written in, and nothing when there is none."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from weir.core.config import Settings
from weir.observability.logs import configure_logging


def test_log_lines_carry_the_current_span_ids(spans: InMemorySpanExporter) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(Settings(log_format="json", log_level="INFO"))
        out = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(out)
        log = logging.getLogger("weir.test")
        with trace.get_tracer("test").start_as_current_span("work") as span:
            log.info("inside")
        log.info("outside")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside and "span_id" not in outside
