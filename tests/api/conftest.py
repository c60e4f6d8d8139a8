from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from tests.api.doubles import IdleStore, RecordingProducer
from weir.api import create_app
from weir.core.config import Settings


@pytest.fixture
def producer() -> RecordingProducer:
    return RecordingProducer()


@pytest.fixture
def idle_store() -> IdleStore:
    return IdleStore()


@pytest.fixture
async def client(
    producer: RecordingProducer, idle_store: IdleStore
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(max_event_bytes=2048, max_batch_events=5, max_batch_bytes=8192)
    app = create_app(settings, producer=producer, store=idle_store)  # type: ignore[arg-type]
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://weir") as http:
            yield http
