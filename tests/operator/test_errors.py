"""Failures map to kopf retries: transient -> TemporaryError, the rest -> PermanentError."""

from __future__ import annotations

import asyncio
import socket

import kopf
from aiokafka.errors import InvalidReplicationFactorError

from weir.core.config import Settings
from weir.store import StoreError, StoreUnavailable
from weir.stream import TopicAdmin
from weir_operator.errors import reason_for, to_kopf


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_broker_is_transient() -> None:
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{closed_port()}")
    try:
        async with asyncio.timeout(5), TopicAdmin(settings) as admin:
            await admin.describe_topic("anything")
    except Exception as error:  # whichever aiokafka raises first: connection error or timeout
        failure = error
    else:
        raise AssertionError("a broker on a closed port answered")
    assert isinstance(to_kopf(failure, delay=7), kopf.TemporaryError)
    assert to_kopf(failure, delay=7).delay == 7
    assert reason_for(failure, "KafkaUnavailable") == "KafkaUnavailable"


def test_permanent_failures_carry_a_reason() -> None:
    replication = InvalidReplicationFactorError("3 > 1 broker")
    assert isinstance(to_kopf(replication, 1), kopf.PermanentError)
    assert reason_for(replication, "KafkaUnavailable") == "InvalidReplicationFactor"
    assert reason_for(ValueError("bad"), "X") == "InvalidSpec"
    assert isinstance(to_kopf(StoreError("Code: 62. syntax"), 1), kopf.PermanentError)
    assert isinstance(to_kopf(StoreUnavailable("down"), 1), kopf.TemporaryError)
    assert reason_for(StoreUnavailable("down"), "ClickHouseUnavailable") == "ClickHouseUnavailable"
