#!/usr/bin/env bash
# Load test of POST /events with an open-model profile (issue 10): a local Kafka broker, a store,
# the schema and topics (`weir migrate`), `weir api` as shipped, then the load generator in
# scripts/loadtest/ (Go on the vegeta library, with k6's ramping-arrival-rate semantics and option
# names: k6 itself is AGPL and not used here; see main.go).
# Prints progress and the summary, writes it as JSON, and stops everything it started, also on
# failure or Ctrl-C. Not part of `make test`.
#
#   scripts/loadtest.sh                                 profile "full" (7 min 45 s)
#   WEIR_LOADTEST_PROFILE=quick scripts/loadtest.sh     the 90 s variant (make loadtest-quick)
#   WEIR_LOADTEST_URL=http://127.0.0.1:8080 scripts/loadtest.sh   load a running API, start nothing
#
# Environment (all optional):
#   WEIR_LOADTEST_PROFILE   a profile in scripts/loadtest/profiles.json (default full)
#   WEIR_LOADTEST_URL       base URL of an API that is already running; nothing is started or stopped
#   WEIR_LOADTEST_OUT       JSON summary path (default bench-results/loadtest-<UTC time>.json)
#   WEIR_LOADTEST_KEEP=1    keep the scratch dir (API log, broker data) instead of removing it
#   WEIR_LOADTEST_STORE     what the API's store is, no ClickHouse server needed either way:
#                           shim (default): WEIR_STORE_BACKEND=clickhouse against the chDB HTTP shim
#                             (tests/harness/chdb_http.py) in its own process, so any number of API
#                             worker processes share it;
#                           chdb: WEIR_STORE_BACKEND=chdb in the scratch dir, in-process; chDB opens a
#                             data dir from ONE process, so only with WEIR_API_WORKERS=1
#   WEIR_*, OTEL_*          reach the API it starts (e.g. WEIR_API_WORKERS, WEIR_PRODUCER_LINGER_MS);
#                           the stream and store settings are set here: Kafka (topic with 6
#                           partitions unless WEIR_KAFKA_TOPIC_PARTITIONS says otherwise) and the store
#   WEIR_CACHE_DIR          build cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/weir); the generator
#                           is built once into $WEIR_CACHE_DIR/loadtest-<source hash>/bin
#
# Exit status: the generator's: 0 thresholds passed, 99 a threshold failed, 130 interrupted.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
SRC="$REPO_ROOT/scripts/loadtest"
PROFILE="${WEIR_LOADTEST_PROFILE:-full}"
URL="${WEIR_LOADTEST_URL:-}"
OUT="${WEIR_LOADTEST_OUT:-$REPO_ROOT/bench-results/loadtest-$(date -u +%Y%m%dT%H%M%SZ).json}"
STORE="${WEIR_LOADTEST_STORE:-shim}"
VENV="$REPO_ROOT/.venv/bin"

