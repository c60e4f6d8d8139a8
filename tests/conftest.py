"""Root of the suite: registers the fixtures that start real parts (tests/harness/)."""

pytest_plugins = [
    "tests.harness.kafka",
    "tests.harness.clickhouse",
]
