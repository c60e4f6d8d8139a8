"""The store contract against chDB in-process and against clickhouse-connect over HTTP."""

from __future__ import annotations

import pytest

from tests.store.contract import StoreContract
from weir.store.chdb import ChdbStore
from weir.store.server import ServerStore


class TestChdbStore(StoreContract):
    @pytest.fixture
    def store(self, chdb_store: ChdbStore) -> ChdbStore:
        return chdb_store


class TestServerStore(StoreContract):
    @pytest.fixture
    def store(self, server_store: ServerStore) -> ServerStore:
        return server_store