log() { echo "loadtest.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# The generator, built once per source version (its go.mod pins vegeta) into the shared cache.
build_generator() {
    local key dir sources=("$SRC/go.mod" "$SRC/go.sum") file
    for file in "$SRC"/*.go; do
        [[ "$file" == *_test.go ]] || sources+=("$file")
    done
    key="$(cat "${sources[@]}" | sha256sum | cut -c1-12)"
    dir="$CACHE_ROOT/loadtest-$key"
    GEN="$dir/bin/weir-loadtest"
    [[ -x "$GEN" ]] && return 0
    command -v go >/dev/null || die "go is required to build the load generator"
    mkdir -p "$dir/bin"
    exec 8>"$dir/.lock"
    flock 8
    if [[ ! -x "$GEN" ]]; then
        log "building the load generator into $dir (once)"
        (cd "$SRC" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
            go build -trimpath -ldflags "-s -w" -o "$GEN.tmp" .)
        mv -f "$GEN.tmp" "$GEN"
    fi
    exec 8>&-
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

WORK="" API_PID="" KAFKA_PID="" KAFKA_STARTED="" SHIM_PID=""
kafka() {
    WEIR_KAFKA_PORT="$KAFKA_PORT" WEIR_KAFKA_CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" \
        WEIR_KAFKA_DATA_DIR="$WORK/kafka" "$REPO_ROOT/scripts/kafka.sh" "$@"
}

# shellcheck disable=SC2317  # stop_api and cleanup run from the EXIT trap
stop_api() {
    [[ -n "$API_PID" ]] && kill -0 "$API_PID" 2>/dev/null || return 0
    kill -TERM "$API_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 40))
    while kill -0 "$API_PID" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "weir api (pid $API_PID) ignored TERM; killing its process group"
            kill -KILL -- "-$API_PID" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    # Workers it may have left behind share its process group (it is a session leader).
    kill -KILL -- "-$API_PID" 2>/dev/null || true
}

# shellcheck disable=SC2317
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_api
    if [[ -n "$SHIM_PID" ]]; then
        kill -TERM "$SHIM_PID" 2>/dev/null || true
        wait "$SHIM_PID" 2>/dev/null || true
    fi
    if [[ -n "$KAFKA_STARTED" ]]; then
        kafka stop >/dev/null 2>&1 || log "kafka.sh stop failed (data dir $WORK/kafka)"
    fi
    if [[ -n "$WORK" ]]; then
        if [[ "${WEIR_LOADTEST_KEEP:-}" == 1 ]]; then
            log "kept $WORK (api.log, migrate.log, kafka/)"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_stack() {
    [[ -x "$VENV/weir" ]] || die "$VENV/weir not found: run scripts/bootstrap.sh (make setup)"
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/weir-loadtest.XXXXXX")"
    KAFKA_PORT="$(free_port)" KAFKA_CONTROLLER_PORT="$(free_port)"
    local api_port metrics_port shim_port
    api_port="$(free_port)" metrics_port="$(free_port)" shim_port="$(free_port)"

    log "starting a Kafka broker on 127.0.0.1:$KAFKA_PORT"
    KAFKA_STARTED=1
    kafka start >"$WORK/kafka-start.log" 2>&1 || { cat "$WORK/kafka-start.log" >&2; die "broker did not start"; }
    KAFKA_PID="$(cat "$WORK/kafka/kafka.pid")"

    export WEIR_STREAM_BACKEND=kafka
    export WEIR_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
    export WEIR_KAFKA_TOPIC_PARTITIONS="${WEIR_KAFKA_TOPIC_PARTITIONS:-6}"
    export WEIR_DATA_DIR="$WORK/data"
    case "$STORE" in
    chdb) export WEIR_STORE_BACKEND=chdb ;;
    shim)
        log "starting the chDB HTTP shim on 127.0.0.1:$shim_port (the store, for every API worker)"
        (cd "$REPO_ROOT" && exec "$VENV/python" -m tests.harness.chdb_http --port "$shim_port" \
            --data-dir "$WORK/chdb") >"$WORK/shim.log" 2>&1 </dev/null &
        SHIM_PID=$!
        local deadline=$((SECONDS + 30))
        until [[ "$(curl -s "http://127.0.0.1:$shim_port/ping" 2>/dev/null)" == "Ok." ]]; do
            kill -0 "$SHIM_PID" 2>/dev/null || { cat "$WORK/shim.log" >&2; die "chDB HTTP shim exited"; }
            ((SECONDS < deadline)) || die "chDB HTTP shim not answering after 30 s"
            sleep 0.1
        done
        export WEIR_STORE_BACKEND=clickhouse WEIR_CLICKHOUSE_URL="http://127.0.0.1:$shim_port"
        ;;
    *) die "WEIR_LOADTEST_STORE must be shim or chdb, not $STORE" ;;
    esac
    export WEIR_HOST=127.0.0.1 WEIR_PORT="$api_port" WEIR_METRICS_PORT="$metrics_port"

    # The API runs from the scratch dir, so a developer's .env cannot change what is measured;
    # settings come from the environment only.
    log "weir migrate (schema in chDB, topics with $WEIR_KAFKA_TOPIC_PARTITIONS partitions)"
    (cd "$WORK" && "$VENV/weir" migrate) >"$WORK/migrate.log" 2>&1 \
        || { tail -n 30 "$WORK/migrate.log" >&2; die "weir migrate failed"; }

    log "starting weir api on 127.0.0.1:$api_port"
    # Its own session: Ctrl-C reaches the generator (which prints what ran), and cleanup stops
    # the API with SIGTERM, the way an orchestrator would.
    # shellcheck disable=SC2016  # $$ and $0 belong to the inner shell
    (cd "$WORK" && exec setsid bash -c 'echo $$ >api.pid; exec "$0" api' "$VENV/weir") \
        >"$WORK/api.log" 2>&1 </dev/null &
    local deadline=$((SECONDS + 60))
    until [[ -s "$WORK/api.pid" ]]; do
        ((SECONDS < deadline)) || die "weir api did not start"
        sleep 0.05
    done
    API_PID="$(cat "$WORK/api.pid")"
    URL="http://127.0.0.1:$api_port"
    until curl -sf -o /dev/null "$URL/ready"; do
        if ! kill -0 "$API_PID" 2>/dev/null; then
            tail -n 40 "$WORK/api.log" >&2
            die "weir api exited during startup"
        fi
        ((SECONDS < deadline)) || { tail -n 40 "$WORK/api.log" >&2; die "weir api not ready after 60 s"; }
        sleep 0.2
    done
    log "weir api ready (pid $API_PID)"
}

build_generator
watch=()
if [[ -n "$URL" ]]; then
    log "loading the API at $URL (started nothing)"
    curl -sf -o /dev/null --max-time 5 "${URL%/}/health" || die "no API answers ${URL%/}/health"
else
    # Up to maxVUs connections at once: the API needs the descriptors.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    start_stack
    watch=(-watch "api=$API_PID" -watch "kafka=$KAFKA_PID")
    [[ -z "$SHIM_PID" ]] || watch+=(-watch "store=$SHIM_PID")
fi

rc=0
"$GEN" -profiles "$SRC/profiles.json" -profile "$PROFILE" -url "$URL" -out "$OUT" "${watch[@]}" || rc=$?
if [[ -n "$API_PID" ]] && ! kill -0 "$API_PID" 2>/dev/null; then
    log "weir api exited during the run; last lines of its log:"
    tail -n 40 "$WORK/api.log" >&2
    rc=1
fi
exit "$rc"
