"""A test double for ClickHouse's HTTP *protocol* around the real engine (chDB).

This is not a ClickHouse server: it hosts one chDB engine in one process and implements the
subset of the HTTP interface clickhouse-connect uses — `/ping`; the query in the URL or the body;
`FORMAT Native` results; INSERT with a Native (or any other format's) body; settings such as
`insert_deduplication_token` as URL parameters; `param_<name>` query parameters; `database`;
request bodies compressed with lz4/zstd/gzip/deflate; `X-ClickHouse-*` response headers; errors
as status 500 with ClickHouse's `Code: N. DB::Exception: ...` text; a URL parameter or form field
longer than a server's default `http_max_field_value_size` (128 KiB) refused as a server refuses
it, so code that would send one fails here too. Sessions (`session_id`) are
accepted and ignored: each request runs on an idle handle of the engine's pool, side by side
with the others, as a server runs them.

It exists so the clickhouse-connect backend runs its real code path in tests, and so several
consumer processes can share one chDB data path (chDB allows one process per path).

    python -m tests.harness.chdb_http --port 8123 --data-dir /tmp/weir-chdb
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
import zlib
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import lz4.frame
from backports import zstd

from weir.store import StoreError
from weir.store.chdb import ChdbEngine

# URL parameters that steer the HTTP layer rather than being ClickHouse settings.
HTTP_ONLY = {
    "query", "database", "session_id", "session_timeout", "session_check", "query_id",
    "default_format", "user", "password", "quota_key", "compress", "decompress", "buffer_size",
    "wait_end_of_query", "client_protocol_version", "role",
}  # fmt: skip
_INSERT_WITH_DATA = re.compile(r"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)\s*;?\s*$", re.I | re.S)
# With no `query` parameter, an INSERT's data follows its `FORMAT x` line in the body.
_INSERT_IN_BODY = re.compile(rb"^\s*(INSERT\s+INTO\s+.+?\s+FORMAT\s+\w+)[ \t]*\r?\n", re.I | re.S)


def _lz4_frames(data: bytes) -> bytes:
    """Every frame of an lz4 stream: clickhouse-connect compresses each block of an insert as a
    frame of its own, and `lz4.frame.decompress` returns the first one only (the shim once
    stored 8,192 rows of a 20,000-row insert and answered success, as the fault soak found)."""
    out = []
    while data:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        out.append(decompressor.decompress(data))
        data = decompressor.unused_data
    return b"".join(out)


def _gzip_members(data: bytes) -> bytes:
    out = []
    while data:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out.append(decompressor.decompress(data))
        data = decompressor.unused_data
    return b"".join(out)


_DECODERS = {
    "lz4": _lz4_frames,
    "zstd": zstd.decompress,  # every frame, unlike lz4.frame.decompress
    "gzip": _gzip_members,
    "deflate": zlib.decompress,
}
VERSION = "26.9.0 (chdb HTTP shim)"


# ClickHouse's default `http_max_field_value_size` (since 23.6): the longest URL parameter or
# multipart form field a server takes (query parameters travel as one or the other).
MAX_FIELD_VALUE_BYTES = 128 * 1024


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    message = BytesParser(policy=default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ChdbHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests read results
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/ping", "/") and "query" not in dict(parse_qsl(url.query)):
            return self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            body = b"".join(parts)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        return _DECODERS[encoding](body) if encoding in _DECODERS else body

    def _handle(self) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        body = self._body()
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):  # large query parameters
            params |= _form_fields(content_type, body)
            body = b""
        query_id = params.get("query_id") or str(uuid.uuid4())
        if any(len(value.encode()) > MAX_FIELD_VALUE_BYTES for value in params.values()):
            return self._fail(1000, "HTML Form Exception: Field value too long", query_id)
        query = params.get("query")
        if query is None:
            head = _INSERT_IN_BODY.match(body)
            cut = head.end() if head else len(body)
            query, body = (head.group(1) if head else body).decode(), body[cut:]
        settings = {k: v for k, v in params.items() if k not in HTTP_ONLY and k[:6] != "param_"}
        bind = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        database = params.get("database")
        fmt = params.get("default_format", "TabSeparated")
        engine = self.server.engine
        written = 0
        try:
            insert = _INSERT_WITH_DATA.match(query) if body else None
            if insert:
                written = engine.insert_stream(
                    insert.group(1), insert.group(2), [body], settings, database
                )
                result = b""
            else:
                if body:
                    query = query + "\n" + body.decode()
                result = engine.execute(query, fmt, settings, bind, database)
        except StoreError as exc:
            return self._fail(exc.code or 1000, str(exc), query_id)
        summary = {"read_rows": "0", "read_bytes": "0", "written_rows": str(written),
                   "written_bytes": "0", "total_rows_to_read": "0", "result_rows": "0",
                   "result_bytes": str(len(result)), "elapsed_ns": "0"}  # fmt: skip
        self._reply(200, result, {
            "Content-Type": "application/octet-stream" if fmt == "Native" else "text/plain",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Summary": json.dumps(summary),
        })  # fmt: skip

    def _fail(self, code: int, text: str, query_id: str) -> None:
        """An error as a server answers it: status 500, `Code: N. DB::Exception: ...`."""
        if not text.startswith("Code:"):
            text = f"Code: {code}. DB::Exception: {text}"
        self._reply(
            500,
            f"{text} (version {VERSION})\n".encode(),
            {"X-ClickHouse-Exception-Code": str(code), "X-ClickHouse-Query-Id": query_id},
        )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        headers.setdefault("X-ClickHouse-Server-Display-Name", "chdb-http-shim")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ChdbHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, data_dir: Path, host: str = "127.0.0.1") -> None:
        self.engine = ChdbEngine.acquire(data_dir)
        super().__init__((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    server = ChdbHTTPServer(args.port, args.data_dir, args.host)
    print(f"chdb HTTP shim listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.engine.release()


if __name__ == "__main__":
    main()
