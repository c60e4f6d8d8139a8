"""POST /v1/track and POST /v1/batch: Segment's tracking API, so existing SDKs work unchanged.

The messages are mapped onto Weir's event (`weir.api.segment`), then accepted like any event
(validation, identity, device clock, the broker's ack). Answers are 200 (what Segment answers and
what RudderStack's SDK requires) with `success` and per-message `results`; a message that cannot
be an event is reported in `results` and never silently dropped; a batch with none valid is 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from weir.api.body import JSON, parse_json, read_body
from weir.api.deps import IngestorDep, SettingsDep, WriteKey
from weir.api.errors import ApiError
from weir.api.ingest import Ingestor, now_ms
from weir.api.segment import DATE_TIME, receive_time_default, segment_wording, to_event
from weir.core.config import Settings
from weir.core.event import CHANNELS, NAME_MAX, InvalidEvent, StoredEvent, TimeWindow
from weir.observability import metrics

router = APIRouter(tags=["segment"])
# analytics.js sends text/plain to spare browsers a CORS preflight; the body is JSON all the same.
_MEDIA = (JSON, "text/plain")

_NAME = {"type": "string", "minLength": 1, "maxLength": NAME_MAX}
_TIME = {"type": ["string", "null"], "format": "date-time", "pattern": DATE_TIME}
_CONTEXT = {
    "type": ["object", "null"],
    "properties": {"channel": {"enum": list(CHANNELS), "description": "-> channel"}},
}
# The document says exactly which messages become events (what `to_event` and `EventIn` accept):
# the fuzz test (tests/api/test_fuzz.py) holds the two to it. Two rules it cannot state are in
# words: the timestamp window (on ISO-8601 strings) and the device-clock correction by sentAt.
_MESSAGE = {
    "type": "object",
    "description": (
        "A Segment track message; fields Weir does not map are ignored. `timestamp` (else "
        "`sentAt`, else the receive time) must fall in the timestamp window, after the "
        "device-clock correction by `sentAt`."
    ),
    "required": ["event"],
    "properties": {
        "type": {"enum": ["track"]},
        "event": _NAME | {"description": "-> event_name"},
        "userId": {"description": "-> user_id"},
        "anonymousId": {"description": "-> user_id when userId is absent, null or empty"},
        "messageId": {
            "type": ["string", "null"],
            "minLength": 1,
            "maxLength": NAME_MAX,
            "description": "-> event_id",
        },
        "timestamp": _TIME,
        "sentAt": _TIME | {"description": "-> sent_at"},
        "properties": {
            "description": '-> metadata (a JSON object; null, false, 0, "" and [] mean none)',
            "anyOf": [{"type": "object"}, {"enum": [None, False, 0, "", []]}],
        },
        "context": _CONTEXT,
    },
    "anyOf": [
        {"required": ["userId"], "properties": {"userId": _NAME}},
        {
            "required": ["anonymousId"],
            "properties": {"userId": {"enum": [None, ""]}, "anonymousId": _NAME},
        },
    ],
}
_BATCH = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": _MESSAGE, "minItems": 1},
        "sentAt": _TIME,
        "context": _CONTEXT,
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a track message / no valid message: `error` names the field."},
    401: {"description": "No API key, or an unknown one."},
    403: {"description": "A key of the other kind (a read key)."},
    408: {"description": "The body did not arrive within the body timeout."},
    413: {"description": "Body or batch over its limit."},
    415: {"description": "Content type or encoding not supported."},
    429: {"description": "Over the key's quota; see Retry-After and RateLimit-*."},
    503: {"description": "Kafka did not acknowledge in time; see Retry-After."},
}
_TRACKED = {
    "type": "object",
    "required": ["success", "event_id"],
    "properties": {"success": {"const": True}, "event_id": {"type": "string"}},
}
_BATCHED = {
    "type": "object",
    "required": ["success", "accepted", "rejected", "results"],
    "properties": {
        "success": {"const": True},
        "accepted": {"type": "integer", "minimum": 1},
        "rejected": {"type": "integer", "minimum": 0},
        "results": {"type": "array", "items": {"type": "object"}},
    },
}


def _answers(ok: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    success = {"description": description, "content": {JSON: {"schema": ok}}}
    return {200: success, **_ERRORS}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


@router.post(
    "/v1/track",
    openapi_extra=_body(_MESSAGE),
    responses=_answers(_TRACKED, "Accepted (durable in Kafka)."),
)
async def segment_track(
    request: Request, key: WriteKey, ingestor: IngestorDep, settings: SettingsDep
) -> dict[str, Any]:
    """One Segment `track` message."""
    key.charge(1)
    body = await read_body(request, _MEDIA, settings.max_event_bytes)
    message = parse_json(body.data)
    window = ingestor.window()
    try:
        event = _accept(ingestor, settings, message, None, window, now_ms())
    except InvalidEvent as error:
        raise ApiError(400, str(error)) from None
    await ingestor.publish([event], window)
    return {"success": True, "event_id": event.event_id}


@router.post(
    "/v1/batch",
    openapi_extra=_body(_BATCH),
    responses=_answers(_BATCHED, "Accepted (durable in Kafka); per-message `results`."),
)
async def segment_batch(
    request: Request, key: WriteKey, ingestor: IngestorDep, settings: SettingsDep
) -> dict[str, Any]:
    """`{"batch": [...]}` of Segment messages (optionally gzip), as the SDKs flush them."""
    body = await read_body(request, _MEDIA, settings.max_batch_bytes)
    outer = parse_json(body.data)
    if not isinstance(outer, dict) or not isinstance(outer.get("batch"), list):
        raise ApiError(400, "batch: must be an array of messages in a JSON object")
    messages: list[object] = outer["batch"]
    if not messages:
        raise ApiError(400, "batch: must contain at least one message")
    if len(messages) > settings.max_batch_events:
        raise ApiError(413, f"batch: more than {settings.max_batch_events} messages")
    window, received_at = ingestor.window(), now_ms()
    results: list[dict[str, Any]] = []
    accepted: list[StoredEvent] = []
    for index, message in enumerate(messages):
        try:
            event = _accept(ingestor, settings, message, outer, window, received_at)
        except InvalidEvent as error:
            results.append({"index": index, "status": "rejected", "error": str(error)})
            continue
        accepted.append(event)
        results.append({"index": index, "status": "accepted", "event_id": event.event_id})
    summary = {"accepted": len(accepted), "rejected": len(messages) - len(accepted)}
    if not accepted:
        raise ApiError(
            400, "batch: no valid messages", accepted=0, rejected=len(messages), results=results
        )
    key.charge(len(accepted))
    await ingestor.publish(accepted, window)
    return {"success": True, **summary, "results": results}


def _accept(
    ingestor: Ingestor,
    settings: Settings,
    message: object,
    batch: dict[str, Any] | None,
    window: TimeWindow,
    received_at: int,
) -> StoredEvent:
    """One message as a stored event; InvalidEvent naming the Segment field otherwise (counted
    in `weir_events_rejected_total` like any refused event)."""
    try:
        payload = to_event(message, settings.segment_default_channel, batch)
    except InvalidEvent as error:
        metrics.reject(metrics.rejection_reason(str(error)))
        raise
    try:
        return ingestor.prepare(receive_time_default(payload, window.now), window, received_at)
    except InvalidEvent as error:  # counted by `prepare`
        raise segment_wording(error) from None
