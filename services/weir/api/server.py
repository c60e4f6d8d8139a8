"""`weir api`: uvicorn with one worker process per CPU, and the Prometheus port.

One Python process uses one core, so the API runs `WEIR_API_WORKERS` uvicorn workers (default:
the CPUs this process may use, cgroup quota included) on one listening socket. Each worker has its
own Kafka producer and admission limit. Prometheus metrics of all workers are added up through
prometheus_client's multiprocess mode and served by the supervising process on
`WEIR_METRICS_PORT`. On chDB (`weir dev`-style setups) there is one worker: chDB's engine lives
in one process.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from weir.api.app import serving_app
from weir.api.auth import check_exposure
from weir.core.config import Settings, StoreBackend, get_settings
from weir.serving import GracefulServer, server_options

_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota when one is set."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else max(1, cpus)


def _cgroup_quota() -> float | None:
    v2 = Path("/sys/fs/cgroup/cpu.max")
    v1_quota, v1_period = (
        Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
        Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    )
    try:
        if v2.exists():
            quota, period = v2.read_text().split()
            return None if quota == "max" else int(quota) / int(period)
        if v1_quota.exists():
            quota_us = int(v1_quota.read_text())
            return None if quota_us < 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None


def worker_app() -> ASGIApp:
    """The app of one worker process (uvicorn's `factory`): settings, logs, traces from the env."""
    from weir.observability.logs import configure_logging
    from weir.observability.tracing import configure_tracing

    settings = get_settings()
    configure_logging(settings)
    configure_tracing("weir-api")
    return serving_app(settings, workers=worker_count(settings))


def worker_count(settings: Settings) -> int:
    """`WEIR_API_WORKERS`, or one per CPU; always 1 on chDB, which one process opens at a time."""
    if settings.store_backend is StoreBackend.CHDB:
        if settings.api_workers > 1:
            log.warning("chDB is opened by one process only: serving with 1 worker")
        return 1
    return settings.api_workers or available_cpus()


def serve_api(settings: Settings) -> None:
    check_exposure(settings)
    workers = worker_count(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        **server_options(settings),
    }
    if workers == 1:  # this process serves (logs and traces are configured by the CLI already)
        _serve_metrics(settings, multiprocess=False)
        GracefulServer(uvicorn.Config(serving_app(settings), **options)).run()
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "weir.api.server:worker_app",
        factory=True,
        workers=workers,
        **options,
    )
    owned_dir = _multiprocess_dir()
    try:
        _serve_metrics(settings, multiprocess=True)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if owned_dir is not None:
            shutil.rmtree(owned_dir, ignore_errors=True)


def _multiprocess_dir() -> Path | None:
    """Point prometheus_client's multiprocess mode at a fresh directory (before any worker
    starts); returns it when we created it, so it is removed at exit."""
    if os.environ.get(_MULTIPROC_DIR):
        return None
    directory = Path(tempfile.mkdtemp(prefix="weir-api-metrics-"))
    os.environ[_MULTIPROC_DIR] = str(directory)
    return directory


def _serve_metrics(settings: Settings, multiprocess: bool) -> None:
    if not settings.metrics_port:
        return
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = REGISTRY
    if multiprocess:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(settings.metrics_port, addr=settings.host, registry=registry)
