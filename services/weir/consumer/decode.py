"""Step 1: a stream record becomes a stored event (with its trace id), or a dead letter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from weir.core.event import InvalidEvent, StoredEvent
from weir.stream import Record


class Decoded(NamedTuple):  # one per record: a tuple is the cheapest to build
    record: Record
    event: StoredEvent
    traceparent: bytes  # the W3C header as the producer sent it, b"" when none

    @property
    def trace_id(self) -> str:
        """The trace id the traceparent carries, or "" when there is none."""
        return trace_id_of((("traceparent", self.traceparent),)) if self.traceparent else ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    reason: str


def decode(record: Record) -> Decoded | DeadLetter:
    try:
        event = StoredEvent.decode(record.value)
    except InvalidEvent as error:
        return DeadLetter(record, str(error))
    if record.key is not None and record.key != event.event_id.encode():
        return DeadLetter(record, "key: does not match the event_id in the value")
    return Decoded(record, event, traceparent_of(record.headers))


def traceparent_of(headers: Sequence[tuple[str, bytes]]) -> bytes:
    for name, value in headers:
        if name == "traceparent":
            return value
    return b""


def trace_id_of(headers: Sequence[tuple[str, bytes]]) -> str:
    """The W3C trace id carried by the `traceparent` header, or "" when there is none."""
    for name, value in headers:
        if name == "traceparent":
            parts = value.decode("ascii", "replace").split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return parts[1]
    return ""
