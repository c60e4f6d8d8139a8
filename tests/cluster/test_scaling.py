"""Autoscaling for real on the one-node cluster.

metrics-server (built from sigs.k8s.io/metrics-server, a process of the node, registered as
v1beta1.metrics.k8s.io) serves the pods' CPU: the api's HorizontalPodAutoscaler, as the chart
renders it, must ask for more replicas than minReplicas under a load loop posting batches
through the api Service, and `kubectl top pods` must show the pods.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from tests.cluster.conftest import NAMESPACE, REPO_ROOT, TIMINGS, Cluster

BATCH_LOAD = Path(__file__).with_name("batch_load.py")


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
