"""Properties of the rendered chart that a values change could break."""

from __future__ import annotations

import pytest

from tests.chart.conftest import by_kind, container_env, one
from tests.chart.tooling import CHART, Manifest, RenderError, Tools
from weir.store.spec import DEFAULT_ROLLUPS

FULL = CHART / "ci" / "full-in-cluster-values.yaml"
POD_KINDS = {"Deployment": ("spec", "template", "spec"), "Job": ("spec", "template", "spec")}
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN")


def pod_specs(manifests: list[Manifest]) -> list[tuple[str, Manifest]]:
    specs = []
    for m in manifests:
        if m["kind"] == "Pod":
            specs.append((f"Pod/{m['metadata']['name']}", m["spec"]))
        elif m["kind"] in POD_KINDS:
            specs.append((f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"]))
    return specs


def all_renders(default: list[Manifest], ci: dict[str, list[Manifest]]) -> list[list[Manifest]]:
    return [default, *ci.values()]


def test_keda_trigger_metadata_equals_consumer_env(tools: Tools) -> None:
    manifests = tools.render(
        values=[FULL],
        sets={"consumer.group": "g-7", "consumer.autoOffsetReset": "latest", "topic.name": "t.x"},
    )
    env = container_env(one(manifests, "Deployment", "weir-consumer"))
    (trigger,) = one(manifests, "ScaledObject", "weir-consumer")["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    pairs = {
        "bootstrapServers": "WEIR_KAFKA_BOOTSTRAP_SERVERS",
        "consumerGroup": "WEIR_KAFKA_CONSUMER_GROUP",
        "topic": "WEIR_KAFKA_TOPIC",
        "offsetResetPolicy": "WEIR_KAFKA_AUTO_OFFSET_RESET",
    }
    for key, var in pairs.items():
        assert trigger["metadata"][key] == env[var]["value"], key
    assert (trigger["metadata"]["consumerGroup"], trigger["metadata"]["topic"]) == ("g-7", "t.x")
    assert trigger["metadata"]["offsetResetPolicy"] == "latest"


def test_topic_resource_and_api_agree_on_the_stream(ci_renders: dict[str, list[Manifest]]) -> None:
    manifests = ci_renders["full-in-cluster-values.yaml"]
    topic = by_kind(manifests, "Topic")[0]["spec"]
    table = by_kind(manifests, "Table")[0]["spec"]
    api_env = container_env(one(manifests, "Deployment", "weir-api"))
    assert topic["topicName"] == api_env["WEIR_KAFKA_TOPIC"]["value"]
    assert topic["partitions"] == 24
    assert table["source"]["topicRef"] == by_kind(manifests, "Topic")[0]["metadata"]["name"]
    assert table["cluster"] == api_env["WEIR_CLICKHOUSE_CLUSTER"]["value"] == "events"
    assert table["tableName"] == api_env["WEIR_TABLE"]["value"]


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        ({"api.autoscaling.enabled": "false", "api.replicas": "1"}, False),
        ({"api.autoscaling.enabled": "false", "api.replicas": "2"}, True),
        ({"api.autoscaling.minReplicas": "1"}, False),
        ({"api.autoscaling.minReplicas": "3"}, True),
        ({"api.autoscaling.minReplicas": "3", "api.pdb.enabled": "false"}, False),
    ],
)
def test_pdb_only_when_replicas_allow(tools: Tools, sets: dict[str, str], expected: bool) -> None:
    assert bool(by_kind(tools.render(sets=sets), "PodDisruptionBudget")) is expected


def test_keda_and_consumer_hpa_are_exclusive(ci_renders: dict[str, list[Manifest]]) -> None:
    for name, manifests in ci_renders.items():
        keda = by_kind(manifests, "ScaledObject")
        hpa = [
            h
            for h in by_kind(manifests, "HorizontalPodAutoscaler")
            if "consumer" in h["metadata"]["name"]
        ]
        assert len(keda) + len(hpa) == 1, name
        consumer = one(manifests, "Deployment", "weir-consumer")
        assert "replicas" not in consumer["spec"], f"{name}: the autoscaler owns replicas"
    assert by_kind(ci_renders["full-in-cluster-values.yaml"], "ScaledObject")
    assert not by_kind(ci_renders["keda-off-values.yaml"], "ScaledObject")


