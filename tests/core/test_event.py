"""Every validation rule of an event, and its error message."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from weir.core.event import (
    Clock,
    EventIn,
    InvalidEvent,
    StoredEvent,
    TimeWindow,
    accept_all_fast,
    accept_fast,
    clock_outcome,
    device_time,
    nests_deeper,
    validate_event,
)

NOW = 1_800_000_000
WINDOW = TimeWindow(now=NOW, max_skew_seconds=60, max_age_seconds=30 * 86400)


def event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_name": "signup",
        "channel": "web",
        "user_id": "u1",
        "timestamp": NOW,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def nested(levels: int, inner: object = None) -> Any:
    """An object `levels` deep, objects and arrays alternating, `inner` at the bottom."""
    value: Any = {} if inner is None else {"v": inner}
    for wrap in range(levels - 1):
        value = {"k": value} if (levels - wrap) % 2 == 0 else [value]
    return value


def error_of(payload: object) -> str:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(payload, WINDOW)
    return str(caught.value)


def test_a_valid_event_passes_with_defaults() -> None:
    valid = validate_event(event(), WINDOW)
    assert valid.tags == [] and valid.metadata == {} and valid.campaign_id is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"event_name": ...}, "event_name: is required"),
        ({"event_name": ""}, "event_name: string should have at least 1 character"),
        ({"event_name": "x" * 129}, "event_name: string should have at most 128 characters"),
        ({"event_name": 5}, "event_name: input should be a valid string"),
        ({"user_id": ...}, "user_id: is required"),
        ({"user_id": ""}, "user_id: string should have at least 1 character"),
        ({"user_id": "u" * 129}, "user_id: string should have at most 128 characters"),
        ({"timestamp": ...}, "timestamp: is required"),
        ({"timestamp": 0}, "timestamp: input should be greater than 0"),
        ({"timestamp": -5}, "timestamp: input should be greater than 0"),
        ({"timestamp": "1800000000"}, "timestamp: input should be a valid integer"),
        ({"timestamp": 1.5}, "timestamp: input should be a valid integer"),
        ({"timestamp": True}, "timestamp: input should be a valid integer"),
        ({"timestamp": NOW + 61}, "timestamp: must not be more than 60 s in the future"),
        ({"timestamp": NOW - 30 * 86400 - 1}, "timestamp: must not be older than 2592000 s"),
        ({"channel": ...}, "channel: is required"),
        ({"channel": "tv"}, "channel: input should be 'web', 'mobile', 'api', 'email' or 'push'"),
        ({"campaign_id": 7}, "campaign_id: input should be a valid string"),
        ({"tags": ["t"] * 21}, "tags: list should have at most 20 items"),
        ({"tags": ["x" * 101]}, "tags.0: string should have at most 100 characters"),
        ({"tags": [1]}, "tags.0: input should be a valid string"),
        ({"tags": "a"}, "tags: input should be a valid list"),
        ({"metadata": [1]}, "metadata: input should be a valid dictionary"),
        ({"metadata": nested(33)}, "metadata: must not nest deeper than 32 levels"),
        ({"metadata": {"a": 1, "b": nested(32)}}, "metadata: must not nest deeper than 32"),
        ({"event_id": ""}, "event_id: string should have at least 1 character"),
        ({"event_id": "e" * 129}, "event_id: string should have at most 128 characters"),
        ({"colour": "red"}, "colour: is not a known field (allowed: event_name"),
    ],
)
def test_each_rule_names_the_field_and_the_rule(changes: dict[str, Any], message: str) -> None:
    assert message in error_of(event(**changes))


def test_whole_seconds_written_as_floats_are_integers() -> None:
    assert validate_event(event(timestamp=NOW * 1.0), WINDOW).timestamp == NOW
    same = validate_event(event(timestamp=NOW), WINDOW).identity()
    assert validate_event(event(timestamp=NOW * 1.0), WINDOW).identity() == same
    assert validate_event(event(sent_at=NOW * 1.0), WINDOW).sent_at == NOW
    assert "timestamp: input should be a valid integer" in error_of(event(timestamp=NOW + 0.5))


def test_the_window_edges_are_inclusive() -> None:
    validate_event(event(timestamp=NOW + 60), WINDOW)
    validate_event(event(timestamp=NOW - 30 * 86400), WINDOW)


@pytest.mark.parametrize(
    ("payload", "kind"), [([], "an array"), ("x", "a string"), (3, "a number"), (None, "null")]
)
def test_non_object_bodies_are_rejected(payload: object, kind: str) -> None:
    assert error_of(payload) == f"body: must be a JSON object, got {kind}"


def test_several_errors_are_reported_together() -> None:
    message = error_of({"channel": "tv"})
    for field in ("event_name", "user_id", "timestamp", "channel"):
        assert f"{field}:" in message


def test_identity_is_deterministic_and_content_sensitive() -> None:
    first = validate_event(event(metadata={"a": 1, "b": 2}), WINDOW).identity()
    reordered = validate_event(event(metadata={"b": 2, "a": 1}), WINDOW).identity()
    explicit_defaults = validate_event(event(metadata={"a": 1, "b": 2}, tags=[]), WINDOW)
    assert first == reordered == explicit_defaults.identity()
    for change in ({"user_id": "u2"}, {"timestamp": NOW - 1}, {"tags": ["x"]}, {"channel": "api"}):
        body = event(metadata={"a": 1, "b": 2}) | change
        assert validate_event(body, WINDOW).identity() != first


def test_a_client_event_id_is_the_identity() -> None:
    assert validate_event(event(event_id="order-1"), WINDOW).identity() == "order-1"


def test_stored_event_round_trips_and_skips_the_time_window() -> None:
    old = EventIn.model_validate(event(timestamp=1000))
    stored = StoredEvent.accept(old, received_at_ms=123)
    decoded = StoredEvent.decode(stored.encode())
    assert decoded.event_id == stored.event_id == old.identity()
    assert decoded.received_at == 123
    fields = old.model_dump(exclude={"event_id"})
    assert {name: getattr(decoded, name) for name in fields} == fields


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"{nope", "value: not JSON"),
        (b"[1]", "value: not a JSON object"),
        (b'{"event_name":"a"}', "received_at: must be an integer"),
    ],
)
def test_undecodable_stream_values_are_explained(value: bytes, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        StoredEvent.decode(value)


# The fast path (msgspec) must accept exactly what the contract (EventIn) accepts, with the same
# identity; what it refuses goes to EventIn, so a refusal there only costs time, never an answer.
AGREEMENT_CASES: list[object] = [
    event(),
    event(tags=["a", "b"], metadata={"plan": "pro", "n": 1, "f": 1.5, "deep": {"x": [1, None]}}),
    event(campaign_id="c1", event_id="order-1"),
    event(campaign_id=None, tags=[]),
    event(user_id="ü" * 128),
    event(user_id="ü" * 129),
    event(event_name=""),
    event(channel="fax"),
    event(timestamp=True),
    event(timestamp=1.0 * NOW),
    event(timestamp=str(NOW)),
    event(timestamp=NOW + 61),
    event(timestamp=NOW + 3590, sent_at=NOW + 3600),  # a clock an hour ahead: corrected
    event(timestamp=NOW - 86400 - 30, sent_at=NOW - 86400),  # a day behind: corrected
    event(timestamp=NOW + 500, sent_at=NOW),  # stamped after sending: clamped
    event(timestamp=NOW - 10, sent_at=NOW + 30 * 86400),  # corrected beyond the max age
    event(sent_at=0),
    event(sent_at=str(NOW)),
    event(sent_at=1.5),
    event(timestamp=NOW - 30 * 86400 - 1),
    event(timestamp=0),
    event(tags=["x" * 101]),
    event(tags=["t"] * 21),
    event(tags="a"),
    event(tags=[1]),
    event(metadata=[]),
    event(metadata=nested(32, inner=1)),
    event(metadata=nested(33)),
    event(metadata={"wide": [nested(31)] * 50}),
    orjson.dumps(event()).replace(b"}", b',"metadata":{"big":1180591620717411303424}}'),
    event(extra=1),
    event(event_id=""),
    event(event_id=5),
    event(campaign_id="c" * 129),
    [event()],
    "event",
    None,
]


@pytest.mark.parametrize("payload", AGREEMENT_CASES)
def test_fast_acceptance_agrees_with_the_contract(payload: object) -> None:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    try:  # what the API's slow path does: parse, then validate with the contract
        contract: StoredEvent | None = StoredEvent.accept(
            validate_event(orjson.loads(data), WINDOW), 5, WINDOW
        )
    except (InvalidEvent, orjson.JSONDecodeError):
        contract = None
    fast = accept_fast(data, WINDOW, 5)
    batch = accept_all_fast(b"[" + data + b"," + data + b"]", WINDOW, 5, max_event_bytes=2048)
    floats = isinstance(payload, dict) and isinstance(payload.get("timestamp"), float)
    if b"big" in data or floats:  # beyond 64 bits, or 1800000000.0: left to the contract
        assert fast is None and batch is None and contract is not None
        return
    assert fast == contract
    assert batch == (None if contract is None else [contract, contract])


def test_nesting_is_measured_in_objects_and_arrays() -> None:
    for levels in (1, 2, 5, 32):
        assert isinstance(nested(levels), dict)
        validate_event(event(metadata=nested(levels)), WINDOW)
        assert nests_deeper(nested(levels), levels - 1)
        assert not nests_deeper(nested(levels), levels)
    assert not nests_deeper("text", 0) and not nests_deeper({"a": "b" * 100}, 1)


def test_a_stream_value_too_deep_is_refused() -> None:
    stored = StoredEvent.accept(EventIn.model_validate(event()), received_at_ms=1)
    value = orjson.loads(stored.encode())
    with pytest.raises(InvalidEvent, match="metadata: must not nest deeper than 32 levels"):
        StoredEvent.decode(orjson.dumps(value | {"metadata": nested(40)}))
    too_deep = orjson.dumps(value)[:-1] + b',"metadata":' + b'{"a":' * 5000 + b"}" * 5001
    with pytest.raises(InvalidEvent, match="value: "):
        StoredEvent.decode(too_deep)


def test_fast_batch_acceptance_refuses_an_oversized_item() -> None:
    big = orjson.dumps(event(metadata={"pad": "x" * 3000}))
    assert accept_all_fast(b"[" + big + b"]", WINDOW, 5, max_event_bytes=2048) is None
    assert accept_all_fast(b"[" + big + b"]", WINDOW, 5, max_event_bytes=8192) is not None


@pytest.mark.parametrize(
    ("timestamp", "sent_at", "expected", "outcome"),
    [
        (NOW - 5, None, NOW - 5, Clock.KEPT),  # no sent_at: the client's time
        (NOW - 5, NOW, NOW - 5, Clock.KEPT),  # a right clock: nothing to correct
        (NOW + 3595, NOW + 3600, NOW - 5, Clock.CORRECTED),  # an hour ahead
        (NOW - 7200 - 5, NOW - 7200, NOW - 5, Clock.CORRECTED),  # two hours behind
        (NOW + 60, NOW, NOW + 60, Clock.KEPT),  # at the clamp limit: kept
        (NOW + 61, NOW, NOW, Clock.CLAMPED),  # beyond it: the receive time
        (NOW + 9000, NOW + 3600, NOW, Clock.CLAMPED),
    ],
)
def test_device_clock_rule(
    timestamp: int, sent_at: int | None, expected: int, outcome: Clock
) -> None:
    assert device_time(timestamp, sent_at, NOW, 60) == expected
    body = event(timestamp=timestamp, sent_at=sent_at if sent_at is not None else ...)
    stored = StoredEvent.accept(validate_event(body, WINDOW), NOW * 1000, WINDOW)
    assert stored.timestamp == expected
    assert stored.client_timestamp == (None if sent_at is None else timestamp)
    assert clock_outcome(stored, NOW) is outcome
    assert accept_fast(orjson.dumps(body), WINDOW, NOW * 1000) == stored


def test_sent_at_is_not_part_of_the_derived_identity() -> None:
    """A device resending an event later sends a later sent_at: still the same event."""
    plain = validate_event(event(timestamp=NOW - 100), WINDOW).identity()
    first = validate_event(event(timestamp=NOW - 100, sent_at=NOW - 90), WINDOW).identity()
    again = validate_event(event(timestamp=NOW - 100, sent_at=NOW - 20), WINDOW).identity()
    assert plain == first == again


def test_sent_at_rules_and_window_on_the_corrected_time() -> None:
    assert error_of(event(sent_at=0)) == "sent_at: input should be greater than 0"
    assert error_of(event(sent_at="1")) == "sent_at: input should be a valid integer"
    # far in the device's future, but sent_at says the clock is ahead by as much: accepted
    assert validate_event(event(timestamp=NOW + 86400, sent_at=NOW + 86400), WINDOW)
    # corrected to 31 days ago: too old, named as the timestamp
    old = event(timestamp=NOW - 10, sent_at=NOW + 31 * 86400)
    assert error_of(old) == "timestamp: must not be older than 2592000 s"
