"""Step 2: accumulate records until the batch is full by count, by bytes or by age."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from weir.stream.base import Record, TopicPartition


@dataclass
class Batch:
    """Records of every assigned partition, in arrival order, with the offsets to commit."""

    records: list[Record] = field(default_factory=list)
    size_bytes: int = 0
    opened_at: float | None = None

    def add(self, record: Record) -> None:
        if self.opened_at is None:
            self.opened_at = time.monotonic()
        self.records.append(record)
        self.size_bytes += len(record.value) + len(record.key or b"")

    def __len__(self) -> int:
        return len(self.records)

    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset to commit once this batch is stored: last + 1."""
        offsets: dict[TopicPartition, int] = {}
        for record in self.records:
            tp = record.topic_partition
            offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
        return offsets

    def dedup_token(self) -> str:
        """Deterministic for a given set of records: topic/partition:first-last, sorted."""
        ranges: dict[TopicPartition, tuple[int, int]] = {}
        for record in self.records:
            tp = record.topic_partition
            first, last = ranges.get(tp, (record.offset, record.offset))
            ranges[tp] = (min(first, record.offset), max(last, record.offset))
        return ",".join(
            f"{tp.topic}/{tp.partition}:{first}-{last}"
            for tp, (first, last) in sorted(ranges.items(), key=lambda item: item[0].partition)
        )


@dataclass(frozen=True)
class BatchPolicy:
    max_events: int
    max_bytes: int
    max_seconds: float

    def is_due(self, batch: Batch, now: float | None = None) -> bool:
        if not batch.records:
            return False
        if len(batch) >= self.max_events or batch.size_bytes >= self.max_bytes:
            return True
        return self.seconds_left(batch, now) <= 0

    def seconds_left(self, batch: Batch, now: float | None = None) -> float:
        if batch.opened_at is None:
            return self.max_seconds
        elapsed = (time.monotonic() if now is None else now) - batch.opened_at
        return self.max_seconds - elapsed
