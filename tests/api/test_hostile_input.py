"""What a hostile client tried (issue 12): gzip with trailing bytes or several members, deep
metadata. Each is answered at once with a clear 4xx, within the configured bounds."""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from tests.api.doubles import RecordingProducer

GZIP_NDJSON = {"content-type": "application/x-ndjson", "content-encoding": "gzip"}


def event(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"event_name": "signup", "channel": "web", "user_id": "u1", "timestamp": now, **changes}


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


class Counted:
    """A streamed request body (no Content-Length) that records how much of it was read."""

    def __init__(self, head: bytes, filler: bytes, chunks: int) -> None:
        self.head, self.filler, self.chunks, self.read = head, filler, chunks, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in (self.head, *([self.filler] * self.chunks)):
            self.read += len(part)
            yield part


async def test_trailing_bytes_after_a_gzip_member_are_bounded_by_the_batch_limit(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    member = gzip.compress(orjson.dumps(event()))
    declared = await client.post(
        "/events/batch", content=member + b"\0" * 100_000, headers=GZIP_NDJSON
    )
    assert declared.status_code == 413  # 8,192 bytes in the fixture's settings
    assert declared.json()["error"] == "body: larger than the limit of 8192 bytes"
    # Streamed (no Content-Length), 50 MB if all were read: refused once the limit is passed.
    plain = Counted(orjson.dumps(event()), b" " * 1024, chunks=50_000)
    headers = {"content-type": "application/x-ndjson"}
    response = await client.post("/events/batch", content=plain, headers=headers)
    assert response.status_code == 413 and plain.read <= 8192 + 1024
    members = Counted(member, member, chunks=50_000)  # valid gzip, each member tiny inflated
    response = await client.post("/events/batch", content=members, headers=GZIP_NDJSON)
    assert response.status_code == 413 and members.read <= 8192 + len(member)
    garbage = await client.post("/events/batch", content=member + b"junk", headers=GZIP_NDJSON)
    assert garbage.status_code == 400 and garbage.json()["error"] == "body: malformed gzip data"
    assert producer.sent == []


async def test_every_gzip_member_is_read(
    client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    first, second = orjson.dumps(event(user_id="a")), orjson.dumps(event(user_id="b"))
    body = gzip.compress(first + b"\n") + gzip.compress(second + b"\n")
    response = await client.post("/events/batch", content=body, headers=GZIP_NDJSON)
    assert response.status_code == 202 and response.json()["accepted"] == 2
    assert len(producer.sent) == 2
    array = gzip.compress(b"[" + first + b",") + gzip.compress(second + b"]")
    headers = GZIP_NDJSON | {"content-type": "application/json"}
    response = await client.post("/events/batch", content=array, headers=headers)
    assert response.status_code == 202 and response.json()["accepted"] == 2
    truncated = gzip.compress(first) + gzip.compress(second)[:-4]
    response = await client.post("/events/batch", content=truncated, headers=GZIP_NDJSON)
    assert response.status_code == 400 and response.json()["error"] == "body: truncated gzip data"


def with_metadata(levels: int, **changes: Any) -> bytes:
    """An event whose metadata nests `levels` deep, written out by hand: the JSON encoders stop
    at a few hundred levels."""
    head = orjson.dumps(event(**changes))[:-1]
    return head + b',"metadata":' + b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1) + b"}"


JSON_BODY = {"content-type": "application/json"}
TOO_DEEP = "metadata: must not nest deeper than 32 levels"


async def test_deep_metadata_is_400_naming_the_rule(
    roomy_client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    assert orjson.loads(with_metadata(32))["metadata"] == deep(32)
    response = await roomy_client.post("/events", content=with_metadata(32), headers=JSON_BODY)
    assert response.status_code == 202
    for levels in (33, 254, 255, 300, 1000):  # 254+ failed the encoders, 1,000 the decoder
        response = await roomy_client.post(
            "/events", content=with_metadata(levels), headers=JSON_BODY
        )
        assert response.status_code == 400, levels
        assert response.json()["error"] == TOO_DEEP
    beyond = await roomy_client.post("/events", content=with_metadata(5000), headers=JSON_BODY)
    assert beyond.status_code == 400  # beyond the JSON parser's 1,024 levels: the body's error
    assert "depth limit exceeded" in beyond.json()["error"]
    tags = orjson.dumps(event())[:-1] + b',"tags":' + b"[" * 1000 + b"]" * 1000 + b"}"
    response = await roomy_client.post("/events", content=tags, headers=JSON_BODY)
    assert response.status_code == 400 and response.json()["error"].startswith("tags.0: ")
    assert len(producer.sent) == 1


async def test_a_deep_item_of_a_batch_is_refused_alone(
    roomy_client: httpx.AsyncClient, producer: RecordingProducer
) -> None:
    items = [orjson.dumps(event(user_id="ok"))] + [
        with_metadata(levels, user_id=f"deep-{levels}") for levels in (33, 300, 1000)
    ]
    array = await roomy_client.post(
        "/events/batch", content=b"[" + b",".join(items) + b"]", headers=JSON_BODY
    )
    lines = await roomy_client.post(
        "/events/batch",
        content=b"\n".join([*items, with_metadata(5000)]),
        headers={"content-type": "application/x-ndjson"},
    )
    for response, refused in ((array, 3), (lines, 4)):
        assert response.status_code == 207
        body = response.json()
        assert body["accepted"] == 1 and body["rejected"] == refused
        assert body["results"][0]["status"] == "accepted"
        assert [r["error"] for r in body["results"][1:4]] == [TOO_DEEP] * 3
    assert "depth limit exceeded" in lines.json()["results"][4]["error"]
    assert len(producer.sent) == 2
