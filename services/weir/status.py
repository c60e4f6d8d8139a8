"""Status ports: what a deployable serves on `WEIR_METRICS_PORT` beside its main port.

One owner for what the api's and the consumer's status ports share: the app (their routes plus
Prometheus `/metrics`), readiness checks run together and each bounded in time, and serving an
app from a thread with its own event loop (the api's supervisor, or its one worker on chDB), so
that a probe never waits behind the main port's event loop or accept queue.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import uvicorn
from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp

from weir.core.config import Settings
from weir.serving import SideServer, server_options


def status_app(routes: Sequence[BaseRoute], registry: CollectorRegistry = REGISTRY) -> Starlette:
    """A status port's app: `routes`, and `registry` in Prometheus' text format on `/metrics`."""
    return Starlette(routes=[*routes, Mount("/metrics", app=make_asgi_app(registry))])


class NotReady(Exception):
    """A readiness check failed; its text is plain words fit for the 503's message."""


@dataclass(frozen=True)
class Readiness:
    """The outcome of the readiness checks: the failed ones, by name, with their errors."""

    failed: Mapping[str, BaseException]

    @property
    def ready(self) -> bool:
        return not self.failed

    @property
    def message(self) -> str:
        """For the client: what failed, in plain words (never an exception's text)."""
        return "; ".join(f"{name}: {_plain(error)}" for name, error in self.failed.items())

    @property
    def detail(self) -> str:
        """For the log: what failed and why."""
        return "; ".join(f"{name}: {error!r}" for name, error in self.failed.items())


async def check_readiness(checks: Mapping[str, Awaitable[object]], timeout: float) -> Readiness:
    """Run the checks together, each within `timeout` seconds. A check fails by raising, by not
    answering in time, or by answering False (a store's ping)."""

    async def bounded(check: Awaitable[object]) -> None:
        if await asyncio.wait_for(check, timeout) is False:
            raise NotReady("not available")

    outcomes = await asyncio.gather(*map(bounded, checks.values()), return_exceptions=True)
    failed = {
        name: outcome
        for name, outcome in zip(checks, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    }
    return Readiness(dict(sorted(failed.items())))


def _plain(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return str(error) if isinstance(error, NotReady) else "not available"


class ThreadedStatusServer:
    """Serves `app` on `WEIR_HOST`:`WEIR_METRICS_PORT` from a thread with its own event loop.

    `start` returns once the port listens (and raises when it cannot be served); `stop` closes
    it and then runs `on_stop` in that loop (e.g. closing what the app's checks opened).
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        on_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.metrics_port,
            lifespan="off",  # routes only: nothing to start
            **server_options(settings),
        )
        self._server = _ListeningServer(config)
        self._on_stop = on_stop
        self._thread = threading.Thread(target=self._run, name="weir-status", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.listening.wait(0.05):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                port = self._server.config.port
                raise RuntimeError(f"the status port {port} could not be served (see the log)")

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        try:
            await self._server.serve()  # a port that cannot be bound exits this thread
        finally:
            if self._on_stop is not None:
                await self._on_stop()


class _ListeningServer(SideServer):
    """Tells, across threads, when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()
