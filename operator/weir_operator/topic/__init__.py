"""Topic custom resource: Kafka topics reconciled through weir.stream.TopicAdmin."""
