"""Step 2: accumulate decoded records until the batch is full by count, by bytes or by age."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from weir.consumer.decode import DeadLetter, Decoded
from weir.stream import TopicPartition


@dataclass
class Batch:
    """Decoded events and dead letters of every assigned partition, in arrival order, with the
    offset range of each partition (what to commit, and the insert's deduplication token)."""

    events: list[Decoded] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    size_bytes: int = 0
    opened_at: float | None = None
    _ranges: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)

    def extend(self, outcomes: Sequence[Decoded | DeadLetter]) -> None:
        """Add one partition's polled records, in offset order (as a poll returns them): one
        offset-range update per poll instead of one per record."""
        if not outcomes:
            return
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        events, dead, size = self.events, self.dead, 0
        for outcome in outcomes:
            record = outcome.record
            size += len(record.value) + len(record.key or b"")
            if type(outcome) is Decoded:
                events.append(outcome)
            else:
                dead.append(cast(DeadLetter, outcome))
        self.size_bytes += size
        head, tail = outcomes[0].record, outcomes[-1].record
        key = (head.topic, head.partition)
        first, last = self._ranges.get(key, (head.offset, tail.offset))
        self._ranges[key] = (min(first, head.offset), max(last, tail.offset))

    def __len__(self) -> int:
        return len(self.events) + len(self.dead)

    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit once this batch is stored: last + 1."""
        return {TopicPartition(*key): last + 1 for key, (_, last) in self._ranges.items()}

    def dedup_token(self) -> str:
        """Deterministic for a given set of records: topic/partition:first-last, sorted."""
        return ",".join(
            f"{topic}/{partition}:{first}-{last}"
            for (topic, partition), (first, last) in sorted(
                self._ranges.items(), key=lambda item: item[0][1]
            )
        )


@dataclass(frozen=True)
class BatchPolicy:
    max_events: int
    max_bytes: int
    max_seconds: float

    def is_due(self, batch: Batch, now: float | None = None) -> bool:
        if not len(batch):
            return False
        return self.is_full(batch) or self.seconds_left(batch, now) <= 0

    def is_full(self, batch: Batch) -> bool:
        return len(batch) >= self.max_events or batch.size_bytes >= self.max_bytes

    def seconds_left(self, batch: Batch, now: float | None = None) -> float:
        if batch.opened_at is None:
            return self.max_seconds
        elapsed = (time.monotonic() if now is None else now) - batch.opened_at
        return self.max_seconds - elapsed
