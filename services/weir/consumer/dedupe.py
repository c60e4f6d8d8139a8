"""Step 3: drop every event that is already stored or repeated in the batch.

Duplicates of one event share a key, hence a partition, hence this consumer: checking the batch
against itself and against the stored rows is enough for each event to be inserted once, which is
what keeps `countState()` in the rollups exact.
"""

from __future__ import annotations

from collections.abc import Sequence

from weir.consumer.decode import Decoded
from weir.store import Store, TableSpec, existing_event_ids


def unique_in_batch(events: Sequence[Decoded]) -> list[Decoded]:
    seen: set[str] = set()
    unique = []
    for decoded in events:
        if decoded.event.event_id not in seen:
            seen.add(decoded.event.event_id)
            unique.append(decoded)
    return unique


async def not_yet_stored(store: Store, spec: TableSpec, events: list[Decoded]) -> list[Decoded]:
    if not events:
        return events
    stamps = [d.event.timestamp for d in events]
    stored = await existing_event_ids(
        store,
        spec,
        ids=[d.event.event_id for d in events],
        min_ts=min(stamps),
        max_ts=max(stamps),
        event_names=sorted({d.event.event_name for d in events}),
    )
    return [d for d in events if d.event.event_id not in stored]
