"""API keys, quotas and CORS in the chart; the helm test hook run against a real `weir dev`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chart.conftest import CI_VALUES, container_env, one
from tests.chart.tooling import CHART, Manifest, RenderError, Tools
from tests.e2e.processes import dev_settings, start_weir, wait_until_up
from weir.core.config import Settings
from weir.core.keys import ApiKey, KeyKind, digest, dump_keys, new_key


def api_pod(manifests: list[Manifest]) -> Manifest:
    spec: Manifest = one(manifests, "Deployment", "weir-api")["spec"]["template"]["spec"]
    return spec


def test_the_chart_never_serves_open_by_accident(tools: Tools) -> None:
    with pytest.raises(RenderError, match=r"api\.keys\.existingSecret .*api\.keys\.open=true"):
        tools.template(sets={"api.keys.open": "false"})
    with pytest.raises(RenderError, match="not both"):
        tools.template(sets={"api.keys.open": "true", "api.keys.existingSecret": "k"})


def test_keys_file_is_mounted_read_only_into_the_api_only(
    tools: Tools, ci_renders: dict[str, list[Manifest]]
) -> None:
    manifests = ci_renders["full-in-cluster-values.yaml"]
    pod = api_pod(manifests)
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == "weir-api-keys"
    assert volume["secret"]["items"] == [{"key": "api-keys.json", "path": "keys.json"}]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    env = container_env(one(manifests, "Deployment", "weir-api"))
    assert env["WEIR_API_KEYS_FILE"]["value"] == f"{mount['mountPath']}/keys.json"
    assert env["WEIR_API_OPEN"]["value"] == "false"
    assert (env["WEIR_KEY_RATE"]["value"], env["WEIR_KEY_BURST"]["value"]) == ("500", "4000")
    assert env["WEIR_API_CORS_ORIGINS"]["value"] == (
        '["https://app.example.com","https://admin.example.com"]'
    )
    for name in ("weir-consumer", "weir-operator"):
        other = one(manifests, "Deployment", name)
        assert "WEIR_API_KEYS_FILE" not in container_env(other), name
        assert not [v for v in other["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    # No CORS origin unless given; the API's own defaults for the quota otherwise.
    default = container_env(one(tools.render(), "Deployment", "weir-api"))
    assert "WEIR_API_CORS_ORIGINS" not in default
    assert (default["WEIR_KEY_RATE"]["value"], default["WEIR_KEY_BURST"]["value"]) == (
        str(Settings().key_rate).removesuffix(".0"),
        str(Settings().key_burst),
    )


def test_open_mode_mounts_nothing_and_the_test_pod_sends_no_key(tools: Tools) -> None:
    manifests = tools.render(sets={"api.keys.open": "true"})
    pod = api_pod(manifests)
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    env = container_env(one(manifests, "Deployment", "weir-api"))
    assert env["WEIR_API_OPEN"]["value"] == "true" and "WEIR_API_KEYS_FILE" not in env
    test_env = {
        v["name"]: v for v in one(manifests, "Pod", "weir-test")["spec"]["containers"][0]["env"]
    }
    assert test_env["WEIR_OPEN"]["value"] == "true"
    assert not {"WRITE_KEY", "READ_KEY"} & set(test_env)


def test_the_test_pod_reads_its_keys_from_a_secret(
    tools: Tools, ci_renders: dict[str, list[Manifest]]
) -> None:
    def key_refs(manifests: list[Manifest]) -> dict[str, dict[str, object]]:
        env = one(manifests, "Pod", "weir-test")["spec"]["containers"][0]["env"]
        return {v["name"]: v["valueFrom"]["secretKeyRef"] for v in env if "valueFrom" in v}

    # Default: the api's Secret, entries named by tests.keys.
    assert key_refs(tools.render()) == {
        "WRITE_KEY": {"name": "weir-api-keys", "key": "helm-test-write-key", "optional": True},
        "READ_KEY": {"name": "weir-api-keys", "key": "helm-test-read-key", "optional": True},
    }
    full = key_refs(ci_renders["full-in-cluster-values.yaml"])
    assert {ref["name"] for ref in full.values()} == {"weir-helm-test-keys"}


def test_one_node_cluster_runs_open_and_every_other_value_set_keyed(
    ci_renders: dict[str, list[Manifest]],
) -> None:
    assert {path.name for path in CI_VALUES} == set(ci_renders)
    for name, manifests in ci_renders.items():
        env = container_env(one(manifests, "Deployment", "weir-api"))
        expected = "true" if name == "one-node-cluster-values.yaml" else "false"
        assert env["WEIR_API_OPEN"]["value"] == expected, name
        assert ("WEIR_API_KEYS_FILE" in env) is (expected == "false"), name


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("api.quota.rate", "0"),
        ("api.quota.burst", "0"),
        ("api.corsOrigins[0]", "app.example.com"),
        ("api.keys.secretKey", "a/b"),
        ("api.keys.exsitingSecret", "k"),
    ],
)
def test_schema_rejects_bad_key_values(tools: Tools, key: str, value: str) -> None:
    with pytest.raises(RenderError, match=key.split(".")[-1].split("[")[0]):
        tools.template(sets={key: value})


# --- the hook's script, as rendered, against `weir dev` ----------------------------------------


def hook(manifests: list[Manifest]) -> tuple[str, dict[str, str]]:
    """The test pod's script and its plain env (what the kubelet would set, but the keys)."""
    (container,) = one(manifests, "Pod", "weir-test")["spec"]["containers"]
    assert container["command"] == ["python", "-c"]
    env = {v["name"]: str(v["value"]) for v in container["env"] if "value" in v}
    return container["args"][0], env


