from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.api.doubles import IdleStore, RecordingProducer
from weir.api import create_app
from weir.core.config import Settings
from weir.store import Store


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def idle_store() -> IdleStore:
    return IdleStore()


@asynccontextmanager
async def app_client(
    settings: Settings, producer: RecordingProducer, store: IdleStore | Store
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the real app (lifespan run) with these settings and parts."""
    app = create_app(settings, producer=producer, store=store)  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http


@pytest.fixture
async def client(
    producer: RecordingProducer, idle_store: IdleStore
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(max_event_bytes=2048, max_batch_events=5, max_batch_bytes=8192)
    async with app_client(settings, producer, idle_store) as http:
        yield http


@pytest.fixture
async def roomy_client(
    producer: RecordingProducer, idle_store: IdleStore
) -> AsyncIterator[httpx.AsyncClient]:
    """The default limits (room for bodies of tens of kilobytes)."""
    async with app_client(Settings(), producer, idle_store) as http:
        yield http
