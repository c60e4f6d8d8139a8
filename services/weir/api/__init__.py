"""The HTTP API: accepts events durably and answers /metrics."""

from weir.api.app import create_app, serving_app
from weir.api.auth import check_exposure

__all__ = ["check_exposure", "create_app", "serving_app"]
