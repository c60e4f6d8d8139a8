"""Fixtures for the ClickHouse engine: chDB in-process and behind its HTTP interface."""
