"""A real one-node Kubernetes cluster (scripts/cluster.sh) with Weir installed by its chart.

Package fixtures (torn down when tests/cluster is done), in the order they come up:
  `cluster`        containerd + kubelet + control plane in a network namespace of its own; torn
                   down (every process, cgroup, mount, iptables rule and kernel setting) at the
                   end of tests/cluster, also when a test failed
  `weir_image`     the Dockerfile built offline FROM the debootstrap base, imported into containerd
  `cluster_kafka`  a real broker (scripts/kafka.sh) at the node's address, reachable from pods
  `cluster_clickhouse`  the chDB HTTP harness at the node's address: the external ClickHouse
                   (no ClickHouse server package exists here)
  `weir_release`   upstream CRDs, then `helm install charts/weir` with
                   ci/one-node-cluster-values.yaml,
                   waited for until every Deployment is Ready

Tests using them are marked `cluster`. One cluster per machine at a time: the session holds a
lock, so concurrent runs wait for each other instead of sharing 2 cores between two clusters.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"
CHART = REPO_ROOT / "charts" / "weir"
VALUES = CHART / "ci" / "one-node-cluster-values.yaml"
CACHE_ROOT = Path(
    os.environ.get("WEIR_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "weir"
)
NAME = "pytest"
NAMESPACE = "weir"
RELEASE = "weir"
NODE_IP = "10.213.0.2"
KAFKA_PORT = 9092
CLICKHOUSE_PORT = 8123
CLUSTER_FIXTURES = {"cluster", "weir_image", "cluster_kafka", "cluster_clickhouse", "weir_release"}
TIMINGS: dict[str, float] = {}


def _exports(text: str) -> dict[str, str]:
    pairs = (word.split("=", 1) for line in text.splitlines() for word in line.split()[1:])
    return {key: value for key, value in pairs}


@dataclass
class Cluster:
    env: dict[str, str]
    helm: str
    log_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_dir = Path(self.env["WEIR_CLUSTER_DIR"]) / "logs"

    def run(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the cluster's network namespace, KUBECONFIG set."""
        done = subprocess.run(
            [str(SCRIPTS / "cluster.sh"), "exec", *args],
            env=os.environ | {"WEIR_CLUSTER_NAME": NAME},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kwargs)

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def service_url(self, component: str) -> tuple[str, str]:
        """(name, http://clusterIP:port) of the release's Service for `component`."""
        (service,) = self.get(
            "services", "-n", NAMESPACE, "-l", f"app.kubernetes.io/component={component}"
        )["items"]
        spec = service["spec"]
        return service["metadata"]["name"], f"http://{spec['clusterIP']}:{spec['ports'][0]['port']}"

    def in_netns(self, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a command in the cluster's network namespace, in the background."""
        return subprocess.Popen(
            [str(SCRIPTS / "cluster.sh"), "exec", *args],
            env=os.environ | {"WEIR_CLUSTER_NAME": NAME},
            **kwargs,
        )

    def wait_for(self, what: str, probe: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(1)


def _cluster_script(*args: str, timeout: float) -> str:
    done = subprocess.run(
        [str(SCRIPTS / "cluster.sh"), *args],
        env=os.environ | {"WEIR_CLUSTER_NAME": NAME},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cluster.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    lock_path = CACHE_ROOT / "run" / f".cluster-{NAME}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        helm = _exports(
            subprocess.run(
                [str(SCRIPTS / "tools.sh"), "env"], capture_output=True, text=True, check=True
            ).stdout
        )["WEIR_HELM"]
        started = time.monotonic()
        try:
            _cluster_script("up", timeout=3600)
            TIMINGS["cluster up (s)"] = time.monotonic() - started
            yield Cluster(_exports(_cluster_script("env", timeout=30)), helm)
        finally:
            _cluster_script("down", timeout=300)


@pytest.fixture(scope="package")
def weir_image(cluster: Cluster) -> str:
    started = time.monotonic()
    ref, archive = subprocess.run(
        [str(SCRIPTS / "cluster" / "image.sh")],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    ).stdout.split()
    TIMINGS["image build (s)"] = time.monotonic() - started
    _cluster_script("import", archive, timeout=600)
    return ref


@pytest.fixture(scope="package")
def cluster_kafka(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "WEIR_KAFKA_HOST": NODE_IP,
        "WEIR_KAFKA_PORT": str(KAFKA_PORT),
        "WEIR_KAFKA_DATA_DIR": str(tmp_path_factory.mktemp("cluster-kafka")),
    }
    settings = [f"{key}={value}" for key, value in env.items()]
    cluster.run("env", *settings, str(SCRIPTS / "kafka.sh"), "start", timeout=240)
    try:
        yield f"{NODE_IP}:{KAFKA_PORT}"
    finally:
        cluster.run("env", *settings, str(SCRIPTS / "kafka.sh"), "stop", timeout=90, check=False)


@pytest.fixture(scope="package")
def cluster_clickhouse(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("cluster-chdb")
    log = (data_dir / "shim.log").open("wb")
    process = subprocess.Popen(
        [
            str(SCRIPTS / "cluster.sh"),
            "exec",
            str(REPO_ROOT / ".venv" / "bin" / "python"),
            "-m",
            "tests.harness.chdb_http",
            "--host",
            NODE_IP,
            "--port",
            str(CLICKHOUSE_PORT),
            "--data-dir",
            str(data_dir / "data"),
        ],
        cwd=REPO_ROOT,
        env=os.environ | {"WEIR_CLUSTER_NAME": NAME},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{NODE_IP}:{CLICKHOUSE_PORT}"
    try:
        cluster.wait_for(
            "the chDB HTTP harness",
            lambda: cluster.run("curl", "-sf", f"{url}/ping", check=False).returncode == 0,
            timeout=60,
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="package")
def weir_release(
    cluster: Cluster, weir_image: str, cluster_kafka: str, cluster_clickhouse: str
) -> str:
    crds = _exports(
        subprocess.run(
            [str(SCRIPTS / "cluster" / "build.sh"), "paths"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["WEIR_UPSTREAM_CRDS"]
    # Server-side: KEDA's CRDs are too large for the last-applied annotation.
    cluster.kubectl("apply", "--server-side", "-f", crds, timeout=180)
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    started = time.monotonic()
    repository, tag = weir_image.rsplit(":", 1)
    cluster.run(
        cluster.helm,
        "install",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--values",
        str(VALUES),
        "--set",
        f"image.repository={repository}",
        "--set",
        f"image.tag={tag}",
        "--wait",
        "--timeout",
        "6m",
        timeout=420,
    )
    TIMINGS["helm install to Ready (s)"] = time.monotonic() - started
    return RELEASE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.timeout(1800))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.write_line(
            "cluster timings: " + ", ".join(f"{k} {v:.0f}" for k, v in TIMINGS.items())
        )
