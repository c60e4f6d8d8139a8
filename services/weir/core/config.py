"""Every setting Weir reads, from `WEIR_*` environment variables (or a `.env` file).

The README's settings table is generated from this class (`python -m weir.core.config`), so
the two cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from weir.core.event import Channel
from weir.core.keys import ApiKey


class StreamBackend(StrEnum):
    KAFKA = "kafka"
    LOCAL = "local"


class StoreBackend(StrEnum):
    CLICKHOUSE = "clickhouse"
    CHDB = "chdb"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEIR_", env_file=".env", extra="ignore")

    # --- which parts run -------------------------------------------------------------------
    stream_backend: StreamBackend = Field(
        StreamBackend.KAFKA, description="Event log: `kafka` or `local` (in-process, on disk)."
    )
    store_backend: StoreBackend = Field(
        StoreBackend.CLICKHOUSE, description="Store: `clickhouse` (server, HTTP) or `chdb`."
    )
    data_dir: Path = Field(
        Path(".weir-data"), description="Embedded default: where chDB and the local log keep data."
    )

    # --- HTTP ------------------------------------------------------------------------------
    host: str = Field(
        "127.0.0.1", description="Listen address of the API and of the consumer's status port."
    )
    port: int = Field(8080, description="API listen port.")
    metrics_port: int = Field(
        9100,
        description="Status port: Prometheus `/metrics`, and the probes the kubelet asks (the"
        " api's `/health` and `/ready`, served apart from its workers; the consumer's `/healthz`,"
        " `/ready` and `/status`). 0 disables it.",
    )
    api_workers: int = Field(
        0,
        ge=0,
        description="API worker processes; 0 means one per CPU the process may use (cgroup quota).",
    )
    # 128, the adaptive limit's ceiling: while acks are prompt a closed loop of 128 connections
    # over two workers is never refused, however unevenly the kernel spreads them (at 64, 1 in 8
    # requests was refused); when they are not, the limit falls (WEIR_API_LATENCY_TARGET_SECONDS).
    api_max_in_flight: int = Field(
        128,
        ge=1,
        description="Most requests one API worker handles at once (the ceiling of its adaptive"
        " limit); beyond its current limit it answers 503 at once.",
    )
    # 32 and 100 ms (below), chosen before cuts were checked: the load profile's peak (20,000
    # req/s offered on 2 cores, acks slow for want of CPU) kept what a fixed limit accepted over
    # the run; a floor of 8 at 50 ms halved what the peak accepted. With cuts that do not shorten
    # the waits undone (`LatencyLimit`), the same profile accepted 1,980 req/s over the run
    # against 1,938 fixed, 1,951 at the peak against 1,600 (p99 451 vs 519 ms, same session).
    api_min_in_flight: int = Field(
        32,
        ge=1,
        description="Floor of a worker's adaptive in-flight limit (at most"
        " `WEIR_API_MAX_IN_FLIGHT`): however slow Kafka's acks, this many are admitted at once.",
    )
    # An ack on a LAN takes a few ms at light load, so only queueing (or a stalled broker)
    # reaches 100 ms, within the p99 < 150 ms.
    api_latency_target_seconds: float = Field(
        0.1,
        ge=0,
        description="Wait for Kafka's ack a worker aims under: when more than 1 in 10 of its sends"
        " wait longer, its in-flight limit shrinks (to `WEIR_API_MIN_IN_FLIGHT` at most), else it"
        " grows back (to `WEIR_API_MAX_IN_FLIGHT`). 0: a fixed limit of `WEIR_API_MAX_IN_FLIGHT`.",
    )
    api_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest a client may take to send a request's headers (then: closed).",
    )
    api_keepalive_timeout_seconds: float = Field(
        120.0,
        gt=0,
        description=(
            "How long an idle keep-alive connection stays open. Longer than the clients' and "
            "load balancers' own idle timeouts (Go 90 s, AWS ALB 60 s), so that the client, not "
            "the server, closes it: a server closing first races the client's next request "
            "(reset)."
        ),
    )
    api_body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest a client may take to send a request's body after its headers (408).",
    )
    api_cors_origins: list[str] = Field(
        [],
        description=(
            "Origins browsers may post events from (JSON list of `scheme://host[:port]`, or "
            "`*`); none by default."
        ),
    )

    # --- keys and quotas -------------------------------------------------------------------
    api_keys: list[ApiKey] = Field(
        [], description="API keys as JSON: `[{id, kind, sha256, rate?, burst?}]` (`weir keys`)."
    )
    api_keys_file: Path | None = Field(
        None, description="A file with more keys in the same JSON (a mounted Secret)."
    )
    api_open: bool = Field(
        False, description="Serve without keys on a non-loopback address: anyone may use it."
    )
    key_rate: float = Field(
        1000.0,
        gt=0,
        description="Per-key quota: events (write) or requests (read) per second, per replica.",
    )
    key_burst: int = Field(2000, ge=1, description="Per-key bucket size, per replica.")

    # --- Kafka -----------------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_topic: str = Field("weir.events", description="Topic the API produces events to.")
    kafka_dlq_topic: str = Field("weir.events.dlq", description="Dead-letter topic.")
    kafka_topic_partitions: int = Field(
        6, description="Partitions `weir migrate` creates the topics with (the operator uses CRs)."
    )
    kafka_topic_replication_factor: int = Field(1, description="Replication of those topics.")
    kafka_consumer_group: str = Field("weir-consumer", description="Consumer group id.")
    kafka_auto_offset_reset: str = Field(
        "earliest", description="Where a new consumer group starts: `earliest` or `latest`."
    )
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. SCRAM-SHA-512.")
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")

    # --- producer (API) --------------------------------------------------------------------
    produce_timeout_seconds: float = Field(
        2.0, description="Longest an accept waits for the broker's ack before answering 503."
    )
    producer_linger_ms: int = Field(
        5,
        description="How long an idle partition's first send waits for others to join its batch.",
    )
    producer_max_pending: int = Field(
        20000, description="Events awaiting broker ack beyond which the API answers 503."
    )
    retry_after_seconds: int = Field(1, description="`Retry-After` sent with a 503.")

    # --- validation limits -----------------------------------------------------------------
    max_event_bytes: int = Field(32 * 1024, description="Largest body of POST /events (413).")
    max_batch_events: int = Field(1000, description="Most events in one POST /events/batch.")
    max_batch_bytes: int = Field(1024 * 1024, description="Largest uncompressed batch body (413).")
    timestamp_max_skew_seconds: int = Field(
        60, description="How far in the future an event timestamp may be."
    )
    timestamp_max_age_seconds: int = Field(
        30 * 86400, description="How old an event timestamp may be."
    )
    clock_clamp_future_seconds: int = Field(
        60,
        ge=0,
        description=(
            "With `sent_at`: a corrected timestamp more than this in the future is set to the "
            "receive time."
        ),
    )

    segment_default_channel: Channel = Field(
        "api",
        description="Channel of a `/v1/track` or `/v1/batch` message without `context.channel`.",
    )

    # --- ClickHouse ------------------------------------------------------------------------
    clickhouse_url: str = Field("http://127.0.0.1:8123", description="ClickHouse HTTP URL.")
    clickhouse_user: str = Field("default", description="ClickHouse user.")
    clickhouse_password: SecretStr = Field(SecretStr(""), description="ClickHouse password.")
    clickhouse_database: str = Field("weir", description="Database holding Weir's tables.")
    clickhouse_cluster: str | None = Field(
        None, description="Cluster name: replicated + Distributed tables `ON CLUSTER` when set."
    )
    table: str = Field("events", description="Raw events table (rollups are named after it).")
    ttl_days: int = Field(395, description="Raw and rollup retention in days (0 keeps forever).")

    # --- consumer --------------------------------------------------------------------------
    # 100,000 events and 64 MiB: a flush costs the engine a fixed amount per insert and per
    # lookup on top of its per-event work, so a consumer draining a backlog went 1.41x faster
    # than with 20,000 / 16 MiB (scripts/bench_consumer.py, README). While a batch fills slower
    # than that, the age limit flushes it first: the sizes matter only when there is lag.
    batch_max_events: int = Field(100_000, description="Consumer flushes at this many events...")
    batch_max_bytes: int = Field(64 * 1024 * 1024, description="...or this many bytes...")
    batch_max_seconds: float = Field(1.0, description="...or when the oldest is this old.")
    insert_backoff_max_seconds: float = Field(
        30.0, description="Cap of the exponential backoff while ClickHouse is unavailable."
    )
    dlq_max_ratio: float = Field(
        0.5, description="Consumer stops when dead letters exceed this share of a batch."
    )
    dlq_min_batch: int = Field(100, description="Batch size from which the DLQ guard applies.")

    # --- operations ------------------------------------------------------------------------
    log_level: str = Field("INFO", description="Logging level.")
    log_format: str = Field("json", description="`json` (one object per line) or `text`.")
    shutdown_grace_seconds: float = Field(
        20.0, description="Longest a SIGTERM'd process spends flushing before it exits."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def settings_table() -> str:
    """The README's settings table, generated so that it cannot drift from this class."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            shown = '""' if not default.get_secret_value() else "(set)"
        elif default is None:
            shown = "unset"
        else:
            shown = f"`{getattr(default, 'value', default)}`"
        rows.append(f"| `WEIR_{name.upper()}` | {shown} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
