"""POST /events and POST /events/batch."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from weir.api.body import JSON, NDJSON, parse_json, read_body
from weir.api.deps import IngestorDep, SettingsDep
from weir.api.errors import ApiError
from weir.api.ingest import now_ms
from weir.core.config import Settings
from weir.core.event import EventIn, InvalidEvent, StoredEvent
from weir.observability import metrics

router = APIRouter(tags=["events"])

_EVENT_BODY = {
    "required": True,
    "content": {JSON: {"schema": {"$ref": "#/components/schemas/EventIn"}}},
}
_BATCH_BODY = {
    "required": True,
    "content": {
        JSON: {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}}},
        NDJSON: {"schema": {"type": "string", "description": "One event object per line."}},
    },
}


@router.post(
    "/events",
    status_code=202,
    openapi_extra={"requestBody": _EVENT_BODY},
    responses={400: {}, 413: {}, 415: {}, 503: {}},
)
async def post_event(request: Request, ingestor: IngestorDep, settings: SettingsDep) -> Any:
    """Accept one event; 202 only once Kafka acknowledged it (acks=all)."""
    body = await read_body(request, (JSON,), settings.max_event_bytes)
    try:
        payload = parse_json(body.data)
    except ApiError:
        metrics.reject("body")
        raise
    try:
        event = ingestor.prepare(payload, ingestor.window(), now_ms())
    except InvalidEvent as error:
        raise ApiError(400, str(error)) from None
    await ingestor.publish([event])
    return JSONResponse({"status": "accepted", "event_id": event.event_id}, status_code=202)


@router.post(
    "/events/batch",
    openapi_extra={"requestBody": _BATCH_BODY},
    responses={202: {}, 207: {}, 400: {}, 413: {}, 415: {}, 503: {}},
)
async def post_batch(request: Request, ingestor: IngestorDep, settings: SettingsDep) -> Any:
    """Accept a JSON array or NDJSON of events (optionally gzip); valid ones are made durable.

    202 when all are accepted, 207 with per-item results when some are rejected, 400 when none is
    valid.
    """
    body = await read_body(request, (JSON, NDJSON), settings.max_batch_bytes)
    items = _split(body.media_type, body.data)
    if not items:
        raise ApiError(400, "batch: must contain at least one event")
    if len(items) > settings.max_batch_events:
        raise ApiError(413, f"batch: more than {settings.max_batch_events} events")
    window, received_at = ingestor.window(), now_ms()
    results: list[dict[str, Any]] = []
    accepted: list[StoredEvent] = []
    for index, item in enumerate(items):
        try:
            early = item if isinstance(item, InvalidEvent) else _oversized(item, settings)
            if early is not None:  # refused before validation, so counted here
                metrics.reject(metrics.rejection_reason(str(early)))
                raise early
            event = ingestor.prepare(item, window, received_at)
        except InvalidEvent as error:
            results.append({"index": index, "status": "rejected", "error": str(error)})
            continue
        accepted.append(event)
        results.append({"index": index, "status": "accepted", "event_id": event.event_id})
    rejected = len(items) - len(accepted)
    summary: dict[str, Any] = {"accepted": len(accepted), "rejected": rejected, "results": results}
    if not accepted:
        raise ApiError(400, "batch: no valid events", **summary)
    await ingestor.publish(accepted)
    status = 202 if rejected == 0 else 207
    return JSONResponse(
        {"status": "accepted" if status == 202 else "partial", **summary}, status_code=status
    )


def _split(media_type: str, data: bytes) -> list[object]:
    """The batch's items; an NDJSON line that is not JSON becomes that item's error."""
    if media_type == NDJSON:
        items: list[object] = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as error:
                items.append(InvalidEvent(f"line: malformed JSON ({error})"))
        return items
    payload = parse_json(data)
    if not isinstance(payload, list):
        raise ApiError(400, "body: must be a JSON array of events")
    return payload


def _oversized(item: object, settings: Settings) -> InvalidEvent | None:
    if isinstance(item, dict) and len(orjson.dumps(item)) > settings.max_event_bytes:
        return InvalidEvent(f"event: larger than {settings.max_event_bytes} bytes")
    return None


__all__ = ["EventIn", "router"]
