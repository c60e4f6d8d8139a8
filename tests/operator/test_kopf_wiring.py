"""The kopf handlers against a real kube-apiserver (+ etcd), real Kafka and chDB.

The operator runs in this process (weir_operator.cli.run), watching one namespace.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

from tests.operator.kube import REPO, eventually, service_account_kubeconfig
from weir.core.config import Settings, get_settings
from weir.store import Store
from weir.stream import TopicAdmin

# A fresh machine builds kube-apiserver on first use (~6 min on 2 cores: operator/README.md).
pytestmark = pytest.mark.timeout(1200)
GROUP, VERSION = "weir.dev", "v1alpha1"
NAMESPACE = f"weir-op-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
async def operator(
    kube: client.ApiClient, kubeconfig: Path, kafka_broker: Any, weir_data_dir: Path
) -> AsyncIterator[client.CustomObjectsApi]:
    await client.CoreV1Api(kube).create_namespace({"metadata": {"name": NAMESPACE}})
    # The operator acts as the chart's ServiceAccount with the chart's Role: RBAC gaps fail here.
    operator_config = await service_account_kubeconfig(
        kube, kubeconfig, NAMESPACE, kubeconfig.parent / f"operator-{NAMESPACE}.kubeconfig"
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KUBECONFIG", str(operator_config))
        env.setenv("WEIR_KAFKA_BOOTSTRAP_SERVERS", kafka_broker.bootstrap_servers)
        env.setenv("WEIR_STORE_BACKEND", "chdb")
        env.setenv("WEIR_DATA_DIR", str(weir_data_dir))  # the operator shares chdb_store's engine
        env.setenv("WEIR_OPERATOR_RESYNC_SECONDS", "2")
        env.setenv("WEIR_OPERATOR_RETRY_SECONDS", "1")
        get_settings.cache_clear()
        from weir_operator.cli import run

        # Its own thread and loop, as kopf's KopfRunner does: on stop, kopf cancels every task
        # created in its loop after it started, which would include pytest-asyncio's.
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=lambda: asyncio.run(run([NAMESPACE], None, stop_flag=stop, ready_flag=ready)),
            name="weir-operator",
            daemon=True,
        )
        thread.start()
        assert ready.wait(30), "the operator did not start within 30 s"
        try:
            yield client.CustomObjectsApi(kube)
        finally:
            stop.set()
            thread.join(30)
            assert not thread.is_alive(), "the operator did not stop within 30 s"
            get_settings.cache_clear()


async def create(api: client.CustomObjectsApi, plural: str, body: dict[str, Any]) -> None:
    await api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, body)


async def get(api: client.CustomObjectsApi, plural: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = await api.get_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, plural, name
    )
    return result


async def patch_spec(
    api: client.CustomObjectsApi, plural: str, name: str, spec: dict[str, Any]
) -> None:
    await api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        plural,
        name,
        {"spec": spec},
        _content_type="application/merge-patch+json",
    )


def ready(obj: dict[str, Any]) -> dict[str, Any]:
    conditions = obj.get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Ready"), {})


async def wait_ready(
    api: client.CustomObjectsApi, plural: str, name: str, status: str, reason: str | None = None
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        obj = await get(api, plural, name)
        cond = ready(obj)
        generation_seen = (
            obj.get("status", {}).get("observedGeneration") == obj["metadata"]["generation"]
        )
        ok = cond.get("status") == status and (reason is None or cond.get("reason") == reason)
        return obj if ok and generation_seen else None

    return await eventually(probe, within=30)


def topic_body(name: str, **spec: Any) -> dict[str, Any]:
    base = {"partitions": 2, "replicationFactor": 1, "config": {"retention.ms": "3600000"}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Topic",
        "metadata": {"name": name},
        "spec": {**base, **spec},
    }


async def test_topic_lifecycle(operator: client.CustomObjectsApi, kafka_settings: Settings) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await create(operator, "topics", topic_body(name, deletionPolicy="Delete"))
    obj = await wait_ready(operator, "topics", name, "True")
    assert obj["status"]["partitions"] == 2 and obj["status"]["topicName"] == name
    assert obj["metadata"]["finalizers"], "kopf guards deletion with a finalizer"
    async with TopicAdmin(kafka_settings) as admin:
        await patch_spec(operator, "topics", name, {"partitions": 3})
        obj = await wait_ready(operator, "topics", name, "True")
        assert obj["status"]["partitions"] == 3
        assert (await admin.describe_topic(name)).partitions == 3  # type: ignore[union-attr]

        await patch_spec(operator, "topics", name, {"partitions": 1})
        obj = await wait_ready(operator, "topics", name, "False", "PartitionDecreaseRefused")
        assert "cannot lower" in ready(obj)["message"]
        await patch_spec(operator, "topics", name, {"partitions": 3})
        await wait_ready(operator, "topics", name, "True")

        # Drift behind the operator's back: the resync timer puts the spec's value back.
        await admin.alter_configs(name, {"retention.ms": "1000"})

        async def repaired() -> bool:
            found = await admin.describe_topic(name)
            return found is not None and found.configs.get("retention.ms") == "3600000"

        await eventually(repaired, within=20)

        await operator.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "topics", name)

        async def gone() -> bool:
            return await admin.describe_topic(name) is None

        await eventually(gone)
    events = await client.CoreV1Api(operator.api_client).list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={name}"
    )
    reasons = {e.reason for e in events.items}
    assert {"Reconciled", "PartitionDecreaseRefused", "Deleted"} <= reasons, reasons
    assert not [e.message for e in events.items if e.message.startswith("Timer ")], "no resync spam"


async def test_topic_with_impossible_replication_reports_permanent_error(
    operator: client.CustomObjectsApi,
) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    await create(operator, "topics", topic_body(name, replicationFactor=3))
    obj = await wait_ready(operator, "topics", name, "False")
    assert ready(obj)["reason"] == "InvalidReplicationFactor", ready(obj)


async def test_table_lifecycle(operator: client.CustomObjectsApi, chdb_store: Store) -> None:
    topic, table, database = (
        f"t-{uuid.uuid4().hex[:8]}",
        f"tab-{uuid.uuid4().hex[:6]}",
        f"op_{uuid.uuid4().hex[:8]}",
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Table",
        "metadata": {"name": table},
        "spec": {"database": database, "source": {"topicRef": topic}, "deletionPolicy": "Delete"},
    }
    await create(operator, "tables", body)
    obj = await wait_ready(operator, "tables", table, "False", "TopicNotFound")
    await create(operator, "topics", topic_body(topic, topicName=f"{topic}.events"))
    obj = await wait_ready(operator, "tables", table, "True")
    table_name = table.replace("-", "_")
    assert obj["status"]["table"] == f"{database}.{table_name}"
    assert obj["status"]["rows"] == 0 and obj["status"]["topic"] == f"{topic}.events"
    assert "configMap" not in obj["status"], "the chart's values configure the api/consumer"
    assert obj["spec"]["ttlDays"] == 395, "CRD default applied by the API server"

    await patch_spec(
        operator,
        "tables",
        table,
        {"extraColumns": [{"name": "os", "type": "String", "path": "device.os"}]},
    )
    obj = await wait_ready(operator, "tables", table, "True")
    assert any("ADD COLUMN" in s for s in obj["status"]["applied"])
    await patch_spec(
        operator,
        "tables",
        table,
        {"extraColumns": [{"name": "os", "type": "Int64", "path": "device.os"}]},
    )
    obj = await wait_ready(operator, "tables", table, "False", "DestructiveChangeRefused")
    assert "retyping refused" in ready(obj)["message"]

    await operator.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "tables", table)

    async def dropped() -> bool:
        rows = await chdb_store.query_rows(
            "SELECT count() FROM system.tables WHERE database = {db:String}", {"db": database}
        )
        return rows[0][0] == 0

    await eventually(dropped)


async def test_crd_validation_and_samples(operator: client.CustomObjectsApi) -> None:
    bad_topics = [
        topic_body("bad-partitions", partitions=0),
        topic_body("bad-policy", config={"cleanup.policy": "shred"}),
        topic_body("bad-deletion", deletionPolicy="Destroy"),
    ]
    for body in bad_topics:
        with pytest.raises(client.ApiException) as rejected:
            await create(operator, "topics", body)
        assert rejected.value.status == 422, body["metadata"]["name"]
    bad_table = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Table",
        "metadata": {"name": "bad-dims"},
        "spec": {
            "source": {"topicRef": "x"},
            "rollups": [{"granularity": "day", "dimensions": ["country"]}],
        },
    }
    with pytest.raises(client.ApiException) as rejected:
        await create(operator, "tables", bad_table)
    assert "rollup dimensions must be" in str(rejected.value.body)

    await create(operator, "topics", topic_body("renamed", deletionPolicy="Retain"))
    with pytest.raises(client.ApiException) as rejected:
        await patch_spec(operator, "topics", "renamed", {"topicName": "other"})
    assert "topicName is immutable" in str(rejected.value.body)

    for sample in sorted((REPO / "k8s" / "samples").glob("*.yaml")):
        for doc in yaml.safe_load_all(sample.read_text()):
            plural = {"Topic": "topics", "Table": "tables"}[doc["kind"]]
            await operator.create_namespaced_custom_object(GROUP, VERSION, "default", plural, doc)
            stored = await operator.get_namespaced_custom_object(
                GROUP, VERSION, "default", plural, doc["metadata"]["name"]
            )
            assert stored["spec"]["deletionPolicy"] == "Retain"
