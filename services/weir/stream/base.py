"""The event log's interface: one contract, two backends (Kafka and the local on-disk log).

Callers (the API, the consumer loop, `weir dev`) depend only on this module; the backends are
chosen by `weir.stream.make_producer` / `make_consumer`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class StreamError(Exception):
    """Anything the event log could not do."""


class StreamUnavailable(StreamError):
    """The log did not acknowledge in time (broker unreachable, no ack within the timeout).

    A message of a failed `send` was NOT accepted; it may still be written later (the client
    retries), which is harmless because the event id makes it idempotent downstream.
    """


class StreamFull(StreamError):
    """Too many messages are already awaiting acknowledgement: shed load (answer 503)."""


class CommitFailed(StreamError):
    """Offsets were not committed, e.g. the partition was revoked by a rebalance meanwhile."""


@dataclass(frozen=True, slots=True)
class TopicPartition:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Message:
    """What a producer writes. Messages with the same key land in the same partition."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where an acknowledged message was written."""

    topic: str
    partition: int
    offset: int


class Record(Protocol):
    """What a consumer reads: read-only attributes, so that the Kafka backend hands over
    aiokafka's own records instead of copying each one (`bench_consumer.py`: the fetch alone
    80,000-102,000 -> 127,000 records per CPU-second without the copy, the pipeline x1.10).
    `value` is b"" for a tombstone; `timestamp` is milliseconds since the epoch."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...
    @property
    def timestamp(self) -> int: ...


class PlainRecord(NamedTuple):
    """A `Record` built here: the local log's, and what unit tests decode. A named tuple: one
    per message, and a frozen dataclass costs several times more to build."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


# Rebalance hook: receives the partitions being revoked / assigned. A commit inside
# `on_revoked` is allowed (and is how a consumer flushes its batch before losing a partition).
RebalanceCallback = Callable[[frozenset[TopicPartition]], Awaitable[None]]


class Producer(Protocol):
    async def start(self) -> None:
        """Connect. Raises StreamUnavailable when the log cannot be reached."""

    async def stop(self) -> None:
        """Flush every pending send (bounded by the client's own timeouts), then disconnect."""

    async def send(
        self,
        topic: str,
        messages: Sequence[Message],
        timeout: float | None = None,
    ) -> list[Delivery]:
        """Return once EVERY message is acknowledged (acks=all), in the order given.

        Raises StreamFull at once when too many sends await acknowledgement, and
        StreamUnavailable when the acks did not all arrive within `timeout` seconds
        (default: Settings.produce_timeout_seconds). Never waits longer than `timeout`.
        """

    async def ping(
        self,
        timeout: float | None = None,
        topic: str | None = None,
    ) -> None:
        """Readiness: raise StreamUnavailable unless the log answers (and `topic` exists)."""


class Consumer(Protocol):
    """A member of a consumer group reading one topic. Offsets are committed only explicitly."""

    async def start(self) -> None:
        """Join the group. Partitions arrive through `on_assigned`."""

    async def stop(self) -> None:
        """Call `on_revoked` with the current assignment (last chance to commit), then leave."""

    async def getmany(
        self, timeout_ms: int = 1000, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        """Next records of the assigned partitions; `{}` when none arrived within timeout_ms."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit, per partition, the NEXT offset to read (last processed + 1).

        Raises CommitFailed when the group no longer owns a partition.
        """

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Make the next `getmany` of `partition` start at `offset`."""

    def assignment(self) -> frozenset[TopicPartition]:
        """Partitions this member currently owns."""

    async def lag(self) -> dict[TopicPartition, int]:
        """Per assigned partition: end offset minus committed offset (the whole log if none)."""
