"""A real Kubernetes API server for the kopf wiring tests (scripts/kube-apiserver.sh)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes_asyncio import client, config

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kube-apiserver.sh"
CRDS = sorted((REPO / "charts" / "weir" / "crds").glob("*.yaml"))
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script(command: str, timeout: float, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(SCRIPT), command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )
    if done.returncode != 0:
        raise RuntimeError(f"kube-apiserver.sh {command} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """Starts etcd + kube-apiserver (building it on first use: see operator/README.md).

    Ports are this session's own, so concurrent runs on one machine do not share a server.
    """
    ports = ("WEIR_KUBE_PORT", "WEIR_KUBE_ETCD_PORT", "WEIR_KUBE_ETCD_PEER_PORT")
    env = {name: str(_free_port()) for name in ports}
    path = Path(_script("start", timeout=3600, env=env).splitlines()[-1])
    try:
        yield path
    finally:
        _script("stop", timeout=60, env=env)
        shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture(scope="session")
async def kube(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    """An API client with the Weir CRDs installed and established."""
    api = await config.new_client_from_config(config_file=str(kubeconfig))
    extensions = client.ApiextensionsV1Api(api)
    for path in CRDS:
        body = yaml.safe_load(path.read_text())
        try:
            await extensions.create_custom_resource_definition(body)
        except client.ApiException as error:
            if error.status != 409:
                raise
            current = await extensions.read_custom_resource_definition(body["metadata"]["name"])
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            await extensions.replace_custom_resource_definition(body["metadata"]["name"], body)

    async def established() -> bool:
        for path in CRDS:
            crd = await extensions.read_custom_resource_definition(path.name.removesuffix(".yaml"))
            conditions = crd.status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    await eventually(established)
    try:
        yield api
    finally:
        await api.close()


async def eventually(
    probe: Callable[[], Awaitable[T]], within: float = 30.0, interval: float = 0.3
) -> T:
    """The first truthy result of `probe`; fails with the last result after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within}s: last result {result!r}")
        await asyncio.sleep(interval)


def chart_rbac(namespace: str) -> list[dict[str, Any]]:
    """The operator's ServiceAccount, Role and RoleBinding exactly as the Helm chart renders them
    for `weir operator --namespace` (helm from scripts/tools.sh, which `make test` runs first)."""
    helm = Path(_script_output([str(REPO / "scripts" / "tools.sh"), "path"])) / "helm"
    rendered = _script_output(
        [
            str(helm),
            "template",
            "weir",
            str(REPO / "charts" / "weir"),
            "-n",
            namespace,
            "--set",
            "operator.rbac.clusterWide=false",
            # The chart refuses to render without API keys or an explicit open api; only the
            # operator's objects are shown here, which neither choice changes.
            "--set",
            "api.keys.open=true",
            "--show-only",
            "templates/operator/serviceaccount.yaml",
            "--show-only",
            "templates/operator/rbac.yaml",
        ]
    )
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _script_output(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


async def service_account_kubeconfig(
    api: client.ApiClient, admin_kubeconfig: Path, namespace: str, target: Path
) -> Path:
    """Installs the chart's operator RBAC and writes a kubeconfig that acts as its account."""
    account = ""
    for doc in chart_rbac(namespace):
        kind = doc["kind"]
        if kind == "ServiceAccount":
            account = doc["metadata"]["name"]
            await client.CoreV1Api(api).create_namespaced_service_account(namespace, doc)
        elif kind == "Role":
            await client.RbacAuthorizationV1Api(api).create_namespaced_role(namespace, doc)
        elif kind == "RoleBinding":
            await client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(namespace, doc)
    token = await client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    config_doc = yaml.safe_load(admin_kubeconfig.read_text())  # noqa: ASYNC240 - tiny file
    config_doc["users"] = [{"name": account, "user": {"token": token.status.token}}]
    config_doc["contexts"][0]["context"].update(user=account, namespace=namespace)
    target.write_text(yaml.safe_dump(config_doc))  # noqa: ASYNC240
    return target
