"""One chDB engine per process, reached through a small pool of connections, with per-call
settings.

chDB allows a single data path per process; since chDB 4 any number of connection handles may be
open on it, each with its own session state (SET, USE), and queries on different handles run in
parallel (one handle runs one statement at a time). So a consumer's insert no longer holds up the
API's queries, nor one HTTP request of the test shim another. Each call takes an idle handle (or
opens one, up to `MAX_CONNECTIONS`); its settings are applied with SET on that handle and reverted
on the next call there that does not ask for them, so they never leak between callers.
Shared by the chDB store and the test HTTP shim.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
from chdb.session import Session

from weir.store.base import StoreError

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_engines: dict[Path, tuple[ChdbEngine, int]] = {}
_engines_lock = threading.Lock()

# Handles open at most: callers beyond it wait for one. The engine's own threads do the work, so
# more handles than a few only add contention; a few let a query run beside a long insert.
MAX_CONNECTIONS = 4


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ClickHouse reads a `{name:String}` parameter's text in its escaped (TSV) format: `\t` is a TAB,
# `\N` is NULL, a raw TAB or a trailing backslash is a parse error. Escaping every character that
# format treats specially makes the engine see exactly the caller's string.
_ESCAPED = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def escape_parameter(value: str) -> str:
    """A string as the text of a `{name:String}` parameter that the engine reads back verbatim."""
    return value.translate(_ESCAPED)


class _Connection:
    """One handle on the engine and the session state set on it; used by one call at a time."""

    def __init__(self, path: Path) -> None:
        self.session: Any = cast(Any, Session)(str(path))  # chdb's API is untyped
        self.applied: dict[str, str] = {}  # settings SET on this handle, by name
        self.database = "default"

    def raw(self, sql: str, fmt: str = "CSV", params: Mapping[str, str] | None = None) -> Any:
        try:
            return self.session.query(sql, fmt, params=dict(params or {}))
        except Exception as exc:  # chDB raises RuntimeError subclasses with ClickHouse's text
            raise StoreError(str(exc)) from None


class ChdbEngine:
    def __init__(self, path: Path, max_connections: int = MAX_CONNECTIONS) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._max_connections = max_connections
        self._idle = [_Connection(path)]  # the first handle opens the engine on the path
        self._open = 1
        self._changed = threading.Condition()  # a handle became idle, or one more may open
        self._defaults: dict[str, str] = {}  # value of each setting before we first SET it

    @classmethod
    def acquire(cls, path: Path) -> ChdbEngine:
        """The process's engine for `path` (chDB cannot open a second one), reference counted."""
        key = path.resolve()
        with _engines_lock:
            engine, refs = _engines.get(key) or (cls(key), 0)
            _engines[key] = (engine, refs + 1)
            return engine

    def release(self) -> None:
        with _engines_lock:
            engine, refs = _engines[self.path]
            if refs > 1:
                _engines[self.path] = (engine, refs - 1)
                return
            del _engines[self.path]
            with self._changed:
                while len(self._idle) < self._open:  # calls still running: let them finish
                    self._changed.wait()
                for connection in self._idle:
                    connection.session.close()
                self._idle.clear()

    @contextmanager
    def _connection(
        self, settings: Mapping[str, str], database: str | None
    ) -> Iterator[_Connection]:
        """An idle handle, scoped to these settings and database, for the length of one call."""
        with self._changed:
            while not self._idle and self._open >= self._max_connections:
                self._changed.wait()
            connection = self._idle.pop() if self._idle else None
            if connection is None:
                self._open += 1
                try:
                    connection = _Connection(self.path)
                except BaseException:
                    self._open -= 1
                    raise
        try:
            self._scope(connection, settings, database)
            yield connection
        finally:
            with self._changed:
                self._idle.append(connection)
                self._changed.notify()

    def _scope(
        self, connection: _Connection, settings: Mapping[str, str], database: str | None
    ) -> None:
        applied = connection.applied
        for name in [n for n in applied if n not in settings]:
            connection.raw(f"SET {name} = {quote(self._defaults[name])}")
            del applied[name]
        for name, value in settings.items():
            if not _SETTING_NAME.match(name):
                raise StoreError(f"invalid setting name {name!r}", code=115)
            if applied.get(name) == value:
                continue
            if name not in self._defaults:
                found = connection.raw(
                    "SELECT value FROM system.settings WHERE name = {n:String}",
                    "ArrowTable",
                    {"n": name},
                )
                if found.num_rows == 0:
                    raise StoreError(f"Code: 115. DB::Exception: Unknown setting {name}", 115)
                self._defaults[name] = str(found.column(0)[0].as_py())
            connection.raw(f"SET {name} = {quote(value)}")
            applied[name] = value
        wanted = database or "default"
        if wanted != connection.database:
            connection.raw(f"USE {wanted}")
            connection.database = wanted

    def execute(
        self,
        sql: str,
        fmt: str = "CSV",
        settings: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        database: str | None = None,
    ) -> bytes:
        with self._connection(settings or {}, database) as connection:
            return bytes(connection.raw(sql, fmt, params).bytes())

    def rows(self, sql: str, params: Mapping[str, str] | None = None) -> list[tuple[Any, ...]]:
        with self._connection({}, None) as connection:
            table = connection.raw(sql, "ArrowTable", params)
        columns = [column.to_pylist() for column in table.columns]
        return list(zip(*columns, strict=True)) if columns else []

    def insert_stream(
        self,
        insert_sql: str,
        fmt: str,
        chunks: Iterable[bytes],
        settings: Mapping[str, str] | None = None,
        database: str | None = None,
    ) -> int:
        """Run `INSERT INTO t (cols)` with bytes in `fmt` pushed chunk by chunk; rows written."""
        with self._connection(settings or {}, database) as connection:
            try:
                inserter: Any = connection.session.send_insert(insert_sql, fmt)
                with inserter:
                    for chunk in chunks:
                        inserter.append(chunk)
                    return int(inserter.finish().rows_written)
            except StoreError:
                raise
            except Exception as exc:
                message = str(exc)  # drop the Python wrapper's prefix before "Code: N."
                raise StoreError(message[max(message.find("Code: "), 0) :]) from None


def arrow_stream(columns: list[str], data: list[list[Any]] | Any) -> bytes:
    """Column-oriented Python values as one Arrow IPC stream (chDB's fastest input we measured)."""
    arrays = []
    for values in data:
        array = pa.array(values)
        if pa.types.is_null(array.type):
            array = pa.array(values, pa.string())
        elif pa.types.is_list(array.type) and pa.types.is_null(array.type.value_type):
            array = pa.array(values, pa.list_(pa.string()))
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, names=columns)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()
