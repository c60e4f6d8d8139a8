"""Connection settings shared by Weir's Kafka clients (producer, consumer, admin)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.helpers import create_ssl_context

from weir.core.config import Settings


def client_options(settings: Settings, bootstrap_servers: str | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments: where the brokers are and how to authenticate."""
    protocol = settings.kafka_security_protocol.upper()
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers or settings.kafka_bootstrap_servers,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        # The system trust store: brokers present certificates signed by a CA the image trusts.
        options["ssl_context"] = create_ssl_context()
    if protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password else None,
        )
    return options


def throttle_metadata_retries(client: Any, backoff_seconds: float = 0.1) -> None:
    """Pause after a failed metadata refresh.

    aiokafka retries a failed refresh at once (the sender waits on it while a leader is
    unknown), which spins the event loop at 100% CPU while the broker refuses connections
    (aiokafka issue #496). The API must stay responsive to answer its 503s, so back off.
    """
    update = client._metadata_update

    async def update_or_back_off(cluster_metadata: Any, topics: Any) -> bool:
        updated = bool(await update(cluster_metadata, topics))
        if not updated:
            await asyncio.sleep(backoff_seconds)
        return updated

    client._metadata_update = update_or_back_off
