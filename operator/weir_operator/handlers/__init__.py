"""kopf wiring. Importing this package registers every handler with kopf's default registry."""

from weir_operator.handlers import setup, table, topic

__all__ = ["setup", "table", "topic"]
