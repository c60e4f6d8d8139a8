"""ClickHouse storage: schema/DDL (`schema`), /metrics queries (`queries`), two backends."""

from weir.store.base import Store, StoreError, StoreUnavailable, make_store

__all__ = ["Store", "StoreError", "StoreUnavailable", "make_store"]
