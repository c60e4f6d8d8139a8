"""The analytics event: its validation rules, its identity and its encoding on the stream.

`EventIn` (pydantic) is what clients send: validation with the time window and messages naming
each field and rule, and the OpenAPI schema. `StoredEvent` (msgspec) is what the stream carries and
the store receives: the same rules (the constants below), decoded fast by the consumer, without the
time window (the API already applied it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

# The rules, once: both the client model (pydantic) and the stream struct (msgspec) use them.
CHANNELS = ("web", "mobile", "api", "email", "push")
Channel = Literal["web", "mobile", "api", "email", "push"]
NAME_MAX = 128  # event_name, user_id, campaign_id, event_id
TAGS_MAX = 20
TAG_MAX = 100
# Levels of objects and arrays in `metadata`, itself the first. Deeper JSON made the encoders fail
# (orjson stops at 255 levels, msgspec's decoder at Python's recursion limit): refused by name.
METADATA_DEPTH_MAX = 32
_DEPTH_RULE = f"must not nest deeper than {METADATA_DEPTH_MAX} levels"
Tag = Annotated[StrictStr, Field(max_length=TAG_MAX)]
_Tag = Annotated[str, msgspec.Meta(max_length=TAG_MAX)]
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
SCHEMA_VERSION = b"1"
CLAMP_FUTURE_SECONDS = 60  # the setting's default (`WEIR_CLOCK_CLAMP_FUTURE_SECONDS`)


@dataclass(frozen=True)
class TimeWindow:
    """The accepted timestamp range at validation time, from the settings' skew and max age.

    `now` is also the receive time the device-clock rule (`device_time`) corrects against."""

    now: int
    max_skew_seconds: int
    max_age_seconds: int
    clamp_future_seconds: int = CLAMP_FUTURE_SECONDS


def device_time(timestamp: int, sent_at: int | None, now: int, clamp_future_seconds: int) -> int:
    """The event's timestamp on the server's clock.

    A device that says when it sent the event (`sent_at`, on its own clock) lets the server undo
    its clock's error: the event happened `sent_at - timestamp` seconds before it was received.
    A corrected time still more than `clamp_future_seconds` ahead of `now` is not believable
    (the device stamped the event after sending it) and becomes `now`. Without `sent_at` the
    timestamp is the client's, and the window rule refuses it when it is in the future.
    """
    if sent_at is None:
        return timestamp
    corrected = timestamp + (now - sent_at)
    return now if corrected > now + clamp_future_seconds else corrected


class Clock(StrEnum):
    """What the device-clock rule did to an accepted event's timestamp."""

    KEPT = "kept"
    CORRECTED = "corrected"
    CLAMPED = "clamped"


def clock_outcome(event: StoredEvent, now: int) -> Clock:
    """For an event accepted at `now` (the window it was accepted in)."""
    if event.sent_at is None or event.client_timestamp is None:
        return Clock.KEPT
    if event.timestamp != event.client_timestamp + (now - event.sent_at):
        return Clock.CLAMPED
    return Clock.KEPT if event.timestamp == event.client_timestamp else Clock.CORRECTED


