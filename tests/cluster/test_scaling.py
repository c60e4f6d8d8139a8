"""Autoscaling for real on the one-node cluster.

KEDA (operator and metrics apiserver built from github.com/kedacore/keda/v2, processes of the node,
the apiserver registered as v1beta1.external.metrics.k8s.io) reads the consumer group's lag from
the broker: the chart's ScaledObject must take the consumer Deployment from 1 replica to
maxReplicaCount while a backlog waits, and back to 1 once it is drained, with every event counted.

metrics-server (built from sigs.k8s.io/metrics-server, a process of the node, registered as
v1beta1.metrics.k8s.io) serves the pods' CPU: the api's HorizontalPodAutoscaler, as the chart
renders it, must ask for more replicas than minReplicas under a load loop posting batches
through the api Service, and `kubectl top pods` must show the pods.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.cluster.conftest import CLICKHOUSE_PORT, NAMESPACE, NODE_IP, REPO_ROOT, TIMINGS, Cluster

BATCH_LOAD = Path(__file__).with_name("batch_load.py")
POD_CIDR = "10.244.0.0/24"
QUANTITY_SUFFIXES = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(text: str) -> float:
    """A Kubernetes quantity as the metrics APIs write it ("12k", "1500m", "7")."""
    factor = QUANTITY_SUFFIXES.get(text[-1:])
    return float(text[:-1]) * factor if factor else float(text)


def post_batches(cluster: Cluster, url: str, tmp_path: Path, *args: str) -> dict[str, int]:
    """Run batch_load.py in the cluster's namespace to its end; its summary."""
    summary = tmp_path / f"summary-{uuid.uuid4().hex[:8]}.json"
    load = cluster.in_netns(
        str(REPO_ROOT / ".venv" / "bin" / "python"),
        str(BATCH_LOAD),
        f"--url={url}",
        f"--stop-file={tmp_path / 'never'}",
        f"--summary={summary}",
        *args,
    )
    load.wait(timeout=300)
    result: dict[str, int] = json.loads(summary.read_text())
    return result


@contextlib.contextmanager
def clickhouse_refused_to_pods_but(cluster: Cluster, allowed_ips: list[str]) -> Iterator[None]:
    """The ClickHouse stand-in refuses every pod but `allowed_ips` (TCP reset), inside the
    cluster's namespace only; the rules go when the block ends (and with the namespace)."""
    port = ["-p", "tcp", "-d", NODE_IP, "--dport", str(CLICKHOUSE_PORT)]
    rules = [[*port, "-s", POD_CIDR, "-j", "REJECT", "--reject-with", "tcp-reset"]]
    rules += [[*port, "-s", ip, "-j", "ACCEPT"] for ip in allowed_ips]
    for rule in rules:  # each inserted first: the ACCEPTs end up before the REJECT
        cluster.run("iptables", "-w", "-I", "INPUT", "1", *rule)
    try:
        yield
    finally:
        for rule in rules:
            cluster.run("iptables", "-w", "-D", "INPUT", *rule, check=False)


