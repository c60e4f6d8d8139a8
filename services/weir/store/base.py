"""The `Store` protocol both ClickHouse backends implement, and its errors.

Deliberately small: the schema and query modules are written against these five calls only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

# Query settings (e.g. insert_deduplication_token) and `{name:Type}` parameter values.
SettingsMap = Mapping[str, str | int | float | bool]
Parameters = Mapping[str, Any]

_ERROR_CODE = re.compile(r"Code: (\d+)\.")


class StoreError(Exception):
    """ClickHouse rejected a statement; `code` is ClickHouse's error code when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code if code is not None else error_code(message)


class StoreUnavailable(StoreError):
    """The engine could not be reached: retrying later may succeed."""


def error_code(message: str) -> int | None:
    match = _ERROR_CODE.search(message)
    return int(match.group(1)) if match else None


class Store(Protocol):
    """Async access to one ClickHouse engine. Blocking work runs in a worker thread.

    `insert` takes column-oriented data: `data[i]` holds every value of `columns[i]`.
    Values: str, int, float, bool, list[str] for Array(String); DateTime columns take int unix
    seconds or aware datetimes, DateTime64 columns take aware datetimes.

    `max_lookup_ids`: most ids one id lookup query carries (`events.existing_event_ids`). Each
    query has a fixed cost of milliseconds, so a backend takes as many as its transport allows.
    """

    max_lookup_ids: int

    async def command(self, sql: str, settings: SettingsMap | None = None) -> None: ...

    async def query_rows(
        self, sql: str, parameters: Parameters | None = None
    ) -> list[tuple[Any, ...]]: ...

    async def insert(
        self,
        table: str,
        columns: Sequence[str],
        data: Sequence[Sequence[Any]],
        settings: SettingsMap | None = None,
    ) -> None: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...
