"""The OpenAPI document says what the API does (issue 12); tests/api/test_fuzz.py holds the whole
document to the behaviour, these pin the points the issue named."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.api.conftest import app_client
from tests.api.doubles import IdleStore, RecordingProducer
from weir.core.config import Settings
from weir.core.keys import ApiKey, KeyKind, digest


def event(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"event_name": "signup", "channel": "web", "user_id": "u1", "timestamp": now, **changes}


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in doc["paths"].values() for op in item.values()]


async def test_metrics_is_documented_as_it_answers(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    metrics = doc["paths"]["/metrics"]["get"]
    params = {p["name"]: p for p in metrics["parameters"]}
    assert params["event_name"]["required"] is True
    assert params["event_name"]["schema"] == {"type": "string", "minLength": 1}
    assert params["from"]["schema"] == {"type": "integer", "minimum": 0}
    assert params["group_by"]["schema"] == {"enum": ["channel", "hour", "day"]}
    assert "400" in metrics["responses"]
    assert all("422" not in op["responses"] for op in operations(doc))
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    error = metrics["responses"]["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    empty = await client.get("/metrics", params={"event_name": "x", "from": ""})
    assert empty.status_code == 400 and empty.json()["error"].startswith("from: must be an int")


async def test_the_batch_route_documents_only_what_it_returns(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    batch = doc["paths"]["/events/batch"]["post"]
    assert set(batch["responses"]) == {"202", "207", "400", "408", "413", "415", "503"}
    body = batch["requestBody"]["content"]["application/json"]["schema"]
    assert body["minItems"] == 1 and body["maxItems"] == 5  # the fixture's WEIR_MAX_BATCH_EVENTS
    empty = await client.post("/events/batch", json=[])
    assert empty.status_code == 400


async def test_the_timestamp_window_is_in_the_schema(client: httpx.AsyncClient) -> None:
    before = int(time.time())
    doc = (await client.get("/openapi.json")).json()
    stamp = doc["components"]["schemas"]["EventIn"]["properties"]["timestamp"]
    now = stamp["examples"][0]
    assert before <= now <= int(time.time())
    assert stamp["minimum"] == now - 30 * 86400 and stamp["maximum"] == now + 60
    assert stamp["type"] == "integer"


async def test_whole_float_timestamps_are_accepted_as_the_schema_allows(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    whole = event()
    as_float = await client.post("/events", json=whole | {"timestamp": whole["timestamp"] * 1.0})
    as_int = await client.post("/events", json=whole)
    assert as_float.status_code == as_int.status_code == 202
    assert as_float.json()["event_id"] == as_int.json()["event_id"]  # the same event
    half = await client.post("/events", json=whole | {"timestamp": whole["timestamp"] + 0.5})
    assert half.status_code == 400 and half.json()["error"].startswith("timestamp: ")


async def test_keys_are_in_the_document_only_when_configured(
    producer: RecordingProducer, idle_store: IdleStore
) -> None:
    open_doc = await document(Settings(), producer, idle_store)
    assert "securitySchemes" not in open_doc["components"]
    assert all("security" not in op and "401" not in op["responses"] for op in operations(open_doc))
    key = ApiKey(id="w", kind=KeyKind.WRITE, sha256=digest("secret"))
    keyed = await document(Settings(api_keys=[key]), producer, idle_store)
    assert set(keyed["components"]["securitySchemes"]) == {"key", "basicKey"}
    for path in ("/events", "/events/batch", "/v1/track", "/v1/batch"):
        assert {"401", "403", "429"} <= set(keyed["paths"][path]["post"]["responses"])
        assert keyed["paths"][path]["post"]["security"]
    assert "security" not in keyed["paths"]["/health"]["get"]


async def document(
    settings: Settings, producer: RecordingProducer, store: IdleStore
) -> dict[str, Any]:
    async with app_client(settings, producer, store) as http:
        doc: dict[str, Any] = (await http.get("/openapi.json")).json()
        return doc
