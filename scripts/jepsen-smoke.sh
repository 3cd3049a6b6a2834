#!/usr/bin/env bash
# The CI pass of the Jepsen harness (docs/jepsen.md): a short `register` run, a short `set`
# run, a short `objects` run (the S3 API), a short `queue` run (SQS, a standard queue), a
# short `stream` run (Kinesis, with a split or merge halfway) and a short `quorum` run
# (quorum storage's key-value database, its writer crashed and recovered) against a
# cluster that is being broken on purpose; fails on any anomaly (and on a run the harness
# could not complete or decide).
#
# Target: the docker-compose cluster when docker answers, an image can be had and
# deploy/docker-compose.yml comes up healthy (brought up fresh with `down -v; up -d` and
# taken down with `down -v` at the end); otherwise six local stratusd processes.
# The image: stratus:jepsen, packaged by deploy/build-image.sh from the debug binaries this
# script builds, so the nodes run the same code as the harness's client (an older
# stratus:latest may not honour what a newer client relies on, e.g. request ids on
# retried writes, and would show up as anomalies); stratus:latest when that fails.
#   compose: register with partition,kill,pause; set with partition,kill,zone;
#            objects with partition,kill;        queue with partition,kill;
#            stream with partition,kill;         quorum with partition,kill,zone
#   local:   register with kill,pause;           set with kill,pause,zone;
#            objects with kill;                  queue with kill;
#            stream with kill;                   quorum with kill,zone
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/stratus-target), JEPSEN_TARGET
# (compose|local: force one), JEPSEN_REGISTER_SECONDS (60), JEPSEN_SET_SECONDS (30),
# JEPSEN_OBJECTS_SECONDS (25), JEPSEN_QUEUE_SECONDS (25), JEPSEN_STREAM_SECONDS (25),
# JEPSEN_QUORUM_SECONDS (25), JEPSEN_SEED (1), JEPSEN_STORE (jepsen/store).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/stratus-target}
register_seconds=${JEPSEN_REGISTER_SECONDS:-60}
set_seconds=${JEPSEN_SET_SECONDS:-30}
objects_seconds=${JEPSEN_OBJECTS_SECONDS:-25}
queue_seconds=${JEPSEN_QUEUE_SECONDS:-25}
stream_seconds=${JEPSEN_STREAM_SECONDS:-25}
quorum_seconds=${JEPSEN_QUORUM_SECONDS:-25}
seed=${JEPSEN_SEED:-1}
store=${JEPSEN_STORE:-jepsen/store}
compose_file=deploy/docker-compose.yml

log() { echo "jepsen-smoke: $*" >&2; }

compose() {
    if docker-compose version >/dev/null 2>&1; then
        docker-compose -f "$compose_file" "$@"
    else
        docker compose -f "$compose_file" "$@"
    fi
}

# Picks the image the cluster runs (exported as STRATUS_IMAGE for compose).
choose_image() {
    if [[ -x deploy/build-image.sh ]] &&
        deploy/build-image.sh --profile dev --no-cargo --tag stratus:jepsen >/dev/null 2>&1; then
        export STRATUS_IMAGE=stratus:jepsen
    elif docker image inspect stratus:latest >/dev/null 2>&1; then
        log "could not package the debug binaries; using the existing stratus:latest"
        export STRATUS_IMAGE=stratus:latest
    else
        return 1
    fi
}

compose_usable() {
    command -v docker >/dev/null 2>&1 &&
        docker info >/dev/null 2>&1 &&
        choose_image &&
        [[ -f $compose_file ]] &&
        command -v nsenter >/dev/null 2>&1 && command -v iptables >/dev/null 2>&1 &&
        command -v tc >/dev/null 2>&1 &&
        { docker-compose version >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; }
}

# Every container healthy within $1 seconds.
wait_healthy() {
    local deadline=$((SECONDS + $1)) i state all
    while ((SECONDS < deadline)); do
        all=1
        for i in 1 2 3 4 5 6; do
            state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
                "stratus-node$i" 2>/dev/null || echo missing)
            [[ $state == healthy ]] || all=0
        done
        ((all)) && return 0
        sleep 2
    done
    return 1
}

compose_up=0
cleanup() {
    if ((compose_up)); then
        log "taking the compose cluster down"
        compose down -v >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

log "building stratus-jepsen, stratusd and stratus (debug)"
nice cargo build --locked -p stratus-jepsen -p stratus-node -p stratus-client \
    --bin stratus-jepsen --bin stratusd --bin stratus
bin=$CARGO_TARGET_DIR/debug

target=${JEPSEN_TARGET:-}
if [[ -z $target ]]; then
    if compose_usable; then
        log "bringing the compose cluster up fresh on $STRATUS_IMAGE"
        compose down -v >/dev/null 2>&1 || true
        compose_up=1
        if compose up -d && wait_healthy 180; then
            target=compose
        else
            log "the compose cluster did not come up healthy; falling back to the local target"
            compose down -v >/dev/null 2>&1 || true
            compose_up=0
            target=local
        fi
    else
        log "docker, an image, compose or nsenter/iptables/tc is missing: local target"
        target=local
    fi
elif [[ $target == compose ]]; then
    choose_image || { log "no image for the compose cluster"; exit 1; }
    compose down -v >/dev/null 2>&1 || true
    compose_up=1
    compose up -d
    wait_healthy 180 || { log "the compose cluster did not come up healthy"; exit 1; }
fi

case "$target" in
    compose)
        register_faults=partition,kill,pause
        set_faults=partition,kill,zone
        objects_faults=partition,kill
        queue_faults=partition,kill
        stream_faults=partition,kill
        quorum_faults=partition,kill,zone
        ;;
    local)
        register_faults=kill,pause
        set_faults=kill,pause,zone
        objects_faults=kill
        queue_faults=kill
        stream_faults=kill
        quorum_faults=kill,zone
        ;;
    *) log "unknown JEPSEN_TARGET '$target' (compose or local)"; exit 2 ;;
esac

failed=0
run() {
    local workload=$1 faults=$2 seconds=$3 code=0
    log "$workload on $target with $faults for ${seconds}s"
    "$bin/stratus-jepsen" run --target "$target" --workload "$workload" --nemesis "$faults" \
        --time-limit "$seconds" --nemesis-interval 8 --seed "$seed" --store "$store" \
        --stratusd "$bin/stratusd" --compose-file "$compose_file" || code=$?
    if ((code != 0)); then
        log "$workload run failed with exit code $code (1 anomaly, 2 undecided, 3 harness error)"
        failed=1
    fi
}

run register "$register_faults" "$register_seconds"
run set "$set_faults" "$set_seconds"
run objects "$objects_faults" "$objects_seconds"
run queue "$queue_faults" "$queue_seconds"
run stream "$stream_faults" "$stream_seconds"
run quorum "$quorum_faults" "$quorum_seconds"

if ((failed)); then
    log "FAILED: see the run directories under $store"
    exit 1
fi
log "passed: no anomaly"
