"""The chDB backend: ClickHouse's engine in this process (`engine`), behind the `Store` protocol
(`store`)."""

from weir.store.chdb.engine import ChdbEngine
from weir.store.chdb.store import ChdbStore

__all__ = ["ChdbEngine", "ChdbStore"]
