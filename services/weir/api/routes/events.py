"""POST /events and POST /events/batch: the hot path.

Plain Starlette routes on the FastAPI app rather than FastAPI path operations: FastAPI's
per-request machinery (dependency resolution, response handling) took about 40 % of the CPU of a
POST /events (measured in-process: ~350 µs against ~220 µs per request). The bodies are read raw
anyway (limits, gzip, NDJSON), so nothing of FastAPI's validation is lost; their OpenAPI
operations are written out below (`OPENAPI_PATHS`) and merged into the app's document.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from weir.api.body import JSON, NDJSON, parse_json, read_body
from weir.api.deps import hot_path_parts
from weir.api.errors import ApiError
from weir.api.ingest import now_ms
from weir.core.config import Settings
from weir.core.event import EventIn, InvalidEvent, StoredEvent, accept_all_fast, accept_fast
from weir.core.keys import KeyKind
from weir.observability import metrics


async def post_event(request: Request) -> Response:
    """Accept one event; 202 only once Kafka acknowledged it (acks=all)."""
    ingestor, settings, auth = hot_path_parts(request)
    key = auth.require(request, KeyKind.WRITE)
    key.charge(1)
    body = await read_body(request, (JSON,), settings.max_event_bytes)
    window = ingestor.window()
    fast = accept_fast(body.data, window, now_ms())
    if fast is not None:
        await ingestor.publish([fast], window)
        return json_response({"status": "accepted", "event_id": fast.event_id}, 202)
    try:  # not valid as it is: the contract's validation explains why
        payload = parse_json(body.data)
    except ApiError:
        metrics.reject("body")
        raise
    try:
        event = ingestor.prepare(payload, window, now_ms())
    except InvalidEvent as error:
        raise ApiError(400, str(error)) from None
    await ingestor.publish([event], window)
    return json_response({"status": "accepted", "event_id": event.event_id}, 202)


async def post_batch(request: Request) -> Response:
    """Accept a JSON array or NDJSON of events (optionally gzip); valid ones are made durable.

    202 when all are accepted, 207 with per-item results when some are rejected, 400 when none is
    valid.
    """
    ingestor, settings, auth = hot_path_parts(request)
    key = auth.require(request, KeyKind.WRITE)
    body = await read_body(request, (JSON, NDJSON), settings.max_batch_bytes)
    window, received_at = ingestor.window(), now_ms()
    if body.media_type == JSON:
        fast = accept_all_fast(body.data, window, received_at, settings.max_event_bytes)
        if fast and len(fast) <= settings.max_batch_events:
            key.charge(len(fast))
            await ingestor.publish(fast, window)
            every = [
                {"index": index, "status": "accepted", "event_id": event.event_id}
                for index, event in enumerate(fast)
            ]
            return json_response(
                {"status": "accepted", "accepted": len(fast), "rejected": 0, "results": every},
                202,
            )
    items = _split(body.media_type, body.data)
    if not items:
        raise ApiError(400, "batch: must contain at least one event")
    if len(items) > settings.max_batch_events:
        raise ApiError(413, f"batch: more than {settings.max_batch_events} events")
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
    key.charge(len(accepted))
    await ingestor.publish(accepted, window)
    status = 202 if rejected == 0 else 207
    return json_response({"status": "accepted" if status == 202 else "partial", **summary}, status)


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
    if not isinstance(item, dict):
        return None
    try:
        size = len(orjson.dumps(item))
    except orjson.JSONEncodeError:  # nested beyond orjson's limit: validation names the field
        return None
    if size > settings.max_event_bytes:
        return InvalidEvent(f"event: larger than {settings.max_event_bytes} bytes")
    return None


def json_response(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


class _Route(Route):
    """Records itself in the scope as FastAPI's routes do: metrics and spans are labelled by
    `scope["route"].path`."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


routes = [
    _Route("/events", post_event, methods=["POST"]),
    _Route("/events/batch", post_batch, methods=["POST"]),
]


# The OpenAPI operations of the two routes (api/openapi.py merges them into the document).
_REF = "#/components/schemas/"
_SCHEMAS: dict[str, Any] = {
    "Accepted": {
        "type": "object",
        "required": ["status", "event_id"],
        "properties": {"status": {"const": "accepted"}, "event_id": {"type": "string"}},
    },
    "BatchAnswer": {
        "type": "object",
        "required": ["status", "accepted", "rejected", "results"],
        "properties": {
            "status": {"enum": ["accepted", "partial"]},
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 0},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "status"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "status": {"enum": ["accepted", "rejected"]},
                        "event_id": {"type": "string"},
                        "error": {"type": "string"},
                    },
                },
            },
        },
    },
}
_DESCRIBED = {
    "202": "Accepted: durable in Kafka (acks=all).",
    "207": "Some events accepted, some rejected (per-item `results`).",
    "400": "Invalid body or event: `error` names the field and the rule.",
    "401": "No API key, or an unknown one.",
    "403": "A key of the other kind (a read key).",
    "408": "The body did not arrive within the body timeout.",
    "413": "Body or batch over its limit, or more events than the key's burst.",
    "415": "Content type or encoding not supported.",
    "429": "Over the key's quota; see Retry-After and RateLimit-*.",
    "503": "Kafka did not acknowledge in time, or the worker is overloaded; see Retry-After.",
}
_SECURITY: list[dict[str, list[str]]] = [{"key": []}, {"basicKey": []}]


def _answers(ok: dict[str, str]) -> dict[str, Any]:
    answers: dict[str, Any] = {
        code: {
            "description": _DESCRIBED[code],
            "content": {JSON: {"schema": {"$ref": _REF + name}}},
        }
        for code, name in ok.items()
    }
    for code in ("400", "401", "403", "408", "413", "415", "429", "503"):
        answers[code] = {"description": _DESCRIBED[code]}  # the error schema: api/openapi.py
    return answers


def openapi_schemas() -> dict[str, Any]:
    return _SCHEMAS


def openapi_paths(settings: Settings) -> dict[str, Any]:
    batch = {
        "type": "array",
        "items": {"$ref": _REF + "EventIn"},
        "minItems": 1,
        "maxItems": settings.max_batch_events,
    }
    return {
        "/events": {
            "post": {
                "tags": ["events"],
                "summary": "Post Event",
                "description": post_event.__doc__,
                "operationId": "post_event_events_post",
                "security": _SECURITY,
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": _REF + "EventIn"}}},
                },
                "responses": _answers({"202": "Accepted"}),
            }
        },
        "/events/batch": {
            "post": {
                "tags": ["events"],
                "summary": "Post Batch",
                "description": _BATCH_DESCRIPTION,
                "operationId": "post_batch_events_batch_post",
                "security": _SECURITY,
                "requestBody": {"required": True, "content": {JSON: {"schema": batch}}},
                "responses": _answers({"202": "BatchAnswer", "207": "BatchAnswer"}),
            }
        },
    }


_BATCH_DESCRIPTION = (
    (post_batch.__doc__ or "").strip()
    + "\n\nThe same events may come as `application/x-ndjson` (one event object per line; a line "
    "that is not JSON is that item's error), and either body with `Content-Encoding: gzip`. "
    "Bodies are limited in bytes as sent and as inflated (413)."
)

__all__ = ["EventIn", "openapi_paths", "openapi_schemas", "routes"]