class EventIn(BaseModel):
    """An event as a client sends it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    event_name: StrictStr = Field(min_length=1, max_length=NAME_MAX, examples=["signup"])
    channel: Channel
    user_id: StrictStr = Field(min_length=1, max_length=NAME_MAX, examples=["user-42"])
    # Before `timestamp`: its window check reads the validated `sent_at`.
    sent_at: StrictInt | None = Field(
        None,
        gt=0,
        description=(
            "Unix seconds on the device's clock when it sent the event. When given, the stored "
            "timestamp is corrected by (receive time - sent_at) and the client's kept beside it."
        ),
    )
    timestamp: StrictInt = Field(
        gt=0,
        description=(
            "Unix seconds (UTC), at most the skew ahead of the server's clock and at most the "
            "maximum age behind it (without `sent_at`; with it, the corrected time)."
        ),
    )
    campaign_id: StrictStr | None = Field(None, max_length=NAME_MAX)
    tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"A JSON object; objects and arrays nest at most {METADATA_DEPTH_MAX} deep.",
    )
    event_id: StrictStr | None = Field(
        None,
        min_length=1,
        max_length=NAME_MAX,
        description="Idempotency key. Derived from the event's content when absent.",
    )

    @field_validator("sent_at", "timestamp", mode="before")
    @classmethod
    def _whole_seconds(cls, value: object) -> object:
        # JSON has one kind of number: 1792774041.0 is the integer 1792774041 (JSON Schema agrees).
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    @field_validator("timestamp")
    @classmethod
    def _within_window(cls, value: int, info: ValidationInfo) -> int:
        window = info.context.get("window") if isinstance(info.context, dict) else None
        if window is None:
            return value
        sent_at = info.data.get("sent_at")
        # With sent_at the rules apply to the corrected time, which is never refused as future.
        when = device_time(value, sent_at, window.now, window.clamp_future_seconds)
        if sent_at is None and when > window.now + window.max_skew_seconds:
            raise ValueError(f"must not be more than {window.max_skew_seconds} s in the future")
        if when < window.now - window.max_age_seconds:
            raise ValueError(f"must not be older than {window.max_age_seconds} s")
        return value

    @field_validator("metadata")
    @classmethod
    def _shallow(cls, value: dict[str, Any]) -> dict[str, Any]:
        if nests_deeper(value, METADATA_DEPTH_MAX):
            raise ValueError(_DEPTH_RULE)
        return value

    def identity(self) -> str:
        """The client's idempotency key, or a digest of the canonical content.

        The digest covers every field, with defaults filled in, so an exact resend maps to the same
        id and any differing event does not. `sent_at` is not the event's content but its
        sending: a resend with a later `sent_at` is the same event.
        """
        if self.event_id is not None:
            return self.event_id
        return content_digest(self.model_dump(exclude={"event_id", "sent_at"}))


def nests_deeper(value: object, levels: int) -> bool:
    """Whether objects and arrays nest more than `levels` deep in `value` (a container is level
    1). Iterative, and stops at the first level too many: the value may be as deep as a parser
    allows."""
    if not isinstance(value, dict | list):
        return False
    if levels < 1:
        return True
    stack: list[tuple[dict[Any, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                if depth == levels:
                    return True
                stack.append((child, depth + 1))
    return False


class InvalidEvent(ValueError):
    """An event that breaks a rule; the message names the field and the rule."""


def describe_errors(error: ValidationError) -> str:
    """Turn pydantic's errors into one message naming each field and the rule it broke."""
    parts = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "body"
        kind = item["type"]
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a known field (allowed: " + ", ".join(EventIn.model_fields) + ")"
        elif kind == "model_type" or (kind == "dict_type" and not item["loc"]):
            field, message = "body", "must be a JSON object"
        elif kind == "value_error":
            message = str(item["ctx"]["error"])
        else:
            message = item["msg"][0].lower() + item["msg"][1:]
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def validate_event(payload: object, window: TimeWindow | None) -> EventIn:
    """Validate one decoded JSON value; raise InvalidEvent with a clear message."""
    if not isinstance(payload, dict):
        raise InvalidEvent(f"body: must be a JSON object, got {_json_type(payload)}")
    try:
        return EventIn.model_validate(payload, context={"window": window})
    except ValidationError as error:
        raise InvalidEvent(describe_errors(error)) from None


