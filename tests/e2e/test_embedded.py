"""`weir dev`, the embedded default: one process, chDB + the in-process log, data kept on disk."""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import orjson

from tests.e2e.processes import dev_settings, get_json, start_weir, wait_until_up


def post(url: str, body: object) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url, data=orjson.dumps(body), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def wait_for_total(base: str, expected: int, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = get_json(f"{base}/metrics?event_name=signup")
        if body["total_events"] == expected or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def test_dev_serves_the_contract_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "data")
    port = settings.port
    base = f"http://127.0.0.1:{port}"
    now = int(time.time())
    events = [
        {"event_name": "signup", "channel": channel, "user_id": user, "timestamp": now - 7200}
        for channel, user in [("web", "a"), ("web", "b"), ("api", "a")]
    ]

    dev = start_weir("dev", settings, tmp_path / "dev.log")
    try:
        wait_until_up(f"{base}/health", dev)
        assert get_json(f"{base}/ready") == {"status": "ready"}
        for item in events + events[:1]:  # the last one is an exact resend
            assert post(f"{base}/events", item)[0] == 202
        status, body = post(f"{base}/events", {"event_name": "signup"})
        assert status == 400 and "channel: is required" in str(body["error"])
        assert wait_for_total(base, 3) == {
            "event_name": "signup",
            "total_events": 3,
            "unique_users": 2,
        }
        grouped = get_json(f"{base}/metrics?event_name=signup&group_by=channel")
        assert grouped["data"] == [
            {"group": "api", "total_events": 1, "unique_users": 1},
            {"group": "web", "total_events": 2, "unique_users": 2},
        ]
    finally:
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=30) == 0

    again = start_weir("dev", settings, tmp_path / "dev.log")
    try:
        wait_until_up(f"{base}/health", again)
        assert wait_for_total(base, 3, timeout=5)["total_events"] == 3
        assert post(f"{base}/events", events[0])[0] == 202  # a resend after restart: still once
        later = {**events[0], "user_id": "c"}
        assert post(f"{base}/events", later)[0] == 202
        assert wait_for_total(base, 4)["unique_users"] == 3
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0
    assert (tmp_path / "data" / "chdb").is_dir() and (tmp_path / "data" / "stream").is_dir()


def test_extreme_windows_are_answered(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "data")
    port = settings.port
    base = f"http://127.0.0.1:{port}"
    dev = start_weir("dev", settings, tmp_path / "dev.log")
    try:
        wait_until_up(f"{base}/health", dev)
        event = {
            "event_name": "signup",
            "channel": "web",
            "user_id": "a",
            "timestamp": int(time.time()),
        }
        assert post(f"{base}/events", event)[0] == 202
        assert wait_for_total(base, 1)["total_events"] == 1
        for query in ("from=0", "to=99999999999", "from=0&to=99999999999&group_by=day"):
            body = get_json(f"{base}/metrics?event_name=signup&{query}")
            assert body.get("total_events", 1) == 1 and "error" not in body, (query, body)
        for query, message in (
            ("from=x", "from: must be an integer"),
            ("from=5&to=4", "from: must not be after to"),
            ("group_by=week", "group_by: must be one of"),
            ("", "event_name: is required"),
        ):
            try:
                urllib.request.urlopen(
                    f"{base}/metrics?{query}&event_name="
                    if not query
                    else f"{base}/metrics?event_name=signup&{query}"
                )
            except urllib.error.HTTPError as error:
                assert error.code == 400 and message in orjson.loads(error.read())["error"]
            else:
                raise AssertionError(f"{query} should be a 400")
    finally:
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=30) == 0
