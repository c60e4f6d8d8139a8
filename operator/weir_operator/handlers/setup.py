"""Operator-wide startup/cleanup: kopf settings, the store, the Kubernetes client."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from weir.core.config import get_settings
from weir.store.base import make_store

from weir_operator.handlers import configmaps
from weir_operator.handlers.common import Runtime, install_runtime, runtime


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Keep kopf's bookkeeping in annotations: status holds only what users read.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="weir.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="weir.dev", key="last-handled-configuration"
    )
    # Only warnings from logs become Events; what the operator did is posted with kopf.info.
    settings.posting.level = logging.WARNING
    settings.batching.error_delays = (1, 2, 5, 10, 30, 60)
    settings.watching.server_timeout = 300
    weir_settings = get_settings()
    install_runtime(Runtime(settings=weir_settings, store=make_store(weir_settings)))
    await configmaps.connect()


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    await configmaps.close()
    await runtime().store.close()
