"""Segment's and RudderStack's Python SDKs, unchanged, pointed at `weir api` (an OS process with
a write key) on the real broker: what they send arrives in Kafka mapped onto Weir's event."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import segment.analytics as segment_analytics
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient

from tests.api.test_events_kafka import read_topic
from tests.e2e.processes import start_weir, wait_until_up
from tests.harness.clickhouse import free_port
from tests.harness.kafka import TopicFactory
from weir.core.config import Settings, StoreBackend
from weir.core.keys import ApiKey, KeyKind, digest, dump_keys, new_key


@pytest.fixture
async def weir_api(
    kafka_settings: Settings, kafka_topic: TopicFactory, clickhouse_http: str, tmp_path: Path
) -> Any:
    write_key = new_key(KeyKind.WRITE)
    keys = tmp_path / "keys.json"
    keys.write_bytes(dump_keys([ApiKey(id="sdk", kind=KeyKind.WRITE, sha256=digest(write_key))]))
    settings = kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=3),
            "store_backend": StoreBackend.CLICKHOUSE,
            "clickhouse_url": clickhouse_http,
            "api_keys_file": keys,
            "api_workers": 1,
            "metrics_port": 0,
            "port": free_port(),
        }
    )
    process = start_weir("api", settings, tmp_path / "api.log")
    url = f"http://127.0.0.1:{settings.port}"
    try:
        wait_until_up(url + "/health", process)
        yield url, write_key, settings
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture
def sdk_errors() -> Iterator[list[str]]:
    errors: list[str] = []
    yield errors


def values(records: list[Any]) -> dict[str, dict[str, Any]]:
    decoded = [orjson.loads(r.value) for r in records]
    assert all(r.key == v["event_id"].encode() for r, v in zip(records, decoded, strict=True))
    return {v["event_id"]: v for v in decoded}


async def test_segment_analytics_python_events_arrive_mapped(
    weir_api: tuple[str, str, Settings], sdk_errors: list[str]
) -> None:
    url, write_key, settings = weir_api
    assert segment_analytics.__name__  # the real package from PyPI, not a stand-in
    client = SegmentClient(
        write_key, host=url, gzip=True, on_error=lambda e, _: sdk_errors.append(str(e))
    )
    run = uuid.uuid4().hex[:8]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    client.track(
        user_id=f"user-{run}",
        event="signup",
        properties={"plan": "pro", "seats": 3},
        context={"channel": "web"},
        timestamp=an_hour_ago,
        message_id=f"seg-{run}-1",
    )
    client.track(anonymous_id=f"anon-{run}", event="view", message_id=f"seg-{run}-2")
    client.track(user_id=f"user-{run}", event="signup", context={"channel": "fax"})  # invalid
    client.flush()
    client.join()
    records = await read_topic(settings, settings.kafka_topic, expected=2)
    got = values(records)
    assert set(got) == {f"seg-{run}-1", f"seg-{run}-2"}
    first, second = got[f"seg-{run}-1"], got[f"seg-{run}-2"]
    assert first["event_name"] == "signup" and first["user_id"] == f"user-{run}"
    assert first["channel"] == "web" and first["metadata"] == {"plan": "pro", "seats": 3}
    # the SDK stamped sentAt at flush: the timestamp is on the server's clock, within a second
    # or two of the client's (same machine), and the client's is kept beside it
    assert first["client_timestamp"] == int(an_hour_ago.timestamp())
    assert abs(first["timestamp"] - first["client_timestamp"]) <= 2 and first["sent_at"]
    assert second["user_id"] == f"anon-{run}" and second["channel"] == "api"  # the default
    assert second["event_name"] == "view" and second["metadata"] == {}
    assert abs(second["timestamp"] - time.time()) < 30
    assert sdk_errors == []  # the batch was answered 200 (its invalid message reported in it)


async def test_rudder_sdk_python_events_arrive_mapped(
    weir_api: tuple[str, str, Settings], sdk_errors: list[str]
) -> None:
    url, write_key, settings = weir_api
    client = RudderClient(
        write_key, host=url, gzip=True, on_error=lambda e, _: sdk_errors.append(str(e))
    )
    run = uuid.uuid4().hex[:8]
    for n in range(5):
        client.track(
            user_id=f"r-{run}-{n % 2}",
            event="purchase",
            properties={"n": n},
            context={"channel": "mobile"},
            message_id=f"rud-{run}-{n}",
        )
    client.flush()
    client.join()
    got = values(await read_topic(settings, settings.kafka_topic, expected=5))
    assert set(got) == {f"rud-{run}-{n}" for n in range(5)}
    for n in range(5):
        value = got[f"rud-{run}-{n}"]
        assert value["user_id"] == f"r-{run}-{n % 2}" and value["metadata"] == {"n": n}
        assert value["channel"] == "mobile" and value["event_name"] == "purchase"
    assert sdk_errors == []


async def test_a_wrong_write_key_is_refused_and_nothing_is_written(
    weir_api: tuple[str, str, Settings], sdk_errors: list[str]
) -> None:
    url, _, settings = weir_api
    client = SegmentClient(
        "not-a-key", host=url, max_retries=0, on_error=lambda e, _: sdk_errors.append(str(e))
    )
    client.track(user_id="u", event="signup")
    client.flush()
    client.join()
    assert any("401" in e for e in sdk_errors), sdk_errors
    assert await read_topic(settings, settings.kafka_topic, expected=0) == []
