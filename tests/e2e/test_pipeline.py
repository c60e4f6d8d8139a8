"""End to end on real parts: API -> Kafka broker -> consumer processes -> ClickHouse engine.

The consumers are separate OS processes writing through the ClickHouse HTTP protocol to one chDB
engine (tests/harness/chdb_http.py). One consumer is SIGKILLed while it holds an unflushed batch;
two consumers then share the partitions; then one stops (its partitions move to the other) and
starts again, while events of users never seen before keep arriving through every partition, so
both consumers claim dense ids for the same new users at once. /metrics must equal a brute-force
ground truth: nothing lost, nothing counted twice, every user one id.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import urllib.error
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager

from tests.e2e.processes import get_json, start_weir, wait_until_up
from tests.e2e.truth import expected_metrics
from tests.harness.clickhouse import free_port
from tests.harness.kafka import KafkaBroker, TopicFactory
from weir.api import create_app
from weir.consumer import dead_letters
from weir.core.config import Settings, StoreBackend
from weir.provision import provision
from weir.store import TableSpec, make_store
from weir.stream import Message, make_consumer, make_producer

CHANNELS = ("web", "mobile", "api", "email", "push")
NAMES = ("signup", "purchase")


def make_events(
    count: int, now: int, rng: random.Random, users: str = "user", user_count: int = 150
) -> list[dict[str, Any]]:
    return [
        {
            "event_name": rng.choice(NAMES),
            "channel": rng.choice(CHANNELS),
            "user_id": f"{users}-{rng.randint(0, user_count)}",
            "timestamp": now - rng.randint(0, 3 * 86400),
            "tags": [f"t{i}"],
            "metadata": {"i": i},
        }
        for i in range(count)
    ]


@pytest.fixture
async def pipeline_settings(
    kafka_settings: Settings, kafka_topic: TopicFactory, clickhouse_http: str
) -> Settings:
    run = uuid.uuid4().hex[:10]
    settings = kafka_settings.model_copy(
        update={
            "kafka_topic": await kafka_topic(partitions=4),
            "kafka_dlq_topic": await kafka_topic(partitions=1),
            "kafka_consumer_group": f"weir-e2e-{run}",
            "store_backend": StoreBackend.CLICKHOUSE,
            "clickhouse_url": clickhouse_http,
            "clickhouse_database": f"e2e_{run}",
            "batch_max_seconds": 0.5,
            "metrics_port": 0,
        }
    )
    await provision(settings)  # the migration owner, as the chart's Job (api/consumer run no DDL)
    return settings


@pytest.fixture
async def api(pipeline_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(create_app(pipeline_settings)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


async def post_all(api: httpx.AsyncClient, items: list[Any], accepted: dict[str, Any]) -> None:
    """Post in batches of 100 plus a few singles; record what was accepted, by event id."""
    for start in range(0, len(items), 100):
        chunk = items[start : start + 100]
        response = await api.post("/events/batch", json=chunk)
        assert response.status_code in (202, 207), response.text
        for result in response.json()["results"]:
            if result["status"] == "accepted":
                accepted[result["event_id"]] = chunk[result["index"]]


async def wait_for_totals(api: httpx.AsyncClient, truth: dict[str, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answers = [
            (await api.get("/metrics", params={"event_name": name})).json() for name in NAMES
        ]
        got = [(a["total_events"], a["unique_users"]) for a in answers]
        want = [expected_metrics(truth, name) for name in NAMES]
        if got == want:
            return
        assert time.monotonic() < deadline, f"metrics {got} never reached {want}"
        await asyncio.sleep(0.5)


async def check_every_view(api: httpx.AsyncClient, truth: dict[str, Any], now: int) -> None:
    rng = random.Random(11)
    windows: list[tuple[int | None, int | None]] = [(None, None), (now - 86400, None)]
    for _ in range(4):  # windows whose edges cut through hours and days
        start = now - rng.randint(0, 3 * 86400)
        windows.append((start, start + rng.randint(1, 2 * 86400)))
    for name in NAMES:
        for start, end in windows:
            params: dict[str, Any] = {"event_name": name}
            if start is not None:
                params["from"] = start
            if end is not None:
                params["to"] = end
            answered = await api.get("/metrics", params=params)
            assert answered.headers["server-timing"].startswith("store;dur=")
            body = answered.json()
            assert (body["total_events"], body["unique_users"]) == expected_metrics(
                truth, name, start, end
            ), params
            for group_by in ("channel", "hour", "day"):
                grouped = (await api.get("/metrics", params=params | {"group_by": group_by})).json()
                assert grouped["grouped_by"] == group_by
                assert grouped["data"] == expected_metrics(truth, name, start, end, group_by), (
                    params,
                    group_by,
                )
        filtered = (await api.get("/metrics", params={"event_name": name, "channel": "web"})).json()
        assert (filtered["total_events"], filtered["unique_users"]) == expected_metrics(
            truth, name, channel="web"
        )


async def test_exact_metrics_through_a_crash_and_two_consumers(
    api: httpx.AsyncClient, pipeline_settings: Settings, tmp_path: Path
) -> None:
    rng, now = random.Random(3), int(time.time())
    events = make_events(1200, now, rng)
    truth: dict[str, Any] = {}
    invalid = [{"event_name": "signup"}, {**events[0], "channel": "fax"}]

    # Phase 1: a consumer that holds a long batch, killed before it can flush it.
    await post_all(api, events[:450] + invalid + events[450:500], truth)
    slow_port = free_port()
    slow = start_weir(
        "consumer",
        pipeline_settings.model_copy(
            update={
                "batch_max_seconds": 600.0,
                "batch_max_events": 10**6,
                "metrics_port": slow_port,
            }
        ),
        tmp_path / "slow.log",
    )
    status_url = f"http://127.0.0.1:{slow_port}/status"
    wait_until_up(status_url, slow)
    deadline = time.monotonic() + 60
    while int(get_json(status_url)["batch_records"]) == 0:  # type: ignore[call-overload]
        assert time.monotonic() < deadline, "the slow consumer never polled a record"
        await asyncio.sleep(0.2)
    slow.send_signal(signal.SIGKILL)
    slow.wait(timeout=10)

    # Phase 2: two consumers in one group; more events, exact resends, a poison message.
    ports = [free_port(), free_port()]
    consumers = [
        start_weir(
            "consumer",
            pipeline_settings.model_copy(update={"metrics_port": port}),
            tmp_path / f"consumer-{i}.log",
        )
        for i, port in enumerate(ports)
    ]
    try:
        await post_all(api, events[500:], truth)
        resends = rng.sample(events[:1000], 150)
        await post_all(api, resends, truth)
        for item in resends[:20]:
            assert (await api.post("/events", json=item)).status_code == 202
        keyed = {**events[0], "event_id": "client-key-1", "user_id": "keyed-user"}
        for _ in range(2):
            response = await api.post("/events", json=keyed)
            assert response.json()["event_id"] == "client-key-1"
        truth["client-key-1"] = keyed
        poison = make_producer(pipeline_settings)
        await poison.start()
        await poison.send(pipeline_settings.kafka_topic, [Message(key=b"junk", value=b"not json")])
        await poison.stop()

        await wait_for_totals(api, truth, timeout=120)
        await check_every_view(api, truth, now)
        await asyncio.sleep(2)  # late redeliveries would show up as a double count now
        await wait_for_totals(api, truth, timeout=0)

        assignments = [get_json(f"http://127.0.0.1:{port}/status")["lag"] for port in ports]
        assert all(assignments), f"both consumers should own partitions: {assignments}"

        # Phase 3: a rebalance (one consumer stops) and a restart, with new users throughout.
        consumers[0].send_signal(signal.SIGTERM)
        assert consumers[0].wait(timeout=30) == 0
        await post_all(api, make_events(200, now, rng, users="late", user_count=80), truth)
        await wait_for_totals(api, truth, timeout=120)
        consumers[0] = start_weir(
            "consumer",
            pipeline_settings.model_copy(update={"metrics_port": ports[0]}),
            tmp_path / "consumer-0-restarted.log",
        )
        wait_until_up(f"http://127.0.0.1:{ports[0]}/status", consumers[0])
        await post_all(api, make_events(300, now, rng, users="later", user_count=120), truth)
        await wait_for_totals(api, truth, timeout=120)
        await check_every_view(api, truth, now)
        await assert_one_id_per_user(pipeline_settings, truth)
        await assert_dead_letter(pipeline_settings)
    finally:
        for process in consumers:
            process.send_signal(signal.SIGTERM)
        exit_codes = [process.wait(timeout=30) for process in consumers]
    assert exit_codes == [0, 0]


async def assert_one_id_per_user(settings: Settings, truth: dict[str, Any]) -> None:
    """Every stored row carries its user's winning dense id; no id is shared by two users."""
    store, spec = make_store(settings), TableSpec.from_settings(settings)
    try:
        rows = await store.query_rows(
            f"SELECT user_id, groupUniqArray(user_uid) FROM {spec.raw_ref} GROUP BY user_id"
        )
        winners = dict(
            await store.query_rows(
                f"SELECT user_id, argMin(uid, _block_number) FROM {spec.users_ref} GROUP BY user_id"
            )
        )
    finally:
        await store.close()
    ids = {user: list(uids) for user, uids in rows}
    assert set(ids) == {event["user_id"] for event in truth.values()}
    assert all(uids == [winners[user]] for user, uids in ids.items()), ids
    assert len({uids[0] for uids in ids.values()}) == len(ids) and 0 not in winners.values()


