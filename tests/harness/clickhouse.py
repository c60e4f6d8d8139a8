"""Fixtures for the ClickHouse engine: chDB in-process and behind its HTTP interface.

- `weir_data_dir`: the session's data dir. chDB opens ONE data path per process, so every test
  that runs chDB in-process must use `Settings(data_dir=weir_data_dir)` (path `data_dir/chdb`).
- `chdb_store`: a `ChdbStore` on that path.
- `clickhouse_http`: URL of a chDB HTTP shim (tests/harness/chdb_http.py) in its own process,
  with its own data dir, on a free port; `server_store`: a clickhouse-connect `ServerStore` on it.
- `table_spec`: a `TableSpec` in a fresh database, so tests sharing one engine do not collide.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from weir.store import TableSpec
from weir.store.chdb import ChdbStore
from weir.store.server import ServerStore

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ping(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chdb HTTP shim exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=1) as response:
                if response.read() == b"Ok.\n":
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"chdb HTTP shim at {url} did not answer /ping")


def start_shim(data_dir: Path, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Start the shim as a separate process; the caller terminates it."""
    port = port or free_port()
    command = [sys.executable, "-m", "tests.harness.chdb_http", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_ping(url, process)
    return url, process


@pytest.fixture(scope="session")
def weir_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("weir-data")


@pytest.fixture(scope="session")
def clickhouse_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, process = start_shim(tmp_path_factory.mktemp("chdb-http"))
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
async def chdb_store(weir_data_dir: Path) -> AsyncIterator[ChdbStore]:
    store = ChdbStore(weir_data_dir / "chdb")
    yield store
    await store.close()


@pytest.fixture
async def server_store(clickhouse_http: str) -> AsyncIterator[ServerStore]:
    store = ServerStore(clickhouse_http)
    yield store
    await store.close()


@pytest.fixture
def table_spec() -> TableSpec:
    return TableSpec(database=f"t_{uuid.uuid4().hex[:12]}", table="events", ttl_days=395)
