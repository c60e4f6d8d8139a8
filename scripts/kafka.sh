#!/usr/bin/env bash
# A real single-node Apache Kafka (KRaft: broker + controller in one JVM) on 127.0.0.1.
# Needs only a JDK (17+) and Maven: the broker's classpath is resolved from Maven Central.
#
#   scripts/kafka.sh fetch    resolve the jars into $WEIR_KAFKA_HOME/lib (once per pom content)
#   scripts/kafka.sh start    format storage (first time) and start in the background; wait ready
#   scripts/kafka.sh stop     TERM, then KILL after a bound; wait until gone
#   scripts/kafka.sh status   exit 0 when running (prints pid and bootstrap address)
#   scripts/kafka.sh logs     tail the server log
#
# Environment (all optional):
#   WEIR_CACHE_DIR             machine-wide build cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/weir),
#                              outside the clone so that every clone on the machine reuses it
#   WEIR_KAFKA_HOME            jar cache (default $WEIR_CACHE_DIR/kafka-<kafka.version in pom.xml>);
#                              jars in $WEIR_KAFKA_HOME/lib
#   WEIR_KAFKA_HOST            address both listeners bind and the broker advertises (default
#                              127.0.0.1; scripts/cluster.sh uses its node address, for pods)
#   WEIR_KAFKA_PORT            client listener port (default 9092)
#   WEIR_KAFKA_CONTROLLER_PORT controller listener port (default client port + 1)
#   WEIR_KAFKA_DATA_DIR        log dirs, config, pid and server log (default
#                              $WEIR_CACHE_DIR/run/kafka-<port>: one broker per port per machine)
#   WEIR_KAFKA_HEAP            JVM heap options (default "-Xms128m -Xmx512m")
#   WEIR_KAFKA_START_TIMEOUT   seconds to wait for readiness (default 60)
#   WEIR_KAFKA_STOP_TIMEOUT    seconds between TERM and KILL (default 20)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$REPO_ROOT/scripts/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
CACHE_ROOT="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
KAFKA_HOME="${WEIR_KAFKA_HOME:-$CACHE_ROOT/kafka-${KAFKA_VERSION:?no kafka.version in $POM}}"
LIB_DIR="$KAFKA_HOME/lib"
HOST="${WEIR_KAFKA_HOST:-127.0.0.1}"
PORT="${WEIR_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${WEIR_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
DATA_DIR="${WEIR_KAFKA_DATA_DIR:-$CACHE_ROOT/run/kafka-$PORT}"
# A broker started by an earlier version of this script keeps its pid file in the clone: keep
# managing it there until it is stopped.
LEGACY_DATA_DIR="$REPO_ROOT/.cache/kafka/data-$PORT"
if [[ -z "${WEIR_KAFKA_DATA_DIR:-}" && ! -f "$DATA_DIR/kafka.pid" && -f "$LEGACY_DATA_DIR/kafka.pid" ]] \
    && kill -0 "$(cat "$LEGACY_DATA_DIR/kafka.pid")" 2>/dev/null; then
    DATA_DIR="$LEGACY_DATA_DIR"
fi
HEAP="${WEIR_KAFKA_HEAP:--Xms128m -Xmx512m}"
START_TIMEOUT="${WEIR_KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${WEIR_KAFKA_STOP_TIMEOUT:-20}"
PID_FILE="$DATA_DIR/kafka.pid"
SERVER_LOG="$DATA_DIR/logs/server.log"
CONSOLE_LOG="$DATA_DIR/logs/console.log"

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

fetch() {
    local stamp="$LIB_DIR/.pom-sha256" want
    want="$(sha256sum "$POM" | cut -d' ' -f1)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (install Maven)"
    # Concurrent test sessions may fetch at once: one resolves, the others wait and reuse it.
    mkdir -p "$KAFKA_HOME"
    exec 9>"$KAFKA_HOME/.fetch.lock"
    flock 9
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        exec 9>&-
        return 0
    fi
    log "resolving Kafka jars into $LIB_DIR"
    # Resolve into a scratch dir and swap it in, so a failed fetch never leaves a half classpath.
    local tmp="$LIB_DIR.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >"$KAFKA_HOME/fetch.log" 2>&1 || {
        cat "$KAFKA_HOME/fetch.log" >&2
        rm -rf "$tmp"
        die "fetch failed (mvn dependency:copy-dependencies)"
    }
    echo "$want" >"$tmp/.pom-sha256"
    rm -rf "$LIB_DIR"
    mv "$tmp" "$LIB_DIR"
    exec 9>&-
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

