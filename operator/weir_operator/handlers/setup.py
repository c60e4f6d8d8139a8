"""Operator-wide startup/cleanup: kopf settings, the store, the Kubernetes login."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from weir.core.config import get_settings
from weir.store import make_store
from weir_operator.handlers.common import Runtime, install_runtime, runtime


class _QuietTimerSuccess(logging.Filter):
    """kopf logs every successful timer run at INFO, which would post an Event per resync."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timer ") and message.endswith(" succeeded."))


_QUIET_TIMERS = _QuietTimerSuccess()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Keep kopf's bookkeeping in annotations: status holds only what users read.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="weir.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="weir.dev", key="last-handled-configuration"
    )
    # kopf.info/warn Events are filtered by this level too, so it stays at INFO.
    settings.posting.level = logging.INFO
    logging.getLogger("kopf.objects").addFilter(_QUIET_TIMERS)  # a no-op when already added
    settings.watching.server_timeout = 300
    # No runtime watching of CRDs/namespaces: a one-time discovery suffices (the chart installs
    # the CRDs first) and a namespaced operator then needs no cluster-scope RBAC at all.
    settings.scanning.disabled = True
    weir_settings = get_settings()
    install_runtime(Runtime(settings=weir_settings, store=make_store(weir_settings)))


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    await runtime().store.close()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Service account in a pod, else KUBECONFIG read now (kopf's piggybacking on
    kubernetes_asyncio, a test dependency only, would read it at import: too early for tests and
    wrappers that set it later)."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
