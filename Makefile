# The two commands README.md opens with: `make dev` and `make test`. Each does its own setup.
.PHONY: dev test setup lint typecheck unit kafka-start kafka-stop bench clean

VENV := .venv/bin

setup:
	scripts/bootstrap.sh

## Run Weir on the embedded default (chDB + in-process log, data in .weir-data/) on :8080.
dev: setup
	$(VENV)/weir dev

## Install everything the suite needs (venv, Kafka jars, helm, kubeconform, etcd + kube-apiserver)
## and run it.
test: setup
	scripts/kafka.sh fetch
	scripts/tools.sh
	scripts/kube-apiserver.sh build
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

clean:
	rm -rf .weir-data bench-results
