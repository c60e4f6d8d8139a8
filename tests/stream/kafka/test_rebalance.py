"""A member flushing on revoke is waited for, however long its store takes (within bounds).

scripts/soak.py found events counted twice: a consumer's flush on revoke outlasted the group's
rebalance timeout (aiokafka's default is the 10 s session timeout) while ClickHouse came back,
the group dropped the member and gave its partitions to another, which read them again while the
first still inserted its batch. Real broker.
"""

from __future__ import annotations

import asyncio
import uuid

from tests.harness.kafka import TopicFactory
from tests.stream.contract import drain
from weir.core.config import Settings
from weir.stream import CommitFailed, Message, TopicPartition, make_consumer, make_producer

FLUSH_SECONDS = 15.0  # longer than the 10 s session timeout


async def test_a_slow_flush_on_revoke_keeps_its_partitions_until_it_is_done(
    kafka_settings: Settings, kafka_topic: TopicFactory
) -> None:
    topic = await kafka_topic(partitions=2)
    group = f"slow-revoke-{uuid.uuid4().hex[:8]}"
    producer = make_producer(kafka_settings)
    await producer.start()
    await producer.send(topic, [Message(f"k{i}".encode(), b"v") for i in range(20)])
    await producer.stop()
    loop = asyncio.get_running_loop()
    flushed_at: list[float] = []
    commits: list[str] = []
    taken_over_at: list[float] = []
    positions: dict[TopicPartition, int] = {}

    async def slow_flush(partitions: frozenset[TopicPartition]) -> None:
        if not partitions:
            return
        await asyncio.sleep(FLUSH_SECONDS)  # e.g. inserts retrying while the store is away
        flushed_at.append(loop.time())
        try:
            await one.commit({tp: positions[tp] for tp in partitions if tp in positions})
            commits.append("ok")
        except CommitFailed as error:
            commits.append(str(error))

    async def taken_over(partitions: frozenset[TopicPartition]) -> None:
        if partitions:
            taken_over_at.append(loop.time())

    one = make_consumer(kafka_settings, topic, group, on_revoked=slow_flush)
    two = make_consumer(kafka_settings, topic, group, on_assigned=taken_over)
    await one.start()
    try:
        for record in await drain(one, 20):
            tp = TopicPartition(record.topic, record.partition)
            positions[tp] = max(positions.get(tp, 0), record.offset + 1)
        await two.start()
        deadline = loop.time() + FLUSH_SECONDS + 30
        while not (taken_over_at and commits):
            assert loop.time() < deadline, (commits, taken_over_at)
            await asyncio.gather(one.getmany(timeout_ms=100), two.getmany(timeout_ms=100))
        assert commits == ["ok"], "the member was dropped while it flushed"
        assert taken_over_at[0] >= flushed_at[0], "its partitions moved while it flushed"
    finally:
        await two.stop()
        await one.stop()
