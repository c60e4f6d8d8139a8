"""GET /metrics: total events and unique users, optionally grouped by channel, hour or day."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

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


@router.get("/metrics", responses={400: {}})
async def metrics(
    _key: ReadKey,
    store: StoreDep,
    spec: TableSpecDep,
    event_name: Annotated[str | None, Query(description="Event to count (required).")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="Unix seconds, inclusive.")
    ] = None,
    to: Annotated[str | None, Query(description="Unix seconds, inclusive.")] = None,
    group_by: Annotated[str | None, Query(description="channel, hour or day.")] = None,
    channel: Annotated[str | None, Query(description="Only this channel.")] = None,
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
    try:
        return await _answer(store, spec, query)
    except StoreError as error:
        raise ApiError(
            503,
            "clickhouse: the query failed, retry later",
            headers={"Retry-After": "1"},
            detail=repr(error),
        ) from None


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
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}: must be an integer unix timestamp (got {raw!r})") from None
    if value < 0:
        raise ApiError(400, f"{name}: must not be negative")
    return value
