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