def run_hook(
    script: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def keyed_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """`weir dev` with one write and one read key: (base url, write key, read key)."""
    tmp = tmp_path_factory.mktemp("keyed-dev")
    write, read = new_key(KeyKind.WRITE), new_key(KeyKind.READ)
    keys_file = tmp / "keys.json"
    keys_file.write_bytes(
        dump_keys(
            [
                ApiKey(id="helm-test-write", kind=KeyKind.WRITE, sha256=digest(write)),
                ApiKey(id="helm-test-read", kind=KeyKind.READ, sha256=digest(read)),
            ]
        )
    )
    settings = dev_settings(tmp / "data", api_keys_file=keys_file)
    port = settings.port
    dev = start_weir("dev", settings, tmp / "dev.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health", dev)
        yield base, write, read
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=30)


def test_the_hook_posts_and_counts_with_its_keys(
    tools: Tools, keyed_dev: tuple[str, str, str]
) -> None:
    base, write, read = keyed_dev
    script, env = hook(tools.render(sets={"tests.timeoutSeconds": "40"}))
    result = run_hook(
        script, {**env, "WEIR_URL": base, "WRITE_KEY": write, "READ_KEY": read + "\n"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "POST /events 202" in result.stdout and "'total_events': 1" in result.stdout


def test_the_hook_fails_fast_and_says_why(tools: Tools, keyed_dev: tuple[str, str, str]) -> None:
    base, write, read = keyed_dev
    script, env = hook(tools.render(sets={"tests.timeoutSeconds": "40"}))
    env["WEIR_URL"] = base
    started = time.monotonic()
    missing = run_hook(script, {**env, "WRITE_KEY": write})  # the Secret lacks the read entry
    assert missing.returncode == 1
    assert "no read key: add entry helm-test-read-key to Secret weir-api-keys" in missing.stderr
    swapped = run_hook(script, {**env, "WRITE_KEY": read, "READ_KEY": read})
    assert swapped.returncode == 1 and "POST /events: 403" in swapped.stderr
    wrong = run_hook(script, {**env, "WRITE_KEY": write, "READ_KEY": "weir_read_nope"})
    assert wrong.returncode == 1 and "GET /metrics: 401" in wrong.stderr
    assert time.monotonic() - started < 20, "a refused key must not wait for the timeout"


def test_the_hook_runs_open_without_keys(tools: Tools, tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "data")
    port = settings.port
    dev = start_weir("dev", settings, tmp_path / "dev.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/health", dev)
        values = CHART / "ci" / "one-node-cluster-values.yaml"
        script, env = hook(tools.render(values=[values], sets={"tests.timeoutSeconds": "40"}))
        result = run_hook(script, {**env, "WEIR_URL": base})
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=30) == 0
