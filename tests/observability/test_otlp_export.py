"""configure_tracing exports over OTLP/HTTP to the endpoint in OTEL_EXPORTER_OTLP_ENDPOINT.

Runs in a child process, because the global TracerProvider can be installed once per process.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.harness.clickhouse import REPO_ROOT, free_port

EMIT_SPANS = """
from opentelemetry import trace
from weir.observability.tracing import configure_tracing, producer_span
provider = configure_tracing("weir-api")
with trace.get_tracer("test").start_as_current_span("request"):
    with producer_span("weir.events", 1):
        pass
provider.shutdown()  # flushes the batch processor
"""


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port, out = free_port(), tmp_path / "otlp.bin"
    command = [sys.executable, "-m", "tests.observability.otlp_receiver"]
    process = subprocess.Popen([*command, "--port", str(port), "--out", str(out)], cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "receiver not up"
            time.sleep(0.05)
    yield url, out
    process.terminate()
    process.wait(timeout=10)


def received(out: Path) -> list[ExportTraceServiceRequest]:
    data, requests = out.read_bytes(), []
    while data:
        (size,) = struct.unpack(">I", data[:4])
        requests.append(ExportTraceServiceRequest.FromString(data[4 : 4 + size]))
        data = data[4 + size :]
    return requests


def test_spans_arrive_at_the_otlp_endpoint(receiver: tuple[str, Path]) -> None:
    url, out = receiver
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "weir-api-test"}
    env["OTEL_TRACES_SAMPLER"] = "always_on"  # this test is about export, not Weir's 1 % default
    done = subprocess.run(
        [sys.executable, "-c", EMIT_SPANS], env=env, cwd=REPO_ROOT, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()

    requests = received(out)
    names: set[str] = set()
    services: set[str] = set()
    for request in requests:
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                names.update(span.name for span in scope_spans.spans)
    assert names == {"request", "send weir.events"}
    assert services == {"weir-api-test"}


def test_default_sampler_keeps_one_percent_of_new_traces_and_every_sampled_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from weir.observability.tracing import DEFAULT_SAMPLE_RATIO, default_sampler

    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    sampler = default_sampler()
    assert isinstance(sampler, ParentBased) and DEFAULT_SAMPLE_RATIO == 0.01
    assert isinstance(sampler._root, TraceIdRatioBased) and sampler._root.rate == 0.01
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    assert default_sampler() is None
