"""Fixtures for the static chart tests: pinned tools, CRD schemas, renders of each value set."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.tooling import CHART, CRDS, Manifest, Tools, crd_to_json_schemas

CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))


@pytest.fixture(scope="session")
def tools() -> Tools:
    return Tools.install()


@pytest.fixture(scope="session")
def crd_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kubeconform schemas made from charts/weir/crds/ (owned by the operator engineer)."""
    expected = {"topics.weir.dev.yaml", "tables.weir.dev.yaml"}
    present = {path.name for path in CRDS.glob("*.yaml")}
    assert expected <= present, f"charts/weir/crds/ lacks {sorted(expected - present)}"
    target = tmp_path_factory.mktemp("crd-schemas")
    written = crd_to_json_schemas(CRDS, target)
    assert {path.name for path in written} >= {
        "topic-weir-v1alpha1.json",
        "table-weir-v1alpha1.json",
    }
    return target


@pytest.fixture(scope="session")
def default_render(tools: Tools) -> list[Manifest]:
    return tools.render()


@pytest.fixture(scope="session")
def ci_renders(tools: Tools) -> dict[str, list[Manifest]]:
    return {path.name: tools.render(values=[path]) for path in CI_VALUES}


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in by_kind(manifests, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def container_env(deployment: Manifest) -> dict[str, dict[str, object]]:
    """name -> EnvVar of the deployment's first container."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {var["name"]: var for var in container.get("env", [])}
