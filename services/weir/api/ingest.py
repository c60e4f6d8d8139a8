"""Accepting events: validate, give each its identity, make it durable on the stream."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

from weir.api.errors import ApiError
from weir.core.config import Settings
from weir.core.event import (
    SCHEMA_VERSION,
    InvalidEvent,
    StoredEvent,
    TimeWindow,
    validate_event,
)
from weir.observability import metrics, tracing
from weir.stream import Message, Producer, StreamError, StreamFull

Headers = tuple[tuple[str, bytes], ...]
_CONTENT_HEADERS: Headers = (("content-type", b"application/json"), ("weir-schema", SCHEMA_VERSION))


# Told each send's start and end (`time.perf_counter`), acked or timed out (not one the producer
# refused at once for too many pending): admission control's samples.
SendObserver = Callable[[float, float], None]


def ignore_send(started: float, finished: float) -> None:
    return None


@dataclass(frozen=True)
class Ingestor:
    """Turns validated payloads into stream messages and waits for the broker's acknowledgement."""

    producer: Producer
    settings: Settings
    clock: Callable[[], float] = time.time  # the server's clock, for the timestamp window
    on_sent: SendObserver = ignore_send

    def window(self) -> TimeWindow:
        return TimeWindow(
            now=int(self.clock()),
            max_skew_seconds=self.settings.timestamp_max_skew_seconds,
            max_age_seconds=self.settings.timestamp_max_age_seconds,
            clamp_future_seconds=self.settings.clock_clamp_future_seconds,
        )

    @staticmethod
    def prepare(payload: object, window: TimeWindow, received_at_ms: int) -> StoredEvent:
        """Validate one payload (raises InvalidEvent) and fix its identity."""
        try:
            event = validate_event(payload, window)
        except InvalidEvent as error:
            metrics.reject(metrics.rejection_reason(str(error)))
            raise
        return StoredEvent.accept(event, received_at_ms, window)

    async def publish(self, events: Sequence[StoredEvent], window: TimeWindow) -> None:
        """Return only once every event is acknowledged by the stream; else raise a 503.
        `window`: the one the events were accepted in (their clock corrections are counted)."""
        topic = self.settings.kafka_topic
        # Messages are built inside the PRODUCER span: their traceparent is its context. An
        # unsampled request gets none (it would record nothing); its messages still carry the
        # request's trace id.
        span = tracing.producer_span(topic, len(events)) if tracing.recording() else nullcontext()
        with span:
            # One context for the whole request: built once, not per event (it was ~3/4 of a
            # batch's per-event message cost).
            trace = tuple(tracing.trace_headers())
            messages = [_message(event, trace) for event in events]
            started = time.perf_counter()
            waited = True  # a send refused at once (StreamFull) waited for nothing: no sample
            try:
                await self.producer.send(
                    topic, messages, timeout=self.settings.produce_timeout_seconds
                )
            except StreamError as error:
                metrics.reject("unavailable", len(events))
                waited = not isinstance(error, StreamFull)
                why = "no ack" if waited else "too many await the broker"
                raise ApiError(
                    503,
                    f"kafka: events not stored ({why}), retry later",
                    headers={"Retry-After": str(self.settings.retry_after_seconds)},
                    detail=repr(error),
                ) from None
            finally:
                finished = time.perf_counter()
                metrics.PRODUCE_SECONDS.observe(finished - started)
                metrics.report_pending(self.producer)
                if waited:
                    self.on_sent(started, finished)
        metrics.EVENTS_ACCEPTED.inc(len(events))
        metrics.count_clocks(events, window.now)


def _message(event: StoredEvent, trace: Headers) -> Message:
    """The stream message of an event; `trace`: the W3C headers of the request's span."""
    key = event.event_id.encode()
    headers = (*_CONTENT_HEADERS, ("event-id", key), *trace)
    return Message(key=key, value=event.encode(), headers=headers)


def now_ms() -> int:
    return time.time_ns() // 1_000_000
