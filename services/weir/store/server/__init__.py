"""The ClickHouse server backend: clickhouse-connect over HTTP, behind the `Store` protocol."""

from weir.store.server.store import ServerStore

__all__ = ["ServerStore"]