class _EventFields(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The client fields with `EventIn`'s rules (the constants above), as msgspec types."""

    event_name: _Name
    channel: Channel
    user_id: _Name
    sent_at: Annotated[int, msgspec.Meta(gt=0)] | None = None
    timestamp: Annotated[int, msgspec.Meta(gt=0)]
    campaign_id: Annotated[str, msgspec.Meta(max_length=NAME_MAX)] | None = None
    tags: Annotated[list[_Tag], msgspec.Meta(max_length=TAGS_MAX)] = msgspec.field(
        default_factory=list
    )
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class StoredEvent(_EventFields, kw_only=True, frozen=True, gc=False):
    """An accepted event as it travels on the stream and lands in the store.

    The stream's value is this struct as JSON: the validated client fields plus `event_id` and
    `received_at` (unix ms). `timestamp` is on the server's clock (`device_time`); when the client
    sent `sent_at`, `client_timestamp` holds the timestamp it sent (else None: they are equal).
    It is a msgspec struct, not a pydantic model, because the consumer
    decodes every message: msgspec checks the same rules (the constants above) several times
    faster, and the API already explained any violation to the client.
    """

    received_at: int
    event_id: _Name
    client_timestamp: int | None = None

    @classmethod
    def accept(
        cls, event: EventIn, received_at_ms: int, window: TimeWindow | None = None
    ) -> StoredEvent:
        """The stream form of a validated client event, with its identity fixed and its
        timestamp on the server's clock (`window.now`; without a window, `received_at_ms`)."""
        now = window.now if window is not None else received_at_ms // 1000
        clamp = window.clamp_future_seconds if window is not None else CLAMP_FUTURE_SECONDS
        return cls(
            event_id=event.identity(),
            received_at=received_at_ms,
            event_name=event.event_name,
            channel=event.channel,
            user_id=event.user_id,
            sent_at=event.sent_at,
            timestamp=device_time(event.timestamp, event.sent_at, now, clamp),
            client_timestamp=None if event.sent_at is None else event.timestamp,
            campaign_id=event.campaign_id,
            tags=list(event.tags),
            metadata=event.metadata,
        )

    def encode(self) -> bytes:
        return _WIRE_ENCODER.encode(self)

    @classmethod
    def decode(cls, value: bytes) -> StoredEvent:
        """Decode a stream message; raise InvalidEvent when it is not a valid stored event."""
        try:
            event = _WIRE_DECODER.decode(value)
        except msgspec.ValidationError as error:
            raise InvalidEvent(_describe_wire_error(str(error), value)) from None
        except msgspec.DecodeError as error:
            raise InvalidEvent(f"value: not JSON ({error})") from None
        except RecursionError:
            raise InvalidEvent("value: nested too deep to decode") from None
        if event.metadata and nests_deeper(event.metadata, METADATA_DEPTH_MAX):
            raise InvalidEvent(f"metadata: {_DEPTH_RULE}")
        return event


_WIRE_ENCODER = msgspec.json.Encoder()
_WIRE_DECODER = msgspec.json.Decoder(StoredEvent)
_MISSING = re.compile(r"^Object missing required field `(\w+)`")
_AT = re.compile(r"^(.*?)(?: - at `\$\.?([^`]*)`)?$")
_WIRE_HINTS = {
    "received_at": "must be an integer (unix ms)",
    "event_id": "is required on the stream",
}


def _describe_wire_error(message: str, value: bytes) -> str:
    """msgspec's wording ("Expected `int`, got `str` - at `$.timestamp`") in ours
    ("timestamp: expected `int`, got `str`"). A missing envelope field (received_at, event_id:
    what the API adds) is named before any missing event field."""
    missing = _MISSING.match(message)
    if missing:
        for envelope in _WIRE_HINTS:
            if f'"{envelope}"'.encode() not in value:
                return f"{envelope}: {_WIRE_HINTS[envelope]}"
        return f"{missing.group(1)}: is required"
    if message.startswith("Expected `object`"):
        return "value: not a JSON object"
    match = _AT.match(message)
    text, path = (match.group(1), match.group(2)) if match else (message, None)
    field = (path or "value").split(".")[0].split("[")[0] or "value"
    if field == "received_at":
        return f"received_at: {_WIRE_HINTS[field]}"
    return f"{field}: {text[0].lower()}{text[1:]}"


class _Candidate(_EventFields, kw_only=True, frozen=True):
    """`EventIn`'s rules (the constants above) as a msgspec struct: the fast path of acceptance.

    Only acceptance is fast: anything this refuses is validated again by `EventIn`, which stays
    the contract and explains what is wrong. tests/core/test_event.py checks that the two agree.
    """

    event_id: _Name | None = None


_ONE_CANDIDATE = msgspec.json.Decoder(_Candidate)
_CANDIDATES = msgspec.json.Decoder(list[_Candidate])


def accept_fast(data: bytes, window: TimeWindow, received_at_ms: int) -> StoredEvent | None:
    """The stored form of a JSON event that obeys every rule; None for anything else (the
    caller then validates with `EventIn`, which explains the refusal)."""
    try:
        candidate = _ONE_CANDIDATE.decode(data)
    except (msgspec.MsgspecError, RecursionError):  # too deep for msgspec: the contract says so
        return None
    return _stored(candidate, window, received_at_ms, max_bytes=None)


def accept_all_fast(
    data: bytes, window: TimeWindow, received_at_ms: int, max_event_bytes: int
) -> list[StoredEvent] | None:
    """For a JSON array whose every item obeys every rule (and is at most `max_event_bytes`),
    their stored forms; None when any item does not."""
    try:
        candidates = _CANDIDATES.decode(data)
    except (msgspec.MsgspecError, RecursionError):
        return None
    accepted = []
    for candidate in candidates:
        stored = _stored(candidate, window, received_at_ms, max_event_bytes)
        if stored is None:
            return None
        accepted.append(stored)
    return accepted


def _stored(
    candidate: _Candidate, window: TimeWindow, received_at_ms: int, max_bytes: int | None
) -> StoredEvent | None:
    sent_at = candidate.sent_at
    when = device_time(candidate.timestamp, sent_at, window.now, window.clamp_future_seconds)
    if not window.now - window.max_age_seconds <= when:
        return None
    if sent_at is None and when > window.now + window.max_skew_seconds:
        return None
    if candidate.metadata and nests_deeper(candidate.metadata, METADATA_DEPTH_MAX):
        return None
    if max_bytes is not None and len(_WIRE_ENCODER.encode(candidate)) > max_bytes:
        return None
    content: dict[str, Any] = {
        "event_name": candidate.event_name,
        "channel": candidate.channel,
        "user_id": candidate.user_id,
        "timestamp": candidate.timestamp,
        "campaign_id": candidate.campaign_id,
        "tags": candidate.tags,
        "metadata": candidate.metadata,
    }
    try:
        event_id = candidate.event_id or content_digest(content)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer beyond 64 bits
        return None
    return StoredEvent(
        received_at=received_at_ms,
        event_id=event_id,
        **(content | {"timestamp": when}),
        sent_at=sent_at,
        client_timestamp=None if sent_at is None else candidate.timestamp,
    )


def content_digest(content: dict[str, Any]) -> str:
    """An event's derived identity: SHA-256 (first 128 bits, hex) of its canonical JSON."""
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:32]


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__
