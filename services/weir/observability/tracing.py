"""OpenTelemetry tracing: setup from the OTEL_* variables, W3C context on Kafka messages.

The API injects `traceparent`/`tracestate` into every message from its producer span; the consumer
extracts them and links its flush and insert spans to every message's producer context.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import Link, Span, SpanKind

TRACER_NAME = "weir"
DEFAULT_SAMPLE_RATIO = 0.01
MAX_LINKS = 32
# W3C trace-flags with the sampled bit set, as the last two hex digits of a traceparent.
_SAMPLED_FLAGS = frozenset(f"{flags:02x}".encode() for flags in range(256) if flags & 1)
TRACE_HEADERS = ("traceparent", "tracestate")
Headers = Sequence[tuple[str, bytes]]


def default_sampler() -> Sampler | None:
    """Weir's default when OTEL_TRACES_SAMPLER is unset: 1 % of new traces, and every trace whose
    caller sampled it (parent-based). Recording every request costs more CPU per request than
    the rest of the ingestion path; unsampled requests still carry a trace id into logs, Kafka
    headers and the stored row."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None  # the SDK reads OTEL_TRACES_SAMPLER(_ARG) itself
    return ParentBased(TraceIdRatioBased(DEFAULT_SAMPLE_RATIO))


def configure_tracing(service_name: str) -> TracerProvider:
    """Install a global TracerProvider with `default_sampler()`; spans are exported over OTLP/HTTP
    only when an endpoint is set, so without one tracing costs little and still fills trace ids
    for logs and Kafka headers.
    """
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: name}), sampler=default_sampler()
    )
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads the endpoint, headers and timeout from the OTEL_* variables itself.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


@functools.cache
def tracer() -> trace.Tracer:
    """Weir's tracer, made once: the SDK builds a new Tracer on every `get_tracer` call, which
    cost as much as starting the span itself. Obtained before `configure_tracing`, it is a proxy
    that follows the provider installed later."""
    return trace.get_tracer(TRACER_NAME)


def trace_headers() -> list[tuple[str, bytes]]:
    """W3C headers for the current span's context (empty when there is no sampled span)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(key, carrier[key].encode()) for key in TRACE_HEADERS if key in carrier]


def links_from(traceparents: Iterable[bytes], limit: int = MAX_LINKS) -> list[Link]:
    """One link per distinct *sampled* producer context among these `traceparent` values, at
    most `limit` (the SDK keeps 128 per span anyway). Unsampled ones are skipped without parsing
    (the flags byte ends the header): at 1 % sampling, parsing every traceparent of a 20,000-record
    batch cost more than the rest of its decoding."""
    links: dict[tuple[int, int], Link] = {}
    for traceparent in traceparents:
        if traceparent[-2:] not in _SAMPLED_FLAGS:
            continue
        carrier = {"traceparent": traceparent.decode("ascii", "replace")}
        context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
        if context.is_valid:
            links.setdefault((context.trace_id, context.span_id), Link(context))
            if len(links) >= limit:
                break
    return list(links.values())


def recording() -> bool:
    """Whether the current span records (is sampled)."""
    return trace.get_current_span().is_recording()


@contextmanager
def producer_span(topic: str, count: int) -> Iterator[Span]:
    """The PRODUCER span around one send of `count` messages to `topic`."""
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.type": "send",
        "messaging.batch.message_count": count,
    }
    with tracer().start_as_current_span(
        f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span


@contextmanager
def flush_span(links: Sequence[Link], records: int) -> Iterator[Span]:
    """The consumer's `weir.consumer.flush` span, linked to every message's producer context."""
    with tracer().start_as_current_span(
        "weir.consumer.flush",
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={"messaging.system": "kafka", "messaging.batch.message_count": records},
    ) as span:
        yield span


@contextmanager
def insert_span(table: str, rows: int, links: Sequence[Link] = ()) -> Iterator[Span]:
    with tracer().start_as_current_span(
        "clickhouse insert",
        kind=SpanKind.CLIENT,
        links=links,
        attributes={"db.system": "clickhouse", "db.collection.name": table, "db.rows": rows},
    ) as span:
        yield span


@contextmanager
def server_span(
    method: str, route: str, path: str, parent_headers: dict[str, str] | None
) -> Iterator[Span]:
    """The SERVER span of one request FastAPI does not see (api/front.py), named and attributed as
    FastAPI's own (`POST /events`). `parent_headers`: the request's W3C headers, if it sent any;
    without them no extraction is attempted (most requests, and the costlier half of the work)."""
    context = propagate.extract(parent_headers) if parent_headers else None
    attributes = {"http.request.method": method, "url.path": path, "http.route": route}
    with tracer().start_as_current_span(
        f"{method} {route}", context=context, kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span
