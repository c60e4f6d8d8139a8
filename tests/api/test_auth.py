"""Keys and quotas: 401 without a key, 403 with the other kind, 429 over the quota; the keys file
and `weir keys`; refusing to serve without keys where others can reach it."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from tests.api.doubles import EmptyStore, RecordingProducer
from weir.api import check_exposure, create_app
from weir.api.quota import TokenBucket
from weir.core.config import Settings
from weir.core.keys import ApiKey, KeyKind, digest, load_keys
from weir.keytool import main as keys_main

WRITE, WRITE_NEXT, READ = "weir_write_one", "weir_write_two", "weir_read_one"
KEYS = [
    ApiKey(id="w1", kind=KeyKind.WRITE, sha256=digest(WRITE), rate=1, burst=3),
    ApiKey(id="w2", kind=KeyKind.WRITE, sha256=digest(WRITE_NEXT)),
    ApiKey(id="r1", kind=KeyKind.READ, sha256=digest(READ)),
]


def event(user: str = "u1") -> dict[str, object]:
    return {
        "event_name": "signup",
        "channel": "web",
        "user_id": user,
        "timestamp": int(time.time()),
    }


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def basic(user: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


@pytest.fixture
async def keyed(producer: RecordingProducer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(api_keys=KEYS), producer=producer, store=EmptyStore())  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


async def test_no_key_or_unknown_key_is_401_with_a_challenge(keyed: httpx.AsyncClient) -> None:
    for headers in ({}, bearer("weir_write_guess"), {"authorization": "Token x"}, basic("")):
        for response in (
            await keyed.post("/events", json=event(), headers=headers),
            await keyed.post("/events/batch", json=[event()], headers=headers),
            await keyed.get("/metrics", params={"event_name": "signup"}, headers=headers),
        ):
            assert response.status_code == 401, (headers, response.text)
            assert response.json()["error"].startswith("authorization: ")
            assert "Bearer" in response.headers["www-authenticate"]


async def test_a_key_of_the_other_kind_is_403(keyed: httpx.AsyncClient) -> None:
    wrong_write = await keyed.post("/events", json=event(), headers=bearer(READ))
    assert wrong_write.status_code == 403
    assert wrong_write.json()["error"] == (
        "authorization: this route needs a write key, not a read key"
    )
    wrong_read = await keyed.get("/metrics", params={"event_name": "x"}, headers=bearer(WRITE))
    assert wrong_read.status_code == 403


async def test_bearer_and_basic_user_and_several_keys_are_accepted(
    keyed: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    for headers in (bearer(WRITE), basic(WRITE_NEXT), basic("", WRITE_NEXT), bearer(WRITE_NEXT)):
        response = await keyed.post("/events", json=event(), headers=headers)
        assert response.status_code == 202, response.text
    batch = await keyed.post(
        "/events/batch", json=[event("a"), event("b")], headers=basic(WRITE_NEXT)
    )
    assert batch.status_code == 202
    assert len(producer.sent) == 6
    read = await keyed.get("/metrics", params={"event_name": "signup"}, headers=bearer(READ))
    assert read.status_code == 200 and read.json()["total_events"] == 0


async def test_quota_is_a_token_bucket_answered_429_with_ratelimit_headers(
    keyed: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    def throttled() -> float:
        return REGISTRY.get_sample_value("weir_key_throttled_total", {"key_id": "w1"}) or 0.0

    before = throttled()
    batch = await keyed.post("/events/batch", json=[event("a"), event("b")], headers=bearer(WRITE))
    assert batch.status_code == 202  # 2 of the burst of 3
    assert (await keyed.post("/events", json=event(), headers=bearer(WRITE))).status_code == 202
    refused = await keyed.post("/events", json=event(), headers=bearer(WRITE))
    assert refused.status_code == 429
    assert refused.json()["error"].startswith("quota: key 'w1' is over its rate of 1/s")
    headers = refused.headers
    assert headers["retry-after"] == "1" and headers["ratelimit-limit"] == "3"
    assert headers["ratelimit-remaining"] == "0" and int(headers["ratelimit-reset"]) >= 1
    assert throttled() == before + 1
    assert len(producer.sent) == 3
    # Other keys have their own buckets; a batch larger than the burst can never fit.
    assert (
        await keyed.post("/events", json=event(), headers=bearer(WRITE_NEXT))
    ).status_code == 202
    assert REGISTRY.get_sample_value("weir_key_usage_total", {"key_id": "w1"}) is not None
    too_big = await keyed.post(
        "/events/batch", json=[event(str(i)) for i in range(4)], headers=bearer(WRITE)
    )
    assert too_big.status_code == 413 and too_big.json()["error"].startswith("quota: 4 at once")


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=10, burst=5, updated=0.0)
    assert bucket.take(5, now=0.0).allowed
    refused = bucket.take(3, now=0.1)  # 1 token back after 0.1 s
    assert not refused.allowed and refused.retry_after == 1 and refused.remaining == 1
    assert bucket.take(3, now=0.3).allowed  # 3 tokens after 0.3 s


async def test_each_worker_gets_its_share_of_the_quota(producer: RecordingProducer) -> None:
    keys = [ApiKey(id="w", kind=KeyKind.WRITE, sha256=digest(WRITE), rate=10, burst=4)]
    app = create_app(Settings(api_keys=keys), producer=producer, store=EmptyStore(), workers=2)  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            codes = [
                (await http.post("/events", json=event(str(i)), headers=bearer(WRITE))).status_code
                for i in range(3)
            ]
    assert codes == [202, 202, 429]


def test_keys_cli_prints_the_key_once_and_stores_only_its_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    assert keys_main(["--file", str(path), "create", "--kind", "write", "--rate", "50"]) == 0
    first = capsys.readouterr().out.strip()
    assert keys_main(["--file", str(path), "create", "--kind", "write"]) == 0
    second = capsys.readouterr().out.strip()
    assert first.startswith("weir_write_") and len(first) > 50 and first != second
    text = path.read_text()
    assert first not in text and second not in text
    assert [(k.id, k.sha256, k.rate) for k in load_keys(path)] == [
        ("write-1", digest(first), 50.0),
        ("write-2", digest(second), None),
    ]
    assert path.stat().st_mode & 0o077 == 0
    assert keys_main(["--file", str(path), "list"]) == 0
    assert first not in capsys.readouterr().out
    assert keys_main(["--file", str(path), "revoke", "write-1"]) == 0
    assert [k.id for k in load_keys(path)] == ["write-2"]
    assert keys_main(["--file", str(path), "revoke", "write-1"]) == 1


async def test_keys_file_is_read(tmp_path: Path, producer: RecordingProducer) -> None:
    path = tmp_path / "keys.json"
    keys_main(["--file", str(path), "create", "--kind", "write", "--id", "sdk"])
    settings = Settings(api_keys_file=path)
    app = create_app(settings, producer=producer, store=EmptyStore())  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            assert (await http.post("/events", json=event())).status_code == 401


def test_no_keys_on_a_reachable_address_refuses_to_start_unless_told_to_run_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(SystemExit) as refused:
        check_exposure(Settings(host="0.0.0.0"))
    assert refused.value.code == 2
    assert "refusing to start" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        check_exposure(Settings(host="0.0.0.0", api_open=True))
        check_exposure(Settings(host="::1"))
    assert caplog.text.count("running open") == 2
    check_exposure(Settings(host="0.0.0.0", api_keys=KEYS))  # keys: nothing to say
