"""The analytics event: its validation rules, its identity and its encoding on the stream.

One model serves the API (validation of what clients send, with the time window), the consumer
(decoding what the stream carries, without the time window: the API already applied it) and the
OpenAPI docs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

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

CHANNELS = ("web", "mobile", "api", "email", "push")
Channel = Literal["web", "mobile", "api", "email", "push"]
Tag = Annotated[StrictStr, Field(max_length=100)]
SCHEMA_VERSION = b"1"


@dataclass(frozen=True)
class TimeWindow:
    """The accepted timestamp range at validation time, from the settings' skew and max age."""

    now: int
    max_skew_seconds: int
    max_age_seconds: int


class EventIn(BaseModel):
    """An event as a client sends it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    event_name: StrictStr = Field(min_length=1, max_length=128, examples=["signup"])
    channel: Channel
    user_id: StrictStr = Field(min_length=1, max_length=128, examples=["user-42"])
    timestamp: StrictInt = Field(gt=0, description="Unix seconds (UTC).", examples=[1763715600])
    campaign_id: StrictStr | None = Field(None, max_length=128)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    metadata: dict[str, Any] = Field(default_factory=dict)
    event_id: StrictStr | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Idempotency key. Derived from the event's content when absent.",
    )

    @field_validator("timestamp")
    @classmethod
    def _within_window(cls, value: int, info: ValidationInfo) -> int:
        window = info.context.get("window") if isinstance(info.context, dict) else None
        if window is None:
            return value
        if value > window.now + window.max_skew_seconds:
            raise ValueError(f"must not be more than {window.max_skew_seconds} s in the future")
        if value < window.now - window.max_age_seconds:
            raise ValueError(f"must not be older than {window.max_age_seconds} s")
        return value

    def identity(self) -> str:
        """The client's idempotency key, or a digest of the canonical content.

        The digest covers every field, with defaults filled in, so an exact resend maps to the same
        id and any differing event does not.
        """
        if self.event_id is not None:
            return self.event_id
        content = self.model_dump(exclude={"event_id"})
        canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()[:32]


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


@dataclass(frozen=True)
class StoredEvent:
    """An accepted event as it travels on the stream and lands in the store."""

    event_id: str
    event: EventIn
    received_at_ms: int

    def encode(self) -> bytes:
        body = self.event.model_dump(exclude={"event_id"})
        body["event_id"] = self.event_id
        body["received_at"] = self.received_at_ms
        return orjson.dumps(body)

    @classmethod
    def decode(cls, value: bytes) -> StoredEvent:
        """Decode a stream message; raise InvalidEvent when it is not a valid stored event."""
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            raise InvalidEvent(f"value: not JSON ({error})") from None
        if not isinstance(body, dict):
            raise InvalidEvent("value: not a JSON object")
        received_at = body.pop("received_at", None)
        if not isinstance(received_at, int) or isinstance(received_at, bool):
            raise InvalidEvent("received_at: must be an integer (unix ms)")
        event = validate_event(body, window=None)
        if event.event_id is None:
            raise InvalidEvent("event_id: is required on the stream")
        return cls(event_id=event.event_id, event=event, received_at_ms=received_at)


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
