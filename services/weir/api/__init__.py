"""The HTTP API: accepts events durably and answers /metrics."""

from weir.api.app import create_app, serving_app

__all__ = ["create_app", "serving_app"]