def test_keda_scales_the_consumer_out_on_kafka_lag_and_back(
    cluster: Cluster, weir_release: str, tmp_path: Path
) -> None:
    _, api_url = cluster.service_url("api")
    (scaled,) = cluster.get("scaledobjects", "-n", NAMESPACE)["items"]
    name, consumer = scaled["metadata"]["name"], scaled["spec"]["scaleTargetRef"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    threshold = int(trigger["metadata"]["lagThreshold"])
    most = scaled["spec"]["maxReplicaCount"]

    def keda_hpa() -> dict[str, Any] | None:
        status = cluster.get("scaledobject", "-n", NAMESPACE, name).get("status", {})
        ready = {c["type"]: c["status"] for c in status.get("conditions", [])}.get("Ready")
        if ready != "True" or "hpaName" not in status:
            return None
        found: dict[str, Any] = cluster.get("hpa", "-n", NAMESPACE, status["hpaName"])
        return found

    hpa = cluster.wait_for("KEDA to create the consumer's HPA", keda_hpa, timeout=90)
    (metric,) = (m["external"]["metric"] for m in hpa["spec"]["metrics"])
    selector = ",".join(f"{k}={v}" for k, v in metric["selector"]["matchLabels"].items())
    raw = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{metric['name']}?" + (
        urllib.parse.urlencode({"labelSelector": selector})
    )
    series: list[tuple[float, float, int]] = []
    began = time.monotonic()

    def lag() -> float:
        """The consumer group's lag as KEDA reads it from the broker (summed over partitions)."""
        values = json.loads(cluster.kubectl("get", "--raw", raw).stdout)["items"]
        return sum(quantity(item["value"]) for item in values)

    def replicas() -> tuple[int, int]:
        status = cluster.get("deployment", "-n", NAMESPACE, consumer)["status"]
        return status.get("replicas", 0), status.get("readyReplicas", 0)

    def record() -> tuple[float, int, int]:
        value, (count, ready) = lag(), replicas()
        series.append((round(time.monotonic() - began, 1), value, ready))
        return value, count, ready

    def settled() -> bool:
        value, count, ready = record()
        return value < threshold and count == ready == 1

    # Earlier tests' events drained, one consumer: where the scale-out starts from.
    cluster.wait_for("one consumer and no backlog", settled, timeout=180)

    api_pods = cluster.get("pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=api")
    api_ips = [pod["status"]["podIP"] for pod in api_pods["items"] if pod["status"].get("podIP")]
    event_name = f"lag-{uuid.uuid4().hex[:12]}"
    backlog = threshold * most * 3 // 2
    try:
        # The consumers cannot store, so they commit nothing: the backlog is real lag on the
        # broker, and stays while KEDA scales (the api still stores and answers).
        with clickhouse_refused_to_pods_but(cluster, api_ips):
            sent = post_batches(
                cluster,
                api_url,
                tmp_path,
                f"--event-name={event_name}",
                f"--total-events={backlog}",
                "--batch=500",
                "--connections=4",
                "--max-seconds=120",
            )
            assert sent.get("events accepted", 0) == backlog, sent
            produced = time.monotonic()

            cluster.wait_for(
                f"KEDA to run {most} consumers", lambda: record()[2] == most, timeout=150
            )
            TIMINGS["consumer 1 -> max on lag (s)"] = time.monotonic() - produced
            # What KEDA's kafka scaler asks the HPA for: ceil(lag / lagThreshold), capped by
            # maxReplicaCount; the lag it reports is itself capped at partitions x lagThreshold
            # (allowIdleConsumers: false).
            assert min(most, math.ceil(series[-1][1] / threshold)) == most, series
        unblocked = time.monotonic()
        cluster.wait_for("the backlog to drain", lambda: record()[0] == 0, timeout=180)
        TIMINGS["backlog drained (s)"] = time.monotonic() - unblocked
        cluster.wait_for(
            "KEDA to go back to one consumer", lambda: record()[1:] == (1, 1), timeout=180
        )
        TIMINGS["consumer max -> 1 after drain (s)"] = time.monotonic() - unblocked
    except AssertionError as error:
        raise AssertionError(f"{error}; (seconds, lag, ready consumers): {series}") from None

    # Nothing lost or doubled across the block, the scale-out, the rebalances and the scale-in.
    query = f"{api_url}/metrics?" + urllib.parse.urlencode({"event_name": event_name})

    def counted() -> int:
        body = json.loads(cluster.run("curl", "-sf", query).stdout)
        return int(body.get("total_events", 0))

    try:
        cluster.wait_for("every event counted", lambda: counted() == backlog, timeout=60)
    except AssertionError:
        raise AssertionError(f"accepted {backlog}, /metrics counts {counted()}") from None


def test_api_hpa_scales_out_on_cpu(cluster: Cluster, weir_release: str, tmp_path: Path) -> None:
    deployment, url = cluster.service_url("api")
    hpa_spec = cluster.get("hpa", "-n", NAMESPACE, deployment)["spec"]
    minimum = hpa_spec["minReplicas"]
    (target,) = (m["resource"]["target"]["averageUtilization"] for m in hpa_spec["metrics"])

    def top_shows_the_api() -> str | None:
        done = cluster.kubectl("top", "pods", "-n", NAMESPACE, "--no-headers", check=False)
        return done.stdout if done.returncode == 0 and deployment in done.stdout else None

    # The first CPU figures need two scrapes of the kubelet (10 s apart).
    top = cluster.wait_for("`kubectl top pods` to show the api", top_shows_the_api, timeout=90)
    assert all(line.split()[1].endswith("m") for line in top.splitlines()), top

    stop, summary = tmp_path / "stop", tmp_path / "summary.json"
    load = cluster.in_netns(
        str(REPO_ROOT / ".venv" / "bin" / "python"),
        str(BATCH_LOAD),
        f"--url={url}",
        f"--event-name=cpu-{uuid.uuid4().hex[:12]}",
        "--connections=6",
        "--max-seconds=240",
        f"--stop-file={stop}",
        f"--summary={summary}",
    )
    started = time.monotonic()
    seen: list[dict[str, Any]] = []

    def scaled_out() -> dict[str, Any] | None:
        status: dict[str, Any] = cluster.get("hpa", "-n", NAMESPACE, deployment)["status"]
        seen.append(status)
        return status if status.get("desiredReplicas", 0) > minimum else None

    try:
        status = cluster.wait_for("the api HPA to ask for more replicas", scaled_out, timeout=200)
    except AssertionError:
        raise AssertionError(f"HPA statuses seen: {json.dumps(seen[-3:])}") from None
    finally:
        stop.touch()
        load.wait(timeout=60)
    TIMINGS["api HPA scale-out on CPU (s)"] = time.monotonic() - started
    (cpu,) = (m["resource"]["current"] for m in status["currentMetrics"])
    assert cpu["averageUtilization"] > target, status
    sent = json.loads(summary.read_text())
    assert sent.get("HTTP 202", 0) > 0, sent