def test_consumer_replicas_bounded_by_partitions(tools: Tools) -> None:
    with pytest.raises(RenderError, match=r"must be <= topic\.partitions"):
        tools.render(sets={"topic.partitions": "4", "consumer.keda.maxReplicaCount": "5"})
    with pytest.raises(RenderError, match=r"must be <= topic\.partitions"):
        tools.render(
            sets={"topic.partitions": "2", "consumer.keda.enabled": "false"},
            api_versions=(),
        )


def test_every_pod_and_container_is_restricted(
    default_render: list[Manifest], ci_renders: dict[str, list[Manifest]]
) -> None:
    for manifests in all_renders(default_render, ci_renders):
        for where, spec in pod_specs(manifests):
            pod = spec["securityContext"]
            assert (
                pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault"
            ), where
            for container in spec["containers"] + spec.get("initContainers", []):
                ctx = container["securityContext"]
                assert ctx["allowPrivilegeEscalation"] is False, where
                assert ctx["readOnlyRootFilesystem"] is True, where
                assert ctx["capabilities"]["drop"] == ["ALL"], where
                assert container["resources"]["requests"], where
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert "/tmp" in mounts, f"{where}: read-only root needs a writable /tmp"


def test_no_secret_value_in_plain_env(
    default_render: list[Manifest], ci_renders: dict[str, list[Manifest]], tools: Tools
) -> None:
    sasl = tools.render(
        sets={
            "kafka.sasl.mechanism": "PLAIN",
            "kafka.sasl.username": "u",
            "kafka.sasl.password": "p",
        }
    )
    checked = 0
    for manifests in [*all_renders(default_render, ci_renders), sasl]:
        for where, spec in pod_specs(manifests):
            for container in spec["containers"]:
                for var in container.get("env", []):
                    if any(word in var["name"] for word in SECRET_WORDS):
                        assert "value" not in var and "secretKeyRef" in var["valueFrom"], where
                        checked += 1
    assert checked >= 10  # ClickHouse password everywhere, SASL password in the sasl render


def test_termination_grace_covers_drain(tools: Tools) -> None:
    manifests = tools.render(
        sets={"config.shutdownGraceSeconds": "30", "api.preStopSleepSeconds": "7"}
    )
    api = one(manifests, "Deployment", "weir-api")["spec"]["template"]["spec"]
    assert api["terminationGracePeriodSeconds"] >= 37
    assert api["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"] == 7
    with pytest.raises(RenderError, match="terminationGracePeriodSeconds"):
        tools.render(sets={"api.terminationGracePeriodSeconds": "10"})


