"""Write the per-Table wiring ConfigMap (kubernetes_asyncio: kopf has no public client)."""

from __future__ import annotations

import os
from typing import Any, cast

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

_api: list[client.ApiClient] = []


async def connect() -> None:
    """In-cluster service account when running in a pod, else the kubeconfig (KUBECONFIG)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # KUBECONFIG is read now, not when kubernetes_asyncio was imported.
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    _api[:] = [client.ApiClient()]


async def close() -> None:
    while _api:
        await _api.pop().close()


async def apply_configmap(namespace: str, body: dict[str, Any]) -> bool:
    """Create or replace; True when the data changed."""
    core = client.CoreV1Api(_api[0])
    name = body["metadata"]["name"]
    try:
        current = await core.read_namespaced_config_map(name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        await core.create_namespaced_config_map(namespace, cast(Any, body))
        return True
    if (current.data or {}) == body["data"]:
        return False
    body["metadata"]["resourceVersion"] = current.metadata.resource_version
    await core.replace_namespaced_config_map(name, namespace, cast(Any, body))
    return True
