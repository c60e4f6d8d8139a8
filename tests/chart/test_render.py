"""helm lint / template for every value set, values.schema.json, and kubeconform validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chart.conftest import CI_VALUES, by_kind
from tests.chart.tooling import CHART, DEFAULT_KEYS, Manifest, RenderError, Tools, parse

VALUE_SETS = [None, *CI_VALUES]
IDS = ["default", *(path.stem for path in CI_VALUES)]


def test_ci_value_sets_exist() -> None:
    assert {path.name for path in CI_VALUES} == {
        "minimal-external-values.yaml",
        "full-in-cluster-values.yaml",
        "keda-off-values.yaml",
        "one-node-cluster-values.yaml",
    }


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_helm_lint_is_clean(tools: Tools, values: Path | None) -> None:
    args = ["lint", str(CHART), "--strict"]
    args += (
        ["--values", str(values)] if values else [f"--set={k}={v}" for k, v in DEFAULT_KEYS.items()]
    )
    result = tools.helm_run(*args)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_every_manifest_passes_kubeconform_strict(
    tools: Tools, crd_schemas: Path, tmp_path: Path, values: Path | None
) -> None:
    rendered = tools.template(values=[values] if values else None, extra=("--include-crds",))
    manifests = tmp_path / "rendered.yaml"
    manifests.write_text(rendered)
    result = tools.validate(manifests, crd_schemas)
    summary = json.loads(result.stdout)
    problems = [r for r in summary["resources"] if r["status"] != "statusValid"]
    assert result.returncode == 0 and not problems, problems or result.stderr
    # Nothing skipped for want of a schema: every rendered object was checked.
    assert summary["summary"]["valid"] == len(parse(rendered))


def test_full_values_render_every_custom_resource(ci_renders: dict[str, list[Manifest]]) -> None:
    kinds = {m["kind"] for m in ci_renders["full-in-cluster-values.yaml"]}
    assert {
        "Kafka",
        "KafkaNodePool",
        "ClickHouseInstallation",
        "ClickHouseKeeperInstallation",
        "ScaledObject",
        "ServiceMonitor",
        "NetworkPolicy",
        "Topic",
        "Table",
    } <= kinds


def test_kubeconform_rejects_an_invalid_manifest(
    tools: Tools, crd_schemas: Path, tmp_path: Path
) -> None:
    """The validation above is real: a misspelt field and a bad Topic both fail."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {prots: []}\n---\n"
        "apiVersion: weir.dev/v1alpha1\nkind: Topic\nmetadata: {name: t}\n"
        "spec: {partitions: 0, replicationFactor: 1}\n"
    )
    result = tools.validate(bad, crd_schemas)
    statuses = {r["kind"]: r["status"] for r in json.loads(result.stdout)["resources"]}
    assert statuses == {"Service": "statusInvalid", "Topic": "statusInvalid"}


def test_schema_rejects_a_misspelt_value(tools: Tools) -> None:
    with pytest.raises(RenderError, match="replicaCoutn"):
        tools.template(sets={"replicaCoutn": "2"})


def test_schema_rejects_a_misspelt_nested_value(tools: Tools) -> None:
    with pytest.raises(RenderError, match="lagTreshold"):
        tools.template(sets={"consumer.keda.lagTreshold": "5"})


def test_without_operator_apis_no_foreign_resource_is_rendered(tools: Tools) -> None:
    manifests = tools.render(values=[CHART / "ci" / "full-in-cluster-values.yaml"], api_versions=())
    foreign = {"Kafka", "KafkaNodePool", "ClickHouseInstallation", "ScaledObject", "Topic"}
    assert not foreign & {m["kind"] for m in manifests}
    # With KEDA missing the consumer still scales, on CPU.
    assert [h["metadata"]["name"] for h in by_kind(manifests, "HorizontalPodAutoscaler")] == [
        "weir-api",
        "weir-consumer",
    ]
