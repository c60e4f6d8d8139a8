"""Starting Weir's deployables as real OS processes, the way Kubernetes would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from tests.harness.clickhouse import free_port
from weir.core.config import Settings, StoreBackend, StreamBackend

REPO_ROOT = Path(__file__).resolve().parents[2]


def dev_settings(data_dir: Path, **overrides: Any) -> Settings:
    """`weir dev`'s embedded setup (in-process log, chDB in `data_dir`) on a free port, no
    Prometheus port; `overrides` are further settings."""
    return Settings(
        stream_backend=StreamBackend.LOCAL,
        store_backend=StoreBackend.CHDB,
        data_dir=data_dir,
        port=free_port(),
        metrics_port=0,
        **overrides,
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The `WEIR_*` environment that reproduces `settings` in a child process."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if hasattr(getattr(settings, name), "get_secret_value"):
            value = getattr(settings, name).get_secret_value()
        env[f"WEIR_{name.upper()}"] = str(value)
    env["WEIR_LOG_FORMAT"] = "text"
    return env


def start_weir(command: str, settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "weir.cli", command],
        env=settings_env(settings),
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def get_json(url: str, timeout: float = 5.0) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: dict[str, object] = orjson.loads(response.read())
        return body


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            get_json(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")
