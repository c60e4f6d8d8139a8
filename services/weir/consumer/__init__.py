"""The consumer: stream records -> decode -> batch -> dedupe -> insert -> commit.

One module per step (`decode`, `batch`, `dedupe`, `sink`, `dead_letters`); `runner.ConsumerLoop`
strings them together and flushes one batch while it polls the next; `service` is the
`weir consumer` deployable, `status` its side port, `replay` is `weir replay-dlq`.
"""
