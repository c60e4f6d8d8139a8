"""GET /metrics: total events and unique users, optionally grouped by channel, hour or day."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from weir.api.deps import ReadKey, StoreDep, TableSpecDep
from weir.api.errors import ApiError
from weir.core.event import CHANNELS
from weir.store import (
    GroupBy,
    MetricsQuery,
    Store,
    StoreError,
    TableSpec,
    query_groups,
    query_totals,
)

router = APIRouter(tags=["metrics"])


_UNIX = {"type": "integer", "minimum": 0}
_COUNTS = {
    "total_events": {"type": "integer", "minimum": 0},
    "unique_users": {"type": "integer", "minimum": 0},
}
# The parameters are parsed here (messages that name the parameter and rule, a 400 not a 422),
# so FastAPI's own schema of them is hidden and this, the contract, is published instead.
PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "event_name",
        "in": "query",
        "required": True,
        "description": "The event to count (any name ingestion accepts).",
        "schema": {"type": "string", "minLength": 1},
    },
    {
        "name": "from",
        "in": "query",
        "description": "Unix seconds, inclusive; not after `to`.",
        "schema": _UNIX,
    },
    {
        "name": "to",
        "in": "query",
        "description": "Unix seconds, inclusive; not before `from`.",
        "schema": _UNIX,
    },
    {
        "name": "group_by",
        "in": "query",
        "description": "One row per channel, hour or day.",
        "schema": {"enum": ["channel", "hour", "day"]},
    },
    {
        "name": "channel",
        "in": "query",
        "description": "Only this channel.",
        "schema": {"enum": list(CHANNELS)},
    },
]
ANSWER: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "required": ["event_name", "total_events", "unique_users"],
            "additionalProperties": False,
            "properties": {"event_name": {"type": "string"}, "from": _UNIX, "to": _UNIX} | _COUNTS,
        },
        {
            "type": "object",
            "required": ["event_name", "from", "to", "grouped_by", "data"],
            "additionalProperties": False,
            "properties": {
                "event_name": {"type": "string"},
                "from": {"anyOf": [_UNIX, {"type": "null"}]},
                "to": {"anyOf": [_UNIX, {"type": "null"}]},
                "grouped_by": {"enum": ["channel", "hour", "day"]},
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["group", "total_events", "unique_users"],
                        "additionalProperties": False,
                        "properties": {"group": {"type": "string"}} | _COUNTS,
                    },
                },
            },
        },
    ]
}
_HIDDEN = {"include_in_schema": False}


@router.get(
    "/metrics",
    openapi_extra={"parameters": PARAMETERS},
    responses={
        200: {
            "content": {"application/json": {"schema": ANSWER}},
            "headers": {
                "Server-Timing": {
                    "description": "`store;dur=<ms>`: the time the answer spent in the store.",
                    "schema": {"type": "string"},
                }
            },
        },
        400: {"description": "A parameter breaks its rule: `error` names it."},
        401: {"description": "No API key, or an unknown one."},
        403: {"description": "A key of the other kind (a write key)."},
        429: {"description": "Over the key's quota; see Retry-After and RateLimit-*."},
        503: {"description": "The query failed, or the worker is overloaded; see Retry-After."},
    },
)
async def metrics(
    _key: ReadKey,
    response: Response,
    store: StoreDep,
    spec: TableSpecDep,
    event_name: Annotated[str | None, Query(**_HIDDEN)] = None,
    from_: Annotated[str | None, Query(alias="from", **_HIDDEN)] = None,
    to: Annotated[str | None, Query(**_HIDDEN)] = None,
    group_by: Annotated[str | None, Query(**_HIDDEN)] = None,
    channel: Annotated[str | None, Query(**_HIDDEN)] = None,
) -> dict[str, Any]:
    """Exact counts: each distinct event once, each distinct user once."""
    if not event_name:
        raise ApiError(400, "event_name: is required")
    start, end = _unix("from", from_), _unix("to", to)
    if start is not None and end is not None and start > end:
        raise ApiError(400, "from: must not be after to")
    if group_by is not None and group_by not in ("channel", "hour", "day"):
        raise ApiError(400, f"group_by: must be one of channel, hour, day (got {group_by!r})")
    if channel is not None and channel not in CHANNELS:
        raise ApiError(400, f"channel: must be one of {', '.join(CHANNELS)} (got {channel!r})")
    query = MetricsQuery(
        event_name=event_name,
        from_ts=start,
        to_ts=end,
        group_by=GroupBy(group_by) if group_by else None,
        channel=channel,
    )
    began = time.perf_counter()
    try:
        answer = await _answer(store, spec, query)
    except StoreError as error:
        raise ApiError(
            503,
            "clickhouse: the query failed, retry later",
            headers={"Retry-After": "1"},
            detail=repr(error),
        ) from None
    # The store's share of the answer (W3C Server-Timing): what a slow answer's time was spent
    # on is read off the response, the rest is HTTP, validation and JSON.
    store_ms = (time.perf_counter() - began) * 1000
    response.headers["Server-Timing"] = f"store;dur={store_ms:.1f}"
    return answer


async def _answer(store: Store, spec: TableSpec, query: MetricsQuery) -> dict[str, Any]:
    event_name, start, end = query.event_name, query.from_ts, query.to_ts
    if query.group_by is None:
        total = await query_totals(store, spec, query)
        body: dict[str, Any] = {"event_name": event_name}
        if start is not None:
            body["from"] = start
        if end is not None:
            body["to"] = end
        body["total_events"], body["unique_users"] = total.total_events, total.unique_users
        return body
    groups = await query_groups(store, spec, query)
    return {
        "event_name": event_name,
        "from": start,
        "to": end,
        "grouped_by": str(query.group_by),
        "data": [
            {"group": g.group, "total_events": g.total_events, "unique_users": g.unique_users}
            for g in groups
        ],
    }


def _unix(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if not _INTEGER.fullmatch(raw):  # not int() alone: it also reads " 5", "5_000", other scripts
        raise ApiError(400, f"{name}: must be an integer unix timestamp (got {raw!r})")
    value = int(raw)
    if value < 0:
        raise ApiError(400, f"{name}: must not be negative")
    return value


_INTEGER = re.compile(r"-?[0-9]+")
