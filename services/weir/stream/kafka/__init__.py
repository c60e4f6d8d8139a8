"""The Kafka backend, over aiokafka: `producer` (acks=all, idempotent), `consumer` (group member,
explicit commits), `admin` (topics) and `config` (connection and authentication options).
"""
