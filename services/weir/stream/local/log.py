"""The local, disk-backed event log shared in-process by producers and consumers.

Layout under the directory: `<topic>/<partition>.log` (see local_segment) and
`<topic>/groups/<group>.json` (committed offsets). One `LocalLog` per directory per process
(`LocalLog.open`), so `weir dev`'s API and consumer loop see the same log and wake-ups.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from weir.stream.base import StreamUnavailable
from weir.stream.local.group import Group, fsync_directory
from weir.stream.local.segment import Segment

DEFAULT_PARTITIONS = 3


def _fsync_all(segments: set[Segment]) -> None:
    for segment in segments:
        segment.fsync()


class LocalLog:
    _open_logs: ClassVar[dict[Path, LocalLog]] = {}

    @classmethod
    def open(cls, directory: Path, default_partitions: int = DEFAULT_PARTITIONS) -> LocalLog:
        """The process-wide log of `directory`, opened on first use."""
        key = directory.resolve()
        if key not in cls._open_logs:
            cls._open_logs[key] = cls(key, default_partitions)
        return cls._open_logs[key]

    def __init__(self, directory: Path, default_partitions: int = DEFAULT_PARTITIONS) -> None:
        self.directory = directory
        self.default_partitions = default_partitions
        directory.mkdir(parents=True, exist_ok=True)
        self._topics: dict[str, list[Segment]] = {}
        self._groups: dict[tuple[str, str], Group] = {}
        self._dirty: set[Segment] = set()
        self._next_sync: asyncio.Future[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.sync_rounds = 0  # fsync rounds so far: far fewer than sends under load

    def close(self) -> None:
        for segments in self._topics.values():
            for segment in segments:
                segment.close()
        self._topics.clear()
        self._open_logs.pop(self.directory, None)

    def topic(self, name: str, partitions: int | None = None) -> list[Segment]:
        """The partitions of `name`, created on first use (existing ones keep their count)."""
        if name not in self._topics:
            path = self.directory / name
            existing = sorted(path.glob("*.log"), key=lambda p: int(p.stem))
            count = len(existing) or partitions or self.default_partitions
            path.mkdir(parents=True, exist_ok=True)
            self._topics[name] = [Segment(path / f"{index}.log") for index in range(count)]
            if not existing:
                fsync_directory(path)
        return self._topics[name]

    def group(self, topic: str, group: str) -> Group:
        if (topic, group) not in self._groups:
            offsets_path = self.directory / topic / "groups" / f"{group}.json"
            self._groups[topic, group] = Group(len(self.topic(topic)), offsets_path)
        return self._groups[topic, group]

    # --- durability: group the fsyncs of concurrent appends ---------------------------------

    def durable(self, segments: set[Segment]) -> asyncio.Future[None]:
        """A future done when everything appended to `segments` so far is fsync'd."""
        if not segments:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        self._dirty |= segments
        if self._next_sync is None:
            self._next_sync = asyncio.get_running_loop().create_future()
        waiter = self._next_sync
        if self._syncer is None or self._syncer.done():
            self._syncer = asyncio.create_task(self._sync_rounds())
        return waiter

    async def _sync_rounds(self) -> None:
        # While one fsync round runs in a thread, new appends gather for the next round.
        while self._dirty and self._next_sync is not None:
            dirty, self._dirty = self._dirty, set()
            waiter, self._next_sync = self._next_sync, None
            marks = {segment: segment.end for segment in dirty}
            try:
                await asyncio.to_thread(_fsync_all, dirty)
            except OSError as error:
                waiter.set_exception(StreamUnavailable(f"local log fsync failed: {error!r}"))
                continue
            for segment, end in marks.items():
                segment.durable = max(segment.durable, end)
            self.sync_rounds += 1
            waiter.set_result(None)
            self.wake()

    # --- wake-ups ------------------------------------------------------------------------------

    def changed(self) -> asyncio.Event:
        """An event set at the next change (new durable records, a rebalance)."""
        return self._changed

    def wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
