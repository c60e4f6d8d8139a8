"""Fixtures for the operator tests: a chDB store (real ClickHouse engine, in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from weir.store.base import Store
from weir.store.chdb import ChdbStore


@pytest.fixture(scope="session")
def operator_chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # make_store(settings) opens `WEIR_DATA_DIR/chdb`: the operator and the tests share it.
    return tmp_path_factory.mktemp("operator") / "chdb"


@pytest.fixture
async def store(operator_chdb_path: Path) -> AsyncIterator[Store]:
    chdb = ChdbStore(operator_chdb_path)
    try:
        yield chdb
    finally:
        await chdb.close()


from tests.operator.kube import kube, kubeconfig  # noqa: E402, F401 - fixtures for the wiring tests
