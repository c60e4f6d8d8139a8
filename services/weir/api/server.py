"""`weir api`: uvicorn with one worker process per CPU, and the status port.

One Python process uses one core, so the API runs `WEIR_API_WORKERS` uvicorn workers (default:
the CPUs this process may use, cgroup quota included) on one listening socket. Each worker has its
own Kafka producer and admission limit. The supervising process serves the status port
(`WEIR_METRICS_PORT`, `api/status.py`) from a thread: the probes, and the Prometheus metrics of all
workers added up through prometheus_client's multiprocess mode. On chDB (`weir dev`-style setups)
there is one worker, chDB's engine living in one process, and a thread of it serves that port.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from socket import socket
from typing import Any

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from weir.api.app import serving_app
from weir.api.auth import check_exposure
from weir.api.status import Workers, api_status_app
from weir.core.config import Settings, StoreBackend, get_settings
from weir.runtime import tune_gc
from weir.serving import GracefulServer, server_options
from weir.status import ThreadedStatusServer
from weir.store import make_store

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
    app = serving_app(settings, workers=worker_count(settings))
    tune_gc()
    return app


def worker_count(settings: Settings) -> int:
    """`WEIR_API_WORKERS`, or one per CPU; always 1 on chDB, which one process opens at a time."""
    if settings.store_backend is StoreBackend.CHDB:
        if settings.api_workers > 1:
            log.warning("chDB is opened by one process only: serving with 1 worker")
        return 1
    return settings.api_workers or available_cpus()


class Supervisor(Multiprocess):
    """uvicorn's supervisor, also noting which workers have finished starting (the status port's
    readiness; asked over uvicorn's own health-check pipe, by this loop only: the status thread
    reading the pipe too would take the supervisor's answers), and taking a replaced worker's
    live gauges out of Prometheus' sums."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets)
        self._started: frozenset[int | None] = frozenset()  # pids; replaced whole, read by threads

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        # A replaced worker's live gauges (its admission limit, its pending sends) leave the sums.
        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                mark_process_dead(pid)  # type: ignore[no-untyped-call]
        for process in list(self.processes):
            if self.should_exit.is_set():
                return
            if process.pid not in self._started and process.is_ready(
                timeout=self.config.timeout_worker_healthcheck
            ):
                self._started = self._started | {process.pid}

    def workers(self) -> Workers:
        alive = [p.pid for p in list(self.processes) if p.process.is_alive()]
        serving = sum(pid in self._started for pid in alive)
        return Workers(alive=len(alive), serving=serving, expected=self.processes_num)


def serve_api(settings: Settings) -> None:
    check_exposure(settings)
    workers = worker_count(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        **server_options(settings),
    }
    if workers == 1:  # this process serves (logs and traces are configured by the CLI already)
        server = GracefulServer(uvicorn.Config(serving_app(settings), **options))
        tune_gc()

        def this_worker() -> Workers:
            return Workers(alive=1, serving=int(server.started), expected=1)

        with _status_port(settings, this_worker, multiprocess=False):
            server.run()
        return
    config = uvicorn.Config(
        "weir.api.server:worker_app",
        factory=True,
        workers=workers,
        **options,
    )
    owned_dir = _multiprocess_dir()
    try:
        supervisor = Supervisor(config, sockets=[config.bind_socket()])
        with _status_port(settings, supervisor.workers, multiprocess=True):
            supervisor.run()
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


@contextlib.contextmanager
def _status_port(
    settings: Settings, workers: Callable[[], Workers], multiprocess: bool
) -> Iterator[None]:
    """Serve the status port while the body runs (not at all when `WEIR_METRICS_PORT` is 0)."""
    if not settings.metrics_port:
        yield
        return
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = REGISTRY
    if multiprocess:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    # Its own store, opened here: a ClickHouse client of its own, or on chDB the process's
    # one engine, shared with the worker's store (reference counted).
    store = make_store(settings)
    status = ThreadedStatusServer(
        api_status_app(settings, workers, store, registry), settings, on_stop=store.close
    )
    status.start()
    try:
        yield
    finally:
        status.stop()
