"""Dockerfile, Tiltfile, kind/ctlptl configs and k8s/manifests, checked without a runtime."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import yaml

from tests.chart.conftest import one
from tests.chart.tooling import ALL_API_VERSIONS, CHART, REPO, Tools, parse

DOCKERFILE = (REPO / "Dockerfile").read_text()
TILTFILE = (REPO / "Tiltfile").read_text()
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def architecture_commands() -> set[str]:
    """Commands of the `weir` CLI per the contract table in docs/architecture.md."""
    text = (REPO / "docs" / "architecture.md").read_text()
    return set(re.findall(r"^\| `weir ([a-z-]+)`", text, flags=re.MULTILINE))


def test_dockerfile_copies_existing_paths_and_runs_as_non_root() -> None:
    copied = re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", DOCKERFILE, flags=re.MULTILINE)
    sources = [src for line in copied for src in line.split()]
    assert {"pyproject.toml", "services/", "operator/"} <= set(sources)
    for source in sources:
        assert (REPO / source).exists(), source
    # Dependencies are installed before the code is copied (layer caching).
    assert DOCKERFILE.index("pip install -r") < DOCKERFILE.index("COPY services/")
    runtime = DOCKERFILE[DOCKERFILE.index("AS runtime") :]
    assert re.search(r"^USER 10001", runtime, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["weir"]' in runtime
    assert not re.search(r"apt-get|build-essential|gcc", runtime), "no build tools at runtime"
    assert re.search(r"^FROM \S+ AS release\s*\Z", DOCKERFILE.strip() + "\n", flags=re.MULTILINE)
    assert "python:3.11-slim" in DOCKERFILE


def test_dockerignore_admits_what_the_dockerfile_copies() -> None:
    lines = (REPO / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"
    assert {"!pyproject.toml", "!README.md", "!services/", "!operator/"} <= set(lines)


def test_chart_commands_exist_in_the_weir_cli(tools: Tools) -> None:
    commands = architecture_commands()
    assert {"api", "consumer", "operator", "migrate"} <= commands
    # With the operator (its Deployment) and without it (the migrate Job in its place).
    rendered = tools.render() + tools.render(sets={"operator.enabled": "false"})
    used = {
        m["spec"]["template"]["spec"]["containers"][0]["args"][0]
        for m in rendered
        if m["kind"] in {"Deployment", "Job"}
    }
    assert used == {"api", "consumer", "operator", "migrate"} and used <= commands
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'weir = "weir.cli:main"' in pyproject  # the ENTRYPOINT binary
    cli = REPO / "services" / "weir" / "cli.py"
    assert all(f'"{command}"' in cli.read_text() for command in used)


def test_image_name_matches_chart_and_tiltfile() -> None:
    assert VALUES["image"]["repository"] == "ghcr.io/weir-dev/weir"
    tilt_image = re.search(r"^IMAGE = '([^']+)'", TILTFILE, flags=re.MULTILINE)
    assert tilt_image and tilt_image.group(1) == VALUES["image"]["repository"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] and not VALUES["image"]["tag"]  # tag defaults to appVersion


def test_tiltfile_parses_and_references_existing_paths() -> None:
    ast.parse(TILTFILE)  # Starlark used here is a subset of Python syntax
    for path in ("charts/weir", "tilt/values-dev.yaml", "Dockerfile", "services/", "operator/"):
        assert f"'{path}'" in TILTFILE and (REPO / path).exists(), path
    assert "sync('services/', '/app/services/')" in TILTFILE
    assert "sync('operator/', '/app/operator/')" in TILTFILE
    assert "load('ext://helm_resource', 'helm_resource', 'helm_repo')" in TILTFILE
    assert "port_forwards=['8080:8080']" in TILTFILE
    for api in ALL_API_VERSIONS[:-1]:  # ServiceMonitor is not used in dev
        assert f"'{api}'" in TILTFILE


def test_tiltfile_objects_exist_in_the_dev_render(tools: Tools) -> None:
    rendered = tools.render(values=[REPO / "tilt/values-dev.yaml"], extra=("--include-crds",))
    present = {f"{m['metadata']['name']}:{m['kind'].lower()}" for m in rendered}
    referenced = set(re.findall(r"'([a-z0-9.-]+:[a-z]+)'", TILTFILE)) - {"8080:8080"}
    assert referenced and referenced <= present, referenced - present
    workloads = set(re.findall(r"k8s_resource\(\s*'([a-z-]+)'", TILTFILE))
    assert workloads == {"weir-operator", "weir-consumer", "weir-api"}
    for name in workloads:
        one(rendered, "Deployment", name)


def test_kind_and_ctlptl_configs_agree() -> None:
    kind = yaml.safe_load((REPO / "k8s/kind-config.yaml").read_text())
    registry, cluster = yaml.safe_load_all((REPO / "tilt/ctlptl.yaml").read_text())
    assert cluster["registry"] == registry["name"] and cluster["name"] == f"kind-{kind['name']}"
    assert [n["role"] for n in cluster["kindV1Alpha4Cluster"]["nodes"]] == [
        n["role"] for n in kind["nodes"]
    ]
    assert "allow_k8s_contexts('kind-weir')" in TILTFILE


def test_manifests_are_in_sync_with_the_chart(tools: Tools, tmp_path: Path) -> None:
    script = REPO / "scripts" / "render-manifests.sh"
    subprocess.run(
        [str(script), str(tmp_path)],
        check=True,
        timeout=120,
        env={"WEIR_HELM": str(tools.helm), "PATH": "/usr/bin:/bin"},
    )
    committed = REPO / "k8s" / "manifests"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in committed.iterdir())
    for name in names:
        assert (tmp_path / name).read_text() == (committed / name).read_text(), (
            f"k8s/manifests/{name} is stale: run scripts/render-manifests.sh"
        )
    kinds = {m["kind"] for name in names for m in parse((committed / name).read_text())}
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "ScaledObject", "Topic"} <= kinds
    assert "Secret" not in kinds  # the password Secret is created by hand (manifests-values.yaml)
