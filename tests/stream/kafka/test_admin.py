"""Topic administration against the real broker."""

from __future__ import annotations

import uuid

from weir.core.config import Settings
from weir.stream import TopicAdmin


async def test_topic_lifecycle(kafka_settings: Settings) -> None:
    name = f"admin-{uuid.uuid4().hex[:8]}"
    async with TopicAdmin(kafka_settings) as admin:
        assert await admin.describe_topic(name) is None
        assert await admin.ensure_topic(name, 2, 1, {"retention.ms": "3600000"}) is True
        assert await admin.ensure_topic(name, 2, 1) is False  # idempotent

        described = await admin.describe_topic(name)
        assert described is not None
        assert (described.partitions, described.replication_factor) == (2, 1)
        assert described.configs == {"retention.ms": "3600000"}

        await admin.alter_configs(name, {"cleanup.policy": "delete", "retention.ms": "7200000"})
        await admin.create_partitions(name, 4)
        described = await admin.describe_topic(name)
        assert described is not None and described.partitions == 4
        assert described.configs == {"cleanup.policy": "delete", "retention.ms": "7200000"}

        await admin.alter_configs(name, {"segment.ms": "600000"})  # others are kept
        described = await admin.describe_topic(name)
        assert described is not None and described.configs["retention.ms"] == "7200000"

        await admin.delete_topic(name)
        assert await admin.describe_topic(name) is None
