"""Ground truth for /metrics, computed by brute force over the distinct accepted events."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any


def bucket(ts: int, group_by: str) -> str:
    size = 3600 if group_by == "hour" else 86400
    return datetime.fromtimestamp(ts - ts % size, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_metrics(
    events: dict[str, dict[str, Any]],
    event_name: str,
    start: int | None = None,
    end: int | None = None,
    group_by: str | None = None,
    channel: str | None = None,
) -> Any:
    """`events`: event_id -> event as posted. Same shapes as the API's answers."""
    chosen = [
        e
        for e in events.values()
        if e["event_name"] == event_name
        and (start is None or e["timestamp"] >= start)
        and (end is None or e["timestamp"] <= end)
        and (channel is None or e["channel"] == channel)
    ]
    if group_by is None:
        return len(chosen), len({e["user_id"] for e in chosen})
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in chosen:
        key = e["channel"] if group_by == "channel" else bucket(e["timestamp"], group_by)
        groups[key].append(e)
    return [
        {"group": key, "total_events": len(rows), "unique_users": len({r["user_id"] for r in rows})}
        for key, rows in sorted(groups.items())
    ]
