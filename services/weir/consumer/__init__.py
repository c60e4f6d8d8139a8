"""The consumer: stream records -> decode -> batch -> dedupe -> insert -> commit.

One module per step; `runner.ConsumerLoop` strings them together.
"""
