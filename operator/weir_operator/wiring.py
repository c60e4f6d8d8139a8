"""Topic -> table wiring, published once: a ConfigMap per Table holding the WEIR_* env.

The Table CR is the single source of truth. The operator resolves `source.topicRef` to the
Kafka topic name and writes `weir-table-<name>`; the api and consumer Deployments load it with
`envFrom`, so they cannot disagree with the Table about the topic, database or table.
"""

from __future__ import annotations

from typing import Any

from weir.store.spec import TableSpec


def configmap_name(table_resource: str) -> str:
    return f"weir-table-{table_resource}"


def wiring_env(table: TableSpec, kafka_topic: str) -> dict[str, str]:
    """Exactly the weir.core.config.Settings variables that name the pipeline's ends."""
    env = {
        "WEIR_KAFKA_TOPIC": kafka_topic,
        "WEIR_CLICKHOUSE_DATABASE": table.database,
        "WEIR_TABLE": table.table,
        "WEIR_TTL_DAYS": str(table.ttl_days),
    }
    if table.cluster:
        env["WEIR_CLICKHOUSE_CLUSTER"] = table.cluster
    return env


def configmap_body(table_resource: str, table: TableSpec, kafka_topic: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(table_resource),
            "labels": {
                "app.kubernetes.io/managed-by": "weir-operator",
                "weir.dev/table": table_resource,
            },
        },
        "data": wiring_env(table, kafka_topic),
    }
