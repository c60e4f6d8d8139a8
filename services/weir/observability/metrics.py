"""Prometheus metrics of every deployable, served on `WEIR_METRICS_PORT` (not the API's /metrics,
which is the product's endpoint)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from weir.core.event import Clock, StoredEvent, clock_outcome

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
E2E_SAMPLES = 100
E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

# --- consumer --------------------------------------------------------------------------------
BATCH_SIZE = Histogram(
    "weir_consumer_batch_records",
    "Records per flushed batch.",
    buckets=(1, 10, 100, 1000, 5000, 10000, 20000, 50000),
)
FLUSH_SECONDS = Histogram(
    "weir_consumer_flush_seconds", "Dedupe + insert + commit time.", buckets=LATENCY_BUCKETS
)
ROWS_INSERTED = Counter("weir_consumer_rows_inserted_total", "Events inserted into ClickHouse.")
DUPLICATES = Counter("weir_consumer_duplicates_total", "Events dropped as already stored.")
DEAD_LETTERS = Counter(
    "weir_consumer_dead_letters_total", "Messages sent to the dead-letter topic."
)
INSERT_ERRORS = Counter("weir_consumer_insert_errors_total", "Failed insert attempts (retried).")
LAG = Gauge("weir_consumer_lag", "Messages behind the end of the partition.", ["partition"])
END_TO_END = Histogram(
    "weir_consumer_end_to_end_seconds",
    "From the API's receive time to the row being stored (up to 100 events per batch).",
    buckets=E2E_BUCKETS,
)


def observe_flush(
    records: int,
    inserted: int,
    duplicates: int,
    dead: int,
    seconds: float,
    received_at_ms: Sequence[int],
) -> None:
    BATCH_SIZE.observe(records)
    FLUSH_SECONDS.observe(seconds)
    ROWS_INSERTED.inc(inserted)
    DUPLICATES.inc(duplicates)
    DEAD_LETTERS.inc(dead)
    now_ms = time.time() * 1000
    # At most E2E_SAMPLES evenly spaced events per batch: observing all 20,000 of a batch cost
    # more than its insert's bookkeeping, and the histogram's shape needs no more.
    step = max(1, len(received_at_ms) // E2E_SAMPLES)
    for received in received_at_ms[::step]:
        END_TO_END.observe(max(0.0, (now_ms - received) / 1000))


# --- api -------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "weir_http_requests_total", "HTTP requests by route template.", ["route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "weir_http_request_seconds", "HTTP request latency.", ["route"], buckets=LATENCY_BUCKETS
)
EVENTS_ACCEPTED = Counter("weir_events_accepted_total", "Events acknowledged by the stream.")
EVENTS_REJECTED = Counter(
    "weir_events_rejected_total",
    "Events refused: the first invalid field, or size, content_type, unavailable.",
    ["reason"],
)
SHED = Counter(
    "weir_http_shed_total", "Requests refused with 503 because a worker had too many in flight."
)
# livesum: with several API worker processes, what the live ones admit at once, added up.
ADMISSION_LIMIT = Gauge(
    "weir_http_admission_limit",
    "Requests an API worker admits at once now (its adaptive in-flight limit).",
    multiprocess_mode="livesum",
)
HTTP_STALLED = Counter(
    "weir_http_stalled_total",
    "Connections closed because a request's headers or body did not arrive in time.",
    ["phase"],
)
# livesum: with several API worker processes, the pending messages of the live ones added up.
PRODUCER_PENDING = Gauge(
    "weir_producer_pending",
    "Messages handed to the producer and not yet acknowledged.",
    multiprocess_mode="livesum",
)
PRODUCE_SECONDS = Histogram(
    "weir_producer_send_seconds", "Time from send to the broker's ack.", buckets=LATENCY_BUCKETS
)


CLOCK_ADJUSTED = Counter(
    "weir_events_clock_adjusted_total",
    "Accepted events whose timestamp the device-clock rule (sent_at) changed: corrected, clamped.",
    ["outcome"],
)


def count_clocks(events: Sequence[StoredEvent], now: int) -> None:
    """Count the events (accepted at `now`) whose timestamp was corrected or clamped."""
    corrected = clamped = 0
    for event in events:
        if event.sent_at is None:  # the common case: nothing to look at
            continue
        outcome = clock_outcome(event, now)
        corrected += outcome is Clock.CORRECTED
        clamped += outcome is Clock.CLAMPED
    if corrected:
        CLOCK_ADJUSTED.labels(outcome="corrected").inc(corrected)
    if clamped:
        CLOCK_ADJUSTED.labels(outcome="clamped").inc(clamped)


def reject(reason: str, count: int = 1) -> None:
    EVENTS_REJECTED.labels(reason=reason).inc(count)


def rejection_reason(message: str) -> str:
    """The field an InvalidEvent message names ("channel: must be ..." -> "channel")."""
    field, sep, _ = message.partition(":")
    if not sep or not field or " " in field:
        return "invalid"
    return "size" if "larger than" in message else field


def report_pending(producer: object) -> None:
    """Set the pending gauge from the producer (when its backend tracks a count).

    Set on every send rather than read at scrape time: with several worker processes the
    scrape happens in another process (prometheus_client's multiprocess mode).
    """
    pending = getattr(producer, "pending", None)
    if isinstance(pending, int):
        PRODUCER_PENDING.set(pending)


# Per API key: its id only, never the key. Ids are provisioned, so the label set stays small.
KEY_USAGE = Counter(
    "weir_key_usage_total",
    "Quota spent per key: events (write keys), requests (read keys).",
    ["key_id"],
)
KEY_THROTTLED = Counter(
    "weir_key_throttled_total",
    "Requests refused (429) because the key was over its quota.",
    ["key_id"],
)
