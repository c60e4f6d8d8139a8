"""One partition of the local log: an append-only file of length- and CRC-framed records.

Frame: `>II` (payload length, CRC32 of payload), then the payload:
`>qiIH` (timestamp ms, key length or -1, value length, header count), key, value, and per
header `>HI` (name length, value length), name (UTF-8), value.
A torn tail (crash mid-write) fails its length or CRC check and is cut off on open.
"""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from pathlib import Path

_FRAME = struct.Struct(">II")
_FIXED = struct.Struct(">qiIH")
_HEADER = struct.Struct(">HI")

Headers = tuple[tuple[str, bytes], ...]
Decoded = tuple[int, bytes | None, bytes, Headers]  # timestamp_ms, key, value, headers


def encode(timestamp_ms: int, key: bytes | None, value: bytes, headers: Headers) -> bytes:
    parts = [_FIXED.pack(timestamp_ms, -1 if key is None else len(key), len(value), len(headers))]
    parts += [key or b"", value]
    for name, data in headers:
        raw_name = name.encode()
        parts += [_HEADER.pack(len(raw_name), len(data)), raw_name, data]
    payload = b"".join(parts)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def decode(payload: bytes) -> Decoded:
    timestamp_ms, key_len, value_len, header_count = _FIXED.unpack_from(payload)
    at = _FIXED.size
    key = None if key_len < 0 else payload[at : at + key_len]
    at += max(key_len, 0)
    value = payload[at : at + value_len]
    at += value_len
    headers = []
    for _ in range(header_count):
        name_len, data_len = _HEADER.unpack_from(payload, at)
        at += _HEADER.size
        name = payload[at : at + name_len].decode()
        at += name_len
        headers.append((name, payload[at : at + data_len]))
        at += data_len
    return timestamp_ms, key, value, tuple(headers)


class Segment:
    """Records are numbered from 0; offsets below `durable` are fsync'd and readable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._starts = array("q")  # byte position of each record: offset -> position
        self._size = self._scan_and_repair()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.durable = len(self._starts)

    @property
    def end(self) -> int:
        """Offset the next append gets (written, maybe not yet durable)."""
        return len(self._starts)

    def append(self, frame: bytes) -> int:
        offset = len(self._starts)
        self._starts.append(self._size)
        view = memoryview(frame)
        while view:  # a regular-file write is whole in practice; loop for the rare short one
            view = view[os.write(self._fd, view) :]
        self._size += len(frame)
        return offset

    def fsync(self) -> None:
        os.fsync(self._fd)

    def read(self, offset: int, limit: int) -> list[bytes]:
        """Payloads of durable records from `offset`, at most `limit` of them."""
        stop = min(self.durable, offset + limit)
        if offset >= stop:
            return []
        first = self._starts[offset]
        last = self._starts[stop] if stop < len(self._starts) else self._size
        data = os.pread(self._fd, last - first, first)
        payloads = []
        for index in range(offset, stop):
            at = self._starts[index] - first
            length, _ = _FRAME.unpack_from(data, at)
            payloads.append(data[at + _FRAME.size : at + _FRAME.size + length])
        return payloads

    def close(self) -> None:
        os.close(self._fd)

    def _scan_and_repair(self) -> int:
        """Index every whole record; cut the file after the last one that checks out."""
        if not self.path.exists():
            return 0
        good = 0
        with self.path.open("rb") as file:
            while frame := file.read(_FRAME.size):
                if len(frame) < _FRAME.size:
                    break
                length, crc = _FRAME.unpack(frame)
                payload = file.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    break
                self._starts.append(good)
                good += _FRAME.size + length
        if good < self.path.stat().st_size:
            os.truncate(self.path, good)
        return good