write_config() {
    mkdir -p "$DATA_DIR/logs" "$DATA_DIR/kraft"
    cat >"$DATA_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR/kraft
# One node, built for tests: no replication, no waiting, explicit topics only.
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
log.segment.bytes=67108864
log.retention.check.interval.ms=300000
EOF
    cat >"$DATA_DIR/log4j2.yaml" <<EOF
Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      target: SYSTEM_OUT
      PatternLayout: {pattern: "[%d] %p %m (%c)%n"}
      ThresholdFilter: {level: error}
    File:
      name: FILE
      fileName: "$SERVER_LOG"
      PatternLayout: {pattern: "[%d] %p %m (%c)%n"}
  Loggers:
    Root:
      level: info
      AppenderRef: [{ref: STDOUT}, {ref: FILE}]
    Logger:
      - {name: kafka.request.logger, level: warn}
      - {name: org.apache.kafka.clients, level: warn}
      - {name: state.change.logger, level: warn}
      - {name: kafka.log.LogCleaner, level: warn}
EOF
}

java_opts() {
    # shellcheck disable=SC2206
    local heap=($HEAP)
    echo "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$DATA_DIR/log4j2.yaml"
}

format_storage() {
    [[ -f "$DATA_DIR/kraft/meta.properties" ]] && return 0
    # A Kafka Uuid is 16 random bytes, URL-safe base64 without padding; one that starts with "-"
    # is read as an option by the tool (storage format failed for 1 start in 64), so draw again.
    local cluster_id="-"
    while [[ $cluster_id == -* ]]; do
        cluster_id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    done
    # shellcheck disable=SC2046
    java $(java_opts) -cp "$LIB_DIR/*" kafka.tools.StorageTool format \
        --config "$DATA_DIR/server.properties" --cluster-id "$cluster_id" \
        --ignore-formatted >>"$CONSOLE_LOG" 2>&1 || {
        tail -n 30 "$CONSOLE_LOG" >&2
        die "storage format failed"
    }
}

start() {
    if pid="$(running_pid)"; then
        log "already running (pid $pid) on $HOST:$PORT"
        return 0
    fi
    command -v java >/dev/null || die "java not found (install a JDK 17+)"
    fetch
    port_open "$PORT" && die "port $PORT is already in use by another process"
    port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is already in use"
    write_config
    format_storage
    : >"$SERVER_LOG"
    # setsid: the broker must outlive the shell (and the terminal) that started it.
    # shellcheck disable=SC2046
    setsid java $(java_opts) -cp "$LIB_DIR/*" kafka.Kafka "$DATA_DIR/server.properties" \
        >>"$CONSOLE_LOG" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    local deadline=$((SECONDS + START_TIMEOUT))
    # Ready = the server finished startup (it logs this after the broker is unfenced) and the
    # client port accepts connections.
    until grep -q "Kafka Server started" "$SERVER_LOG" 2>/dev/null && port_open "$PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$SERVER_LOG" "$CONSOLE_LOG" >&2 || true
            rm -f "$PID_FILE"
            die "broker exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 40 "$SERVER_LOG" "$CONSOLE_LOG" >&2 || true
            stop
            die "broker not ready after ${START_TIMEOUT}s"
        fi
        sleep 0.2
    done
    log "ready (pid $pid) on $HOST:$PORT, data in $DATA_DIR"
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "broker (pid $pid) ignored TERM for ${STOP_TIMEOUT}s; killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.1
    done
    rm -f "$PID_FILE"
    log "stopped (pid $pid)"
}

status() {
    local pid
    if pid="$(running_pid)"; then
        echo "running pid=$pid bootstrap=$HOST:$PORT data=$DATA_DIR"
    else
        echo "stopped"
        return 1
    fi
}

case "${1:-}" in
fetch) fetch ;;
start) start ;;
stop) stop ;;
restart) stop && start ;;
status) status ;;
logs) tail -n "${2:-100}" "$SERVER_LOG" ;;
*)
    echo "usage: $0 fetch|start|stop|restart|status|logs [lines]" >&2
    exit 2
    ;;
esac
