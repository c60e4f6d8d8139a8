"""Reading request bodies within the configured limits: content type, gzip, size, JSON/NDJSON."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson
from fastapi import Request
from starlette.requests import ClientDisconnect

from weir.api.errors import ApiError

JSON = "application/json"
NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class Body:
    media_type: str
    data: bytes


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, accepted: tuple[str, ...], limit: int) -> Body:
    """Read the body chunk by chunk, decompressing gzip, within `limit` bytes both as sent and
    as decompressed: an oversized body, a zip bomb or trailing bytes after a gzip member cost at
    most `limit` bytes of reading and memory before the 413.
    """
    kind = media_type(request)
    if kind not in accepted:
        got = kind or "no content type"
        raise ApiError(415, f"content-type: expected {' or '.join(accepted)}, got {got}")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, f"content-encoding: {encoding!r} is not supported (use gzip)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, _too_large(limit))
    gunzip = Gunzip(limit) if encoding == "gzip" else None
    chunks: list[bytes] = []
    sent = size = 0
    try:
        async for chunk in request.stream():
            sent += len(chunk)
            if sent > limit:
                raise ApiError(413, _too_large(limit))
            pieces = gunzip.feed(chunk) if gunzip is not None else (chunk,)
            for piece in pieces:
                size += len(piece)
                if size > limit:
                    raise ApiError(413, _too_large(limit))
                chunks.append(piece)
    except ClientDisconnect:  # gone, or cut off by the server's body timeout (serving.py)
        raise ApiError(408, "body: the connection closed before the body was complete") from None
    if gunzip is not None:
        gunzip.finish()
    return Body(kind, b"".join(chunks))


class Gunzip:
    """Incremental gzip decoding of every member (RFC 1952 allows several, concatenated, as
    `gzip -c a b` writes), with the output of one call bounded by `limit` + 1 bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._out = 0
        self._pending = True  # a member has begun and not ended (a body has at least one)

    def feed(self, data: bytes) -> list[bytes]:
        pieces = []
        self._pending = self._pending or bool(data)
        while data:
            try:
                piece = self._member.decompress(data, self._limit + 1 - self._out)
            except zlib.error:
                raise ApiError(400, "body: malformed gzip data") from None
            self._out += len(piece)
            if self._member.unconsumed_tail or self._out > self._limit:
                raise ApiError(413, _too_large(self._limit))
            pieces.append(piece)
            data = b""
            if self._member.eof:  # the rest is the next member (or garbage: refused above)
                data = self._member.unused_data
                self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._pending = bool(data)
        return pieces

    def finish(self) -> None:
        if self._pending and not self._member.eof:
            raise ApiError(400, "body: truncated gzip data")


def parse_json(data: bytes) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"body: malformed JSON ({error})") from None


def _too_large(limit: int) -> str:
    return f"body: larger than the limit of {limit} bytes"
