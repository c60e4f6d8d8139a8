"""Producer over the local log: frames appended to the partition file, acked once fsync'd."""

from __future__ import annotations

import asyncio
import itertools
import time
import zlib
from collections.abc import Sequence

from weir.core.config import Settings
from weir.stream.base import Delivery, Message, StreamFull, StreamUnavailable
from weir.stream.local.log import LocalLog
from weir.stream.local.segment import encode


class LocalProducer:
    def __init__(self, settings: Settings, log: LocalLog) -> None:
        self._log = log
        self._default_timeout = settings.produce_timeout_seconds
        self._max_pending = settings.producer_max_pending
        self._pending = 0
        self._round_robin = itertools.count()
        self._unsynced: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        if self._unsynced:
            await asyncio.wait(self._unsynced)

    async def send(
        self,
        topic: str,
        messages: Sequence[Message],
        timeout: float | None = None,
    ) -> list[Delivery]:
        if self._pending + len(messages) > self._max_pending:
            raise StreamFull(f"{self._pending} messages already await fsync")
        segments = self._log.topic(topic)
        now_ms = time.time_ns() // 1_000_000
        deliveries, touched = [], set()
        for message in messages:
            partition = self._partition(message.key, len(segments))
            frame = encode(now_ms, message.key, message.value, message.headers)
            deliveries.append(Delivery(topic, partition, segments[partition].append(frame)))
            touched.add(segments[partition])
        synced = self._track(self._log.durable(touched), len(messages))
        done, _ = await asyncio.wait({synced}, timeout=self._timeout(timeout))
        if not done:
            raise StreamUnavailable("local log did not fsync in time")
        if error := synced.exception():
            raise error
        return deliveries

    async def ping(
        self,
        timeout: float | None = None,
        topic: str | None = None,
    ) -> None:
        if not self._log.directory.is_dir():
            raise StreamUnavailable(f"local log directory {self._log.directory} is gone")

    def _timeout(self, timeout: float | None) -> float:
        return self._default_timeout if timeout is None else timeout

    def _partition(self, key: bytes | None, partitions: int) -> int:
        if key is None:
            return next(self._round_robin) % partitions
        return zlib.crc32(key) % partitions  # stable across processes, unlike hash()

    def _track(self, synced: asyncio.Future[None], count: int) -> asyncio.Future[None]:
        self._pending += count
        self._unsynced.add(synced)

        def release(future: asyncio.Future[None]) -> None:
            self._pending -= count
            self._unsynced.discard(future)
            if not future.cancelled():
                future.exception()  # retrieved: a timed-out sender no longer looks at it

        synced.add_done_callback(release)
        return synced
