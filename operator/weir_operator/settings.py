"""The operator's own knobs (`WEIR_OPERATOR_*`); connection settings come from weir.core.config."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEIR_OPERATOR_", extra="ignore")

    resync_seconds: float = Field(
        default=60.0,
        description="How often each Topic and Table is compared with Kafka/ClickHouse.",
    )
    retry_seconds: float = Field(
        default=15.0,
        description="Delay before retrying while Kafka, ClickHouse or a Topic is missing.",
    )
    kafka_timeout_seconds: float = Field(
        default=30.0, description="Longest one Kafka admin reconcile may take before it is retried."
    )
    liveness_port: int = Field(default=8080, description="kopf liveness endpoint port (/healthz).")
