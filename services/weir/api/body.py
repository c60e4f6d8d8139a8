"""Reading request bodies within the configured limits: content type, gzip, size, JSON/NDJSON."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson
from fastapi import Request

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
    """Read the body, decompressing gzip, refusing anything over `limit` uncompressed bytes.

    The limit is enforced while reading, so an oversized or zip-bomb body costs at most `limit`
    bytes of memory.
    """
    kind = media_type(request)
    if kind not in accepted:
        got = kind or "no content type"
        raise ApiError(415, f"content-type: expected {' or '.join(accepted)}, got {got}")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, f"content-encoding: {encoding!r} is not supported (use gzip)")
    declared = request.headers.get("content-length")
    if encoding == "identity" and declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, _too_large(limit))
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if inflater is not None:
            try:
                chunk = inflater.decompress(chunk, limit + 1 - size)
            except zlib.error:
                raise ApiError(400, "body: malformed gzip data") from None
            if inflater.unconsumed_tail:
                raise ApiError(413, _too_large(limit))
        size += len(chunk)
        if size > limit:
            raise ApiError(413, _too_large(limit))
        chunks.append(chunk)
    if inflater is not None and not inflater.eof:
        raise ApiError(400, "body: truncated gzip data")
    return Body(kind, b"".join(chunks))


def parse_json(data: bytes) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"body: malformed JSON ({error})") from None


def _too_large(limit: int) -> str:
    return f"body: larger than the limit of {limit} bytes"
