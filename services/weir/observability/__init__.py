"""Logs, traces and Prometheus metrics shared by every deployable."""
