"""Step 4: insert a batch once, columnar, retrying with backoff until it is stored."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from weir.consumer.decode import Decoded
from weir.observability import metrics, tracing
from weir.store import Store, TableSpec, UserIds, insert_events, to_columns

log = logging.getLogger(__name__)
T = TypeVar("T")


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
    users: UserIds,
    events: Sequence[Decoded],
    token: str,
    max_backoff: float,
    stopping: asyncio.Event,
    give_up_after_stop: float,
) -> bool:
    """Insert with `insert_deduplication_token`; retry the same rows with the same token (a
    user's dense id, once claimed, never changes, so the rows are the same on every attempt)."""
    stored = [d.event for d in events]
    links = tracing.links_from(decoded.traceparent for decoded in events)

    async def insert() -> bool:
        uids = await users.uids([e.user_id for e in stored])
        columns = to_columns(stored, [d.trace_id for d in events], uids)
        with tracing.insert_span(spec.table, len(events), links):
            await insert_events(store, spec, columns, dedup_token=token)
        return True

    return await with_backoff(insert, "insert", max_backoff, stopping, give_up_after_stop) or False
