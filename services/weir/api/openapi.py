"""The OpenAPI document is the API's contract: what it says a route accepts is accepted, what it
forbids is refused with a 4xx, and every answer is one it lists, in the shape it gives.

FastAPI writes most of it from the routes; this module adds what FastAPI cannot know and removes
what is not true of Weir:
- the ingestion routes (plain Starlette routes, routes/events.py) and the event schema;
- the timestamp window as `minimum`/`maximum`, for the server's clock when the document is
  fetched (the window moves with the clock, so the document is not cached with it);
- one error schema (`Error`) on every 4xx and 5xx answer; no `422` (validation answers `400`);
- keys: the security schemes, and 401/403/429, only when keys are configured (open mode has
  none of them).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from weir.api.routes import events
from weir.core.config import Settings
from weir.core.event import EventIn, TimeWindow

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "What is wrong, naming the field or rule."},
        "request_id": {"type": "string", "description": "Quote it: the log has the detail."},
    },
}
_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_KEY_ANSWERS = {
    "401": "No API key, or an unknown one.",
    "403": "A key of the other kind.",
    "429": "Over the key's quota; see Retry-After and RateLimit-*.",
}
_KEYS_ONLY = tuple(_KEY_ANSWERS)


def install_document(app: FastAPI, settings: Settings) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(build(), settings)
        auth = getattr(app.state, "auth", None)
        ingestor = getattr(app.state, "ingestor", None)
        window = ingestor.window() if ingestor is not None else None
        return _for_now(app.openapi_schema, window, open_=auth is None or auth.open)

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(doc: dict[str, Any], settings: Settings) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["EventIn"] = EventIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["Error"] = ERROR_SCHEMA
    schemas.update(events.openapi_schemas())
    doc["paths"] = events.openapi_paths(settings) | doc.get("paths", {})
    for operation in _operations(doc):
        responses = operation.setdefault("responses", {})
        responses.pop("422", None)
        if operation.get("security"):  # a route that takes a key (api/deps.py, api/auth.py)
            for code, description in _KEY_ANSWERS.items():
                responses.setdefault(code, {"description": description})
        for code, response in responses.items():
            if code[0] in "45":
                response.setdefault("content", _ERROR_CONTENT)
    return doc


def _for_now(doc: dict[str, Any], window: TimeWindow | None, open_: bool) -> dict[str, Any]:
    """The cached document with the window of `window.now`; in open mode, without keys."""
    if window is None and not open_:
        return doc
    doc = copy.deepcopy(doc)
    if window is not None:
        timestamp = doc["components"]["schemas"]["EventIn"]["properties"]["timestamp"]
        timestamp["minimum"] = window.now - window.max_age_seconds
        timestamp["maximum"] = window.now + window.max_skew_seconds
        timestamp["examples"] = [window.now]
    if open_:
        doc["components"].pop("securitySchemes", None)
        for operation in _operations(doc):
            operation.pop("security", None)
            for code in _KEYS_ONLY:
                operation["responses"].pop(code, None)
    return doc


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in doc.get("paths", {}).values() for op in item.values()]
