"""In-memory stand-ins for unit tests of the API's HTTP logic. Integration tests use real Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from weir.stream import Delivery, Message, StreamError


class RecordingProducer:
    """Acknowledges every send at once (or fails it) and remembers what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.failure: StreamError | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(
        self, topic: str, messages: Sequence[Message], timeout: float | None = None
    ) -> list[Delivery]:
        if self.failure is not None:
            raise self.failure
        start = len(self.sent)
        self.sent.extend((topic, m) for m in messages)
        return [Delivery(topic, 0, start + i) for i in range(len(messages))]

    async def ping(self, timeout: float | None = None, topic: str | None = None) -> None:
        if self.failure is not None:
            raise self.failure


class StalledProducer(RecordingProducer):
    """Holds every send until released: the requests stay in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def send(
        self, topic: str, messages: Sequence[Message], timeout: float | None = None
    ) -> list[Delivery]:
        await self.release.wait()
        return await super().send(topic, messages, timeout)


class IdleStore:
    """Answers pings only: the event routes never touch the store."""

    def __init__(self) -> None:
        self.healthy = True

    async def ping(self) -> None:
        if not self.healthy:
            raise ConnectionError("connection refused")

    async def close(self) -> None:
        return None


class EmptyStore(IdleStore):
    """Answers every /metrics query with zero counts (for tests of the route's HTTP logic)."""

    async def query_rows(self, sql: str, parameters: object = None) -> list[tuple[int, int]]:
        return [(0, 0)]


class SlowStore(EmptyStore):
    """Zero counts after `seconds`: a store whose share of an answer is known."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def query_rows(self, sql: str, parameters: object = None) -> list[tuple[int, int]]:
        await asyncio.sleep(self.seconds)
        return await super().query_rows(sql, parameters)
