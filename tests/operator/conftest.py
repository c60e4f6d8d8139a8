"""Fixtures for the operator tests: the harness's chDB store and a real kube-apiserver."""

from __future__ import annotations

from tests.operator.kube import kube, kubeconfig

__all__ = ["kube", "kubeconfig"]
