"""Segment's tracking API shapes, mapped onto Weir's event (pure: no I/O).

What Segment's SDKs (analytics-python, analytics-node, the mobile SDKs) and RudderStack's send to
`/v1/track` and `/v1/batch`: one message, or `{"batch": [...], "sentAt", "context"}`. A `track`
message maps field by field:

    event -> event_name           userId (else anonymousId) -> user_id
    messageId -> event_id         timestamp (ISO-8601) -> timestamp (unix seconds)
    sentAt (ISO-8601; the message's, else the batch's) -> sent_at (the device-clock rule)
    properties -> metadata        context.channel (the message's, else the batch's, else the
                                  configured default) -> channel

Everything else the SDKs send (integrations, the rest of context, writeKey, type) is ignored,
as Segment's own endpoint ignores what it does not use; other message types (identify, page,
...) are refused per message, naming the type. The result is validated by `EventIn` like any
event; its messages are reworded to name the Segment field.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from weir.core.event import InvalidEvent

# Weir's field -> the Segment field it came from, for error messages.
SEGMENT_NAMES = {
    "event_name": "event",
    "user_id": "userId",
    "event_id": "messageId",
    "timestamp": "timestamp",
    "sent_at": "sentAt",
    "metadata": "properties",
    "channel": "context.channel",
}
_FIELD = re.compile(r"^(\w+)(?=[:.\[])")


def to_event(
    message: object, default_channel: str, batch: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A Weir event payload (for `EventIn`) from one Segment message; raise InvalidEvent naming
    the Segment field when the message cannot be one. `batch`: the enclosing batch object."""
    if not isinstance(message, dict):
        raise InvalidEvent("message: must be a JSON object")
    kind = message.get("type", "track")
    if kind != "track":
        raise InvalidEvent(f"type: {kind!r} is not supported (only track)")
    if "event" not in message:
        raise InvalidEvent("event: is required")
    user = message.get("userId")
    if user is None or user == "":
        user = message.get("anonymousId")
    if user is None:
        raise InvalidEvent("userId: is required (or anonymousId)")
    context = _object(message, "context")
    outer = _object(batch, "context") if batch is not None else {}
    event: dict[str, Any] = {
        "event_name": message["event"],
        "user_id": user,
        "channel": context.get("channel", outer.get("channel", default_channel)),
        "metadata": message.get("properties") or {},
    }
    if message.get("messageId") is not None:
        event["event_id"] = message["messageId"]
    sent = message.get("sentAt", batch.get("sentAt") if batch is not None else None)
    if sent is not None:
        event["sent_at"] = unix_seconds(sent, "sentAt")
    stamp = message.get("timestamp")
    if stamp is not None:
        event["timestamp"] = unix_seconds(stamp, "timestamp")
    return event


def receive_time_default(event: dict[str, Any], now: int) -> dict[str, Any]:
    """A message without `timestamp` happened when it was sent (Segment's rule): `sent_at` when
    given, which the device-clock rule turns into the receive time; else the receive time."""
    if "timestamp" not in event:
        event["timestamp"] = event.get("sent_at", now)
    return event


# RFC 3339's date-time (what the SDKs send, and what the OpenAPI document states as a pattern):
# `datetime.fromisoformat` alone also reads dates without a time, week dates and more.
DATE_TIME = (
    r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"  # year 0 is no year to Python
    r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_DATE_TIME = re.compile(DATE_TIME)


def unix_seconds(value: object, field: str) -> int:
    """An RFC 3339 date-time as whole unix seconds."""
    if not isinstance(value, str):
        raise InvalidEvent(f"{field}: must be an ISO-8601 date-time string")
    if not _DATE_TIME.fullmatch(value):
        raise InvalidEvent(f"{field}: {value[:64]!r} is not an ISO-8601 date-time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{field}: {value[:64]!r} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def segment_wording(error: InvalidEvent) -> InvalidEvent:
    """`EventIn`'s message with each Weir field named as the Segment field it came from."""
    parts = []
    for part in str(error).split("; "):
        parts.append(_FIELD.sub(lambda m: SEGMENT_NAMES.get(m.group(1), m.group(1)), part, 1))
    return InvalidEvent("; ".join(parts))


def _object(container: dict[str, Any] | None, name: str) -> dict[str, Any]:
    value = (container or {}).get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"{name}: must be a JSON object")
    return value