def test_probes_ports_and_commands(default_render: list[Manifest]) -> None:
    api = one(default_render, "Deployment", "weir-api")["spec"]["template"]["spec"]["containers"][0]
    # The api's probes go to its status port, answered apart from the workers (api/status.py).
    probes = {kind: api[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"] == {"path": "/ready", "port": "metrics"}
    assert probes["livenessProbe"] == {"path": "/health", "port": "metrics"}
    assert api["startupProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert {p["name"]: p["containerPort"] for p in api["ports"]} == {"http": 8080, "metrics": 9100}
    # The consumer's status port serves from the start: alive while it waits for Kafka, ready
    # once it has reached Kafka (consumer/status.py).
    consumer = one(default_render, "Deployment", "weir-consumer")["spec"]["template"]["spec"]
    probes = {
        kind: consumer["containers"][0][kind]["httpGet"]
        for kind in ("readinessProbe", "livenessProbe")
    }
    assert probes["readinessProbe"] == {"path": "/ready", "port": "metrics"}
    assert probes["livenessProbe"] == {"path": "/healthz", "port": "metrics"}
    operator = one(default_render, "Deployment", "weir-operator")["spec"]
    assert operator["replicas"] == 1 and operator["strategy"]["type"] == "Recreate"
    commands = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["args"]
        for d in by_kind(default_render, "Deployment")
    }
    assert commands == {
        "weir-api": ["api"],
        "weir-consumer": ["consumer"],
        "weir-operator": ["operator"],
    }


def test_otel_env_per_component(ci_renders: dict[str, list[Manifest]]) -> None:
    manifests = ci_renders["full-in-cluster-values.yaml"]
    for component in ("api", "consumer", "operator"):
        env = container_env(one(manifests, "Deployment", f"weir-{component}"))
        assert env["OTEL_SERVICE_NAME"]["value"] == f"weir-{component}"
        assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
        assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.05"
        assert str(env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"]).startswith("http://otel-collector")


@pytest.mark.parametrize("operator", [True, False], ids=["operator", "no-operator"])
def test_exactly_one_schema_owner(tools: Tools, operator: bool) -> None:
    """The operator (reconciling the chart's Table), else the migrate Job; never api/consumer."""
    manifests = tools.render(sets={"operator.enabled": str(operator).lower()})
    jobs = by_kind(manifests, "Job")
    assert [j["metadata"]["name"] for j in jobs] == ([] if operator else ["weir-migrate"])
    assert len(by_kind(manifests, "Table")) == len(by_kind(manifests, "Topic")) == int(operator)
    deployments = {d["metadata"]["name"] for d in by_kind(manifests, "Deployment")}
    assert ("weir-operator" in deployments) is operator
    for job in jobs:
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
        hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
        assert hooks == {"post-install", "pre-upgrade"}
        env = container_env(job)  # the topics as topic.* describes them, like the Topic would
        assert env["WEIR_KAFKA_TOPIC_PARTITIONS"]["value"] == "12"
        assert env["WEIR_KAFKA_TOPIC_REPLICATION_FACTOR"]["value"] == "3"
    for name in ("api", "consumer"):
        pod = one(manifests, "Deployment", f"weir-{name}")["spec"]["template"]["spec"]
        assert not pod.get("initContainers"), f"weir-{name} must not migrate"
        assert [c["args"] for c in pod["containers"]] == [[name]]


def test_migrate_enabled_is_not_a_second_switch(tools: Tools) -> None:
    """operator.enabled alone picks the schema owner: the old flag fails, not silently ignored."""
    with pytest.raises(RenderError, match="enabled"):
        tools.template(sets={"migrate.enabled": "true"})


def test_migrate_job_refuses_a_table_it_cannot_create(tools: Tools) -> None:
    """`weir migrate` makes the default schema: extra columns or other rollups need the operator."""
    with pytest.raises(RenderError, match="need the operator"):
        tools.template(values=[FULL], sets={"operator.enabled": "false"})


def test_operator_rbac_is_least_privilege(default_render: list[Manifest], tools: Tools) -> None:
    (role,) = by_kind(default_render, "ClusterRole")
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"topics", "tables", "topics/status", "tables/status", "events"} <= resources
    assert not {"secrets", "pods", "*"} & resources
    assert not any("*" in rule["verbs"] for rule in role["rules"])
    namespaced = tools.render(sets={"operator.rbac.clusterWide": "false"})
    assert not by_kind(namespaced, "ClusterRole") and by_kind(namespaced, "Role")
    operator = one(namespaced, "Deployment", "weir-operator")["spec"]["template"]["spec"]
    assert operator["containers"][0]["args"] == ["operator", "--namespace", "weir"]


def test_default_rollups_are_the_schema_weir_migrate_makes(default_render: list[Manifest]) -> None:
    """The chart's Table (operator) and the migrate Job's check describe `spec.DEFAULT_ROLLUPS`:
    a cluster reconciled by the operator gets the same rollups as `weir migrate` makes."""
    (table,) = by_kind(default_render, "Table")
    rollups = [(r["granularity"], tuple(r["dimensions"])) for r in table["spec"]["rollups"]]
    assert rollups == [(r.granularity, r.dimensions) for r in DEFAULT_ROLLUPS]
