"""A rolling update of the api under a steady trickle of events loses none.

The sender runs in the cluster's network namespace and posts through the api Service's cluster IP
(kube-proxy's rules, like any client in the cluster), one event every 50 ms, while
`kubectl rollout restart` replaces every api pod (maxUnavailable 0, preStop sleep, SIGTERM drain).
Every request must be answered 202, and /metrics must count exactly the accepted events.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

from tests.cluster.conftest import NAME, NAMESPACE, SCRIPTS, Cluster

SENDER = """
import json, os, sys, time, urllib.request
url, name, stop = sys.argv[1], sys.argv[2], sys.argv[3]
deadline = time.monotonic() + 240
statuses = {}
while not os.path.exists(stop) and time.monotonic() < deadline:
    body = json.dumps({"event_name": name, "channel": "api", "user_id": "rolling",
                       "timestamp": int(time.time())}).encode()
    request = urllib.request.Request(url + "/events", data=body,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            key = str(response.status)
    except urllib.error.HTTPError as error:
        key = str(error.code)
    except Exception as error:
        key = type(error).__name__
    statuses[key] = statuses.get(key, 0) + 1
    time.sleep(0.05)
print(json.dumps(statuses))
"""


def test_rolling_update_of_the_api_under_a_trickle_loses_no_event(
    cluster: Cluster, weir_release: str, tmp_path: Path
) -> None:
    api = "weir-api"
    ip = cluster.kubectl("get", "svc", "-n", NAMESPACE, api, "-o", "jsonpath={.spec.clusterIP}")
    url = f"http://{ip.stdout.strip()}:8080"
    name = f"rolling-{uuid.uuid4().hex[:10]}"
    stop = tmp_path / "stop"
    sender = subprocess.Popen(
        [str(SCRIPTS / "cluster.sh"), "exec", "python3", "-c", SENDER, url, name, str(stop)],
        env=os.environ | {"WEIR_CLUSTER_NAME": NAME},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)
        before = {p["metadata"]["name"] for p in _api_pods(cluster)}
        cluster.kubectl("rollout", "restart", "-n", NAMESPACE, f"deployment/{api}")
        cluster.kubectl(
            "rollout", "status", "-n", NAMESPACE, f"deployment/{api}", "--timeout=240s", timeout=260
        )
        time.sleep(3)
    finally:
        stop.touch()
        out, _ = sender.communicate(timeout=60)
    after = {p["metadata"]["name"] for p in _api_pods(cluster)}
    assert before and after and not before & after, (before, after)  # every pod was replaced
    statuses = json.loads(out)
    assert set(statuses) == {"202"}, statuses  # no refusal, no connection error
    accepted = statuses["202"]
    assert accepted > 50, statuses

    def counted() -> bool:
        got = cluster.run("curl", "-sf", f"{url}/metrics?event_name={name}", check=False).stdout
        return bool(got) and json.loads(got).get("total_events") == accepted

    cluster.wait_for(f"{accepted} events counted by /metrics", counted, timeout=120)


def _api_pods(cluster: Cluster) -> list[dict[str, object]]:
    pods = cluster.get("pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=api")["items"]
    return [p for p in pods if p["metadata"].get("deletionTimestamp") is None]
