"""Step 3: drop every event that is already stored or repeated in the batch.

Duplicates of one event share a key, hence a partition, hence this consumer: checking the batch
against itself and against the stored rows is enough for each event to be inserted once, which is
what keeps `countState()` in the rollups exact.
"""

from __future__ import annotations

import heapq
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


# The lookup reads the primary-key ranges of the batch's timestamps: at most this many ranges,
# split where no event of the batch falls for longer than MIN_GAP_SECONDS.
MAX_RANGES = 16
MIN_GAP_SECONDS = 60


async def not_yet_stored(store: Store, spec: TableSpec, events: list[Decoded]) -> list[Decoded]:
    if not events:
        return events
    stored = await existing_event_ids(
        store,
        spec,
        ids=[d.event.event_id for d in events],
        time_ranges=time_ranges([d.event.timestamp for d in events]),
        event_names=sorted({d.event.event_name for d in events}),
    )
    return [d for d in events if d.event.event_id not in stored]


def time_ranges(stamps: Sequence[int]) -> list[tuple[int, int]]:
    """The timestamps as at most MAX_RANGES inclusive ranges, split at the widest gaps.

    Live traffic arrives near now with a few late events (devices that were offline): one range
    from the oldest to the newest would make the lookup read every row in between, a range per
    cluster reads only the clusters.
    """
    ordered = sorted(set(stamps))
    if not ordered:
        return []
    gaps = [(ordered[i + 1] - ordered[i], i) for i in range(len(ordered) - 1)]
    widest = heapq.nlargest(MAX_RANGES - 1, (g for g in gaps if g[0] > MIN_GAP_SECONDS))
    ranges, start = [], 0
    for _, index in sorted(widest, key=lambda gap: gap[1]):
        ranges.append((ordered[start], ordered[index]))
        start = index + 1
    ranges.append((ordered[start], ordered[-1]))
    return ranges
