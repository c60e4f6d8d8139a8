"""A rolling update of the api under a steady trickle of events loses none.

What makes it hold is the chart's: `maxUnavailable: 0` with a surge, a PodDisruptionBudget, a
readiness probe, a `preStop` sleep that outlasts the endpoint's removal from kube-proxy, and the
api's SIGTERM drain (in-flight requests finish, the producer flushes). The trickle runs in the
cluster's network namespace and reaches the api through its Service, as a client in the cluster.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from pathlib import Path

from tests.cluster.conftest import NAMESPACE, REPO_ROOT, Cluster

TRICKLE = Path(__file__).with_name("trickle.py")


def api_pods(cluster: Cluster) -> set[str]:
    pods = cluster.get("pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=api")
    return {p["metadata"]["name"] for p in pods["items"]}


def test_rolling_update_of_the_api_loses_no_event(
    cluster: Cluster, weir_release: str, tmp_path: Path
) -> None:
    deployment, url = cluster.service_url("api")
    event_name = f"rolling-{uuid.uuid4().hex[:12]}"
    ledger, stop, summary = tmp_path / "ledger", tmp_path / "stop", tmp_path / "summary.json"
    trickle = cluster.in_netns(
        str(REPO_ROOT / ".venv" / "bin" / "python"),
        str(TRICKLE),
        f"--url={url}",
        f"--event-name={event_name}",
        "--rate=20",
        f"--ledger={ledger}",
        f"--stop-file={stop}",
        f"--summary={summary}",
    )
    try:
        cluster.wait_for(
            "the trickle's first accepted events",
            lambda: ledger.exists() and len(ledger.read_text().split()) >= 20,
            timeout=60,
        )
        before = api_pods(cluster)
        cluster.kubectl("rollout", "restart", "-n", NAMESPACE, f"deployment/{deployment}")
        cluster.kubectl(
            "rollout",
            "status",
            "-n",
            NAMESPACE,
            f"deployment/{deployment}",
            "--timeout=300s",
            timeout=320,
        )
        cluster.wait_for(
            "the old api pods to be gone", lambda: not (api_pods(cluster) & before), timeout=120
        )
        time.sleep(5)  # a little traffic to the new pods only
    finally:
        stop.touch()
        trickle.wait(timeout=60)
    sent = json.loads(summary.read_text())
    accepted = ledger.read_text().split()
    assert len(accepted) == sent["accepted"] and len(set(accepted)) == len(accepted)
    # The update itself must not be seen by clients: no refused or dropped request.
    assert sent["failures"] == [], sent

    query = f"{url}/metrics?" + urllib.parse.urlencode({"event_name": event_name})

    def counted() -> dict[str, int] | None:
        done = cluster.run("curl", "-sf", query, check=False)
        body: dict[str, int] = json.loads(done.stdout) if done.returncode == 0 else {}
        return body if body.get("total_events") == len(accepted) else None

    try:
        body = cluster.wait_for("every accepted event to be counted", counted, timeout=120)
    except AssertionError:
        last = cluster.run("curl", "-s", query, check=False).stdout
        raise AssertionError(f"accepted {len(accepted)}, /metrics says {last}") from None
    assert body["unique_users"] == min(len(accepted), 50)
