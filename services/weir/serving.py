"""uvicorn servers whose SIGTERM handling fits Weir's graceful shutdown."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn


class GracefulServer(uvicorn.Server):
    """On SIGTERM/SIGINT: stop accepting, finish in-flight requests, run the lifespan shutdown
    (flush the producer), then return normally so the caller can flush what it owns too.

    Stock uvicorn re-raises the signal after shutting down, which would kill the process before
    `weir dev` stops its consumer loop.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class SideServer(uvicorn.Server):
    """A secondary server (status, metrics) that leaves signals to the process's own logic."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
