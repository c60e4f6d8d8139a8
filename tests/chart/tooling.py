"""helm and kubeconform, as installed by scripts/tools.sh, and the schemas kubeconform reads."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "weir"
CRDS = CHART / "crds"
MINIMAL_SCHEMAS = Path(__file__).parent / "schemas"

# Every API whose custom resources the chart guards with .Capabilities.APIVersions.Has.
ALL_API_VERSIONS = (
    "weir.dev/v1alpha1",
    "keda.sh/v1alpha1",
    "kafka.strimzi.io/v1beta2",
    "clickhouse.altinity.com/v1",
    "clickhouse-keeper.altinity.com/v1",
    "monitoring.coreos.com/v1",
)

Manifest = dict[str, Any]

# The one value the chart cannot default (it fails to render without a key source or
# api.keys.open): added to renders of the chart's defaults, i.e. those without a values file.
DEFAULT_KEYS = {"api.keys.existingSecret": "weir-api-keys"}


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubeconform: Path
    k8s_schemas: Path

    @classmethod
    def install(cls) -> Tools:
        """Run scripts/tools.sh (idempotent, cached) and read the paths it exports."""
        out = subprocess.run(
            [str(REPO / "scripts" / "tools.sh"), "env"],
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        ).stdout
        env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in out.splitlines()
            if line.startswith("export ")
        )
        return cls(
            Path(env["WEIR_HELM"]), Path(env["WEIR_KUBECONFORM"]), Path(env["WEIR_K8S_SCHEMAS"])
        )

    def helm_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.helm), *args], capture_output=True, text=True, timeout=120, check=False
        )

    def template(
        self,
        *,
        values: list[Path] | None = None,
        sets: dict[str, str] | None = None,
        api_versions: tuple[str, ...] = ALL_API_VERSIONS,
        extra: tuple[str, ...] = (),
    ) -> str:
        """`helm template` stdout; raises with helm's stderr when rendering fails.

        Without a values file, DEFAULT_KEYS is set unless `sets` names an api.keys value itself.
        """
        args = ["template", "weir", str(CHART), "--namespace", "weir", *extra]
        for path in values or []:
            args += ["--values", str(path)]
        sets = sets or {}
        if not values and not any(key.startswith("api.keys.") for key in sets):
            sets = {**DEFAULT_KEYS, **sets}
        for key, value in sets.items():
            args += ["--set", f"{key}={value}"]
        for api in api_versions:
            args += ["--api-versions", api]
        result = self.helm_run(*args)
        if result.returncode != 0:
            raise RenderError(result.stderr)
        return result.stdout

    def render(self, **kwargs: Any) -> list[Manifest]:
        return parse(self.template(**kwargs))

    def validate(self, manifests: Path, crd_schemas: Path) -> subprocess.CompletedProcess[str]:
        """Strict validation: Kubernetes kinds, our CRDs, then the minimal third-party schemas."""
        template = "{{ .ResourceKind }}{{ .KindSuffix }}.json"
        args = [str(self.kubeconform), "-strict", "-summary", "-output", "json"]
        for location in (self.k8s_schemas, crd_schemas, MINIMAL_SCHEMAS):
            args += ["-schema-location", f"{location}/{template}"]
        return subprocess.run(
            [*args, str(manifests)], capture_output=True, text=True, timeout=120, check=False
        )


class RenderError(RuntimeError):
    pass


def parse(stream: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(stream) if doc]


def crd_to_json_schemas(crd_dir: Path, target: Path) -> list[Path]:
    """Each served version of each CRD as a kubeconform schema (strict, like openapi2jsonschema).

    Named <kind>-<first group label>-<version>.json, the file name kubeconform looks up.
    """
    written = []
    for crd_file in sorted(crd_dir.glob("*.yaml")):
        crd = yaml.safe_load(crd_file.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            # The API server adds these to every object; CRD schemas usually leave them out.
            schema["properties"] = {
                "apiVersion": {"enum": [f"{group}/{version['name']}"]},
                "kind": {"enum": [kind]},
                "metadata": {"type": "object"},
                **schema.get("properties", {}),
            }
            name = f"{kind.lower()}-{group.split('.')[0]}-{version['name']}.json"
            (target / name).write_text(json.dumps(schema))
            written.append(target / name)
    return written


def _strict(node: Any) -> Any:
    """Close every object that lists its properties, unless it preserves unknown fields."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _strict(value) for key, value in node.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
