"""An app served in the test's own event loop by uvicorn as `weir api` runs a worker (Weir's HTTP
protocol and server options), on a free port, for raw-socket and HTTP tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from tests.harness.kafka import free_port
from weir.core.config import Settings
from weir.serving import SideServer, server_options


@asynccontextmanager
async def served(app: Any, settings: Settings, **options: Any) -> AsyncIterator[int]:
    """Serve `app` until the block ends; yields the port. `options` override uvicorn's."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, **(server_options(settings) | options)
    )
    server = SideServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server started"
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task
