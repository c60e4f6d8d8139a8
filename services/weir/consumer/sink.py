"""Step 4: insert a batch once, columnar, retrying with backoff until it is stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from weir.consumer.decode import Decoded
from weir.observability import metrics, tracing
from weir.store.base import Store
from weir.store.schema import INSERT_COLUMNS, TableSpec, insert_events

log = logging.getLogger(__name__)
T = TypeVar("T")


def to_columns(events: Sequence[Decoded]) -> list[list[Any]]:
    """The raw table's columns for these events (insert_time is the table's default)."""
    columns: dict[str, list[Any]] = {name: [] for name in INSERT_COLUMNS}
    for decoded in events:
        event = decoded.event.event
        columns["event_id"].append(decoded.event.event_id)
        columns["event_name"].append(event.event_name)
        columns["channel"].append(event.channel)
        columns["campaign_id"].append(event.campaign_id or "")
        columns["user_id"].append(event.user_id)
        columns["timestamp"].append(event.timestamp)
        columns["tags"].append(list(event.tags))
        columns["metadata"].append(orjson.dumps(event.metadata).decode())
        columns["received_at"].append(
            datetime.fromtimestamp(decoded.event.received_at_ms / 1000, UTC)
        )
        columns["trace_id"].append(decoded.trace_id)
    return [columns[name] for name in INSERT_COLUMNS]


async def with_backoff(
    operation: Callable[[], Awaitable[T]],
    what: str,
    max_backoff: float,
    stopping: asyncio.Event,
    give_up_after_stop: float,
) -> T | None:
    """Run a store operation until it succeeds, backing off exponentially between attempts.

    Returns None only when asked to stop and the store stayed unavailable for
    `give_up_after_stop` seconds: the batch is then left uncommitted, so it is redelivered.
    """
    delay = 0.1
    stop_deadline: float | None = None
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await operation()
        except Exception as error:  # any store failure: keep the batch, back off, retry
            metrics.INSERT_ERRORS.inc()
            log.warning(f"{what} failed, retrying", extra={"error": str(error), "retry_in": delay})
        if stopping.is_set():
            stop_deadline = stop_deadline or loop.time() + give_up_after_stop
            if loop.time() >= stop_deadline:
                return None
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff)


async def insert_until_stored(
    store: Store,
    spec: TableSpec,
    events: Sequence[Decoded],
    token: str,
    max_backoff: float,
    stopping: asyncio.Event,
    give_up_after_stop: float,
) -> bool:
    """Insert with `insert_deduplication_token`; retry the same rows with the same token."""
    columns = to_columns(events)
    links = tracing.links_from(decoded.record.headers for decoded in events)

    async def insert() -> bool:
        with tracing.insert_span(spec.table, len(events), links):
            await insert_events(store, spec, columns, dedup_token=token)
        return True

    return await with_backoff(insert, "insert", max_backoff, stopping, give_up_after_stop) or False
