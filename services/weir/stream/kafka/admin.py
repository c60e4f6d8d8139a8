"""Kafka topic administration (tests, `weir migrate`, the operator), over aiokafka's admin client.

async with TopicAdmin(settings) as admin:
    await admin.ensure_topic("weir.events", partitions=6, replication_factor=3)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    for_code,
)

from weir.core.config import Settings
from weir.stream.kafka.config import client_options

_TOPIC_OVERRIDE = 1  # DescribeConfigs source DYNAMIC_TOPIC_CONFIG: set on the topic itself
_VISIBLE_WITHIN_SECONDS = 10.0


@dataclass(frozen=True)
class TopicDescription:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)  # topic-level overrides only


def _raise_for(code: int, message: str | None, what: str) -> None:
    if code:
        raise for_code(code)(f"{what}: {message or ''}")


class TopicAdmin:
    """Every change returns once the broker's metadata shows it (read-your-writes)."""

    def __init__(self, settings: Settings, bootstrap_servers: str | None = None) -> None:
        self._options = client_options(settings, bootstrap_servers)
        self._client: AIOKafkaAdminClient | None = None

    async def __aenter__(self) -> TopicAdmin:
        self._client = AIOKafkaAdminClient(**self._options)
        await self._client.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    @property
    def client(self) -> AIOKafkaAdminClient:
        if self._client is None:
            raise RuntimeError("use `async with TopicAdmin(...)`")
        return self._client

    async def ensure_topic(
        self,
        name: str,
        partitions: int,
        replication_factor: int = 1,
        config: dict[str, str] | None = None,
    ) -> bool:
        """Create the topic unless it exists; True when created. An existing one is left as is."""
        topic = NewTopic(name, partitions, replication_factor, topic_configs=config or {})
        response = await self.client.create_topics([topic])
        for topic_error in response.topic_errors:
            code, message = topic_error[1], topic_error[2] if len(topic_error) > 2 else None
            if code == TopicAlreadyExistsError.errno:
                return False
            _raise_for(code, message, f"create topic {name}")
        await self._visible(name, lambda d: d is not None)
        return True

    async def describe_topic(self, name: str) -> TopicDescription | None:
        """Partitions, replication factor and topic-level configs; None when absent."""
        topics = await self.client.describe_topics([name])
        if not topics or topics[0]["error_code"] != 0:
            return None
        partitions = topics[0]["partitions"]
        replicas = len(partitions[0]["replicas"]) if partitions else 0
        try:
            configs = await self._overrides(name)
        except UnknownTopicOrPartitionError:
            return None  # deleted between the two requests: metadata lags the controller
        return TopicDescription(name, len(partitions), replicas, configs)

    async def create_partitions(self, name: str, total: int) -> None:
        await self.client.create_partitions({name: NewPartitions(total)})
        await self._visible(name, lambda d: d is not None and d.partitions >= total)

    async def alter_configs(self, name: str, config: dict[str, str]) -> None:
        """Set topic-level configs, keeping the other overrides (AlterConfigs replaces all)."""
        merged = await self._overrides(name) | config
        resource = ConfigResource(ConfigResourceType.TOPIC, name, configs=merged)
        for response in await self.client.alter_configs([resource]):
            for code, message, *_ in response.resources:
                _raise_for(code, message, f"alter configs of {name}")
        await self._visible(name, lambda d: d is not None and d.configs == merged)

    async def delete_topic(self, name: str) -> None:
        response = await self.client.delete_topics([name])
        for _, code, *_rest in response.topic_error_codes:
            _raise_for(code, None, f"delete topic {name}")
        await self._visible(name, lambda d: d is None)

    async def _visible(
        self, name: str, shows_change: Callable[[TopicDescription | None], bool]
    ) -> None:
        # The controller answers before the broker serving reads has applied the change.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _VISIBLE_WITHIN_SECONDS
        while not shows_change(await self.describe_topic(name)):
            if loop.time() > deadline:
                raise KafkaTimeoutError(f"change to topic {name} not visible in time")
            await asyncio.sleep(0.05)

    async def _overrides(self, name: str) -> dict[str, str]:
        resource = ConfigResource(ConfigResourceType.TOPIC, name)
        overrides: dict[str, str] = {}
        for response in await self.client.describe_configs([resource]):
            for code, message, _, _, entries in response.resources:
                _raise_for(code, message, f"describe configs of {name}")
                overrides |= {e[0]: e[1] for e in entries if _source(e) == _TOPIC_OVERRIDE}
        return overrides


def _source(entry: tuple[Any, ...]) -> int:
    # v0 entries: (name, value, read_only, is_default, sensitive); v1+: (..., source, ...)
    if isinstance(entry[3], bool):
        return 0 if entry[3] else _TOPIC_OVERRIDE
    return int(entry[3])


__all__ = ["KafkaError", "TopicAdmin", "TopicDescription"]
