# The two commands README.md opens with: `make dev` and `make test`. Each does its own setup.
.PHONY: dev test setup lint typecheck unit kafka-start kafka-stop bench clean loadtest loadtest-quick cluster-up cluster-down

VENV := .venv/bin

setup:
	scripts/bootstrap.sh

## Run Weir on the embedded default (chDB + in-process log, data in .weir-data/) on :8080.
dev: setup
	$(VENV)/weir dev

## Install everything the suite needs (venv, Kafka jars, helm, kubeconform, etcd + kube-apiserver,
## the one-node cluster's packages and builds) and run it.
test: setup
	scripts/kafka.sh fetch
	scripts/tools.sh
	scripts/kube-apiserver.sh build
	scripts/cluster.sh deps
	scripts/cluster/build.sh all
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	$(VENV)/pytest -q

lint: setup
	$(VENV)/ruff check . && $(VENV)/ruff format --check . && $(VENV)/mypy && $(VENV)/lint-imports

## A local broker on 127.0.0.1:9092 for running `weir api` / `weir consumer` by hand.
kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop

## The one-node Kubernetes cluster of tests/cluster/ (scripts/cluster.sh), by hand.
cluster-up:
	scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down

## Load test of POST /events, issue 10's profile (7 min 45 s; not part of `make test`): builds the
## generator once (scripts/loadtest/), starts a broker and `weir api`, prints the summary and writes
## bench-results/loadtest-<time>.json. WEIR_LOADTEST_URL=http://HOST:PORT loads a running API instead.
loadtest: setup
	scripts/loadtest.sh

## The same shape in 90 s: ramp, sustain at 2,000 req/s, spike to 10,000, recover.
loadtest-quick: setup
	WEIR_LOADTEST_PROFILE=quick scripts/loadtest.sh

## The usual benchmarks one after another, each under the bench lock (about 10 min; not part of
## `make test`): ingestion (needs wrk), consumer, freshness, queries at 10M. Each prints its table
## and writes bench-results/*.json; the README's Measured performance has the commands with baselines.
BENCH_LOCK = flock /tmp/weir-bench.lock
bench: setup
	$(BENCH_LOCK) .venv/bin/python scripts/bench_ingest.py --clients 128 --seconds 20 --batch-sizes 1,500 --overload-clients 1000
	$(BENCH_LOCK) .venv/bin/python scripts/bench_consumer.py --events 600000
	$(BENCH_LOCK) .venv/bin/python scripts/bench_freshness.py --seconds 30
	$(BENCH_LOCK) .venv/bin/python scripts/bench_metrics.py --events 10000000

clean:
	rm -rf .weir-data bench-results
