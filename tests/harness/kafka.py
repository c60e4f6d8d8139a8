"""Fixtures for a real single-node Kafka broker (scripts/kafka.sh)."""
