"""One chDB session per process, used from many threads, with per-call settings.

chDB allows a single data path per process and runs one statement at a time per session, so
every call takes the engine lock. Per-call settings are applied with SET inside that lock and
reverted on the next call that does not ask for them, so they never leak between callers.
Shared by the chDB store and the test HTTP shim.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
from chdb.session import Session

from weir.store.base import StoreError

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_engines: dict[Path, tuple[ChdbEngine, int]] = {}
_engines_lock = threading.Lock()


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ClickHouse reads a `{name:String}` parameter's text in its escaped (TSV) format: `\t` is a TAB,
# `\N` is NULL, a raw TAB or a trailing backslash is a parse error. Escaping every character that
# format treats specially makes the engine see exactly the caller's string.
_ESCAPED = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def escape_parameter(value: str) -> str:
    """A string as the text of a `{name:String}` parameter that the engine reads back verbatim."""
    return value.translate(_ESCAPED)


class ChdbEngine:
    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._session: Any = cast(Any, Session)(str(path))  # chdb's API is untyped
        self.lock = threading.RLock()
        self._defaults: dict[str, str] = {}  # value of each setting before we first SET it
        self._applied: dict[str, str] = {}
        self._database = "default"

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
            with self.lock:
                self._session.close()

    def _raw(self, sql: str, fmt: str = "CSV", params: Mapping[str, str] | None = None) -> Any:
        try:
            return self._session.query(sql, fmt, params=dict(params or {}))
        except Exception as exc:  # chDB raises RuntimeError subclasses with ClickHouse's text
            raise StoreError(str(exc)) from None

    def _scope(self, settings: Mapping[str, str], database: str | None) -> None:
        for name in [n for n in self._applied if n not in settings]:
            self._raw(f"SET {name} = {quote(self._defaults[name])}")
            del self._applied[name]
        for name, value in settings.items():
            if not _SETTING_NAME.match(name):
                raise StoreError(f"invalid setting name {name!r}", code=115)
            if self._applied.get(name) == value:
                continue
            if name not in self._defaults:
                found = self._raw(
                    "SELECT value FROM system.settings WHERE name = {n:String}",
                    "ArrowTable",
                    {"n": name},
                )
                if found.num_rows == 0:
                    raise StoreError(f"Code: 115. DB::Exception: Unknown setting {name}", 115)
                self._defaults[name] = str(found.column(0)[0].as_py())
            self._raw(f"SET {name} = {quote(value)}")
            self._applied[name] = value
        wanted = database or "default"
        if wanted != self._database:
            self._raw(f"USE {wanted}")
            self._database = wanted

    def execute(
        self,
        sql: str,
        fmt: str = "CSV",
        settings: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        database: str | None = None,
    ) -> bytes:
        with self.lock:
            self._scope(settings or {}, database)
            result = self._raw(sql, fmt, params)
            return bytes(result.bytes())

    def rows(self, sql: str, params: Mapping[str, str] | None = None) -> list[tuple[Any, ...]]:
        with self.lock:
            self._scope({}, None)
            table = self._raw(sql, "ArrowTable", params)
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
        with self.lock:
            self._scope(settings or {}, database)
            try:
                inserter: Any = self._session.send_insert(insert_sql, fmt)
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
