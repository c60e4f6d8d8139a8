"""Fixtures for a real single-node Kafka broker (scripts/kafka.sh).

`kafka_broker` (session): a broker on free ports with its own data dir; `stop()`/`start()` keep
port and data, so a test can take the broker away and bring it back. `kafka_topic` (factory):
a fresh, uniquely named topic. Tests that use them are marked `kafka` automatically.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from weir.core.config import Settings, StreamBackend
from weir.stream import TopicAdmin

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka.sh"
KAFKA_FIXTURES = {"kafka_broker", "kafka_topic", "kafka_settings"}

TopicFactory = Callable[..., Awaitable[str]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class KafkaBroker:
    port: int
    controller_port: int
    data_dir: Path

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        pid_file = self.data_dir / "kafka.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None

    def start(self) -> None:
        self._run("start", timeout=180)

    def stop(self) -> None:
        self._run("stop", timeout=60)

    def _run(self, command: str, timeout: float) -> None:
        env = os.environ | {
            "WEIR_KAFKA_PORT": str(self.port),
            "WEIR_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "WEIR_KAFKA_DATA_DIR": str(self.data_dir),
        }
        done = subprocess.run(
            [str(KAFKA_SCRIPT), command], env=env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    data_dir = tmp_path_factory.mktemp("kafka")
    # Free ports can be taken by a concurrent run between probing and binding: try again.
    for attempt in range(3):
        broker = KafkaBroker(free_port(), free_port(), data_dir / f"broker-{attempt}")
        try:
            broker.start()
            break
        except RuntimeError:
            broker.stop()
            if attempt == 2:
                raise
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_settings(kafka_broker: KafkaBroker) -> Settings:
    return Settings(
        stream_backend=StreamBackend.KAFKA,
        kafka_bootstrap_servers=kafka_broker.bootstrap_servers,
        kafka_auto_offset_reset="earliest",
    )


@pytest.fixture
def kafka_topic(kafka_settings: Settings) -> TopicFactory:
    """`await kafka_topic(partitions=3, config=None)` -> the name of a new topic."""

    async def create(partitions: int = 3, config: dict[str, str] | None = None) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        async with TopicAdmin(kafka_settings) as admin:
            await admin.ensure_topic(name, partitions, replication_factor=1, config=config)
        return name

    return create


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)