async def assert_dead_letter(settings: Settings) -> None:
    reader = make_consumer(settings, topic=settings.kafka_dlq_topic, group="dlq-reader")
    await reader.start()
    try:
        deadline = time.monotonic() + 20
        records = []
        while not records and time.monotonic() < deadline:
            for batch in (await reader.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await reader.stop()
    # At least once: a rebalance between the dead letter's publish and the commit redelivers the
    # batch, and its dead letter is published again — a copy of the same source record.
    assert records and all(r.value == b"not json" for r in records)
    sources = {
        (
            dict(r.headers)[dead_letters.SOURCE_PARTITION],
            dict(r.headers)[dead_letters.SOURCE_OFFSET],
        )
        for r in records
    }
    assert len(sources) == 1, f"dead letters of different records: {sources}"
    headers = dict(records[0].headers)
    assert headers[dead_letters.REASON].startswith(b"value: not JSON")
    assert headers[dead_letters.SOURCE_TOPIC] == settings.kafka_topic.encode()


def probe(url: str) -> tuple[int, dict[str, Any]]:
    """A status port's answer: its code and JSON body (a 503 included)."""
    try:
        return 200, get_json(url)
    except urllib.error.HTTPError as error:
        body: dict[str, Any] = orjson.loads(error.read())
        return error.code, body


async def test_a_consumer_started_while_kafka_is_away_waits_for_it(
    api: httpx.AsyncClient, pipeline_settings: Settings, kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    """A broker restart or a cluster coming up: the consumer retries the connection (it used to
    exit 1 into a crash loop) and consumes once the broker is back. Its status port answers from
    the start: alive while it waits (the kubelet must not restart it), not ready until it has
    reached the broker, saying what it waits for."""
    log = tmp_path / "consumer.log"
    settings = pipeline_settings.model_copy(update={"metrics_port": free_port()})
    status = f"http://127.0.0.1:{settings.metrics_port}"
    kafka_broker.stop()
    try:
        consumer = start_weir("consumer", settings, log)
        wait_until_up(f"{status}/healthz", consumer)
        waited_until = time.monotonic() + 8
        while time.monotonic() < waited_until:
            assert consumer.poll() is None, f"exited while Kafka was away: {log.read_text()}"
            code, health = probe(f"{status}/healthz")
            assert code == 200 and health["status"] == "healthy", health
            assert health["waiting_for"].startswith("kafka: not reachable yet"), health
            code, ready = probe(f"{status}/ready")
            assert code == 503 and ready["status"] == "not ready", ready
            assert ready["waiting_for"] == ready["error"] == health["waiting_for"], ready
            assert probe(f"{status}/status")[0] == 503
            await asyncio.sleep(0.5)
        assert "Kafka (producer) unavailable, retrying" in log.read_text()
    finally:
        kafka_broker.start()
    try:
        rng, now = random.Random(5), int(time.time())
        truth: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        for item in make_events(40, now, rng):
            while (response := await api.post("/events", json=item)).status_code != 202:
                assert response.status_code == 503, response.text  # the API reconnecting
                assert time.monotonic() < deadline, "the API never reached the broker again"
                await asyncio.sleep(0.5)
            truth[response.json()["event_id"]] = item
        await wait_for_totals(api, truth, timeout=90)
        # It stored events, so it reached the broker: ready, and no longer waiting.
        assert probe(f"{status}/ready") == (200, {"status": "ready"})
        assert probe(f"{status}/healthz") == (200, {"status": "healthy"})
        code, lag = probe(f"{status}/status")
        assert code == 200 and lag["group"] == settings.kafka_consumer_group, lag
    finally:
        consumer.terminate()
        assert consumer.wait(timeout=30) == 0
