#!/usr/bin/env bash
# Restarts the nodes of the compose cluster one at a time, and moves on to the next node
# only when the restarted one is back: its container is healthy, it sees a leader in every
# group it belongs to and has applied everything the leaders had applied when it came
# back, the cluster reports every node up and every group led, and in every group all
# voters name the same leader and that leader reports itself as leader.
#
# Usage: deploy/rolling-restart.sh [--nodes "1 2 3 4 5 6"] [--timeout SECS] [--stop-start]
#
#   --nodes LIST   node ids in the order to restart them (default: 1 to 6)
#   --timeout S    how long one node may take to come back before the script stops with an
#                  error, leaving the remaining nodes alone (default: 120)
#   --stop-start   `docker stop` + `docker start` instead of `docker restart`
#
# Reaches node N through its published edge port (4565+N on $STRATUS_EDGE_HOST, default
# 127.0.0.1) and the container stratus-nodeN. Needs docker, curl and jq on the host.
# $STRATUS_STOP_GRACE_S (default 20) is how long a node gets to stop before SIGKILL.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "rolling-restart: $*" >&2; exit 1; }

nodes="1 2 3 4 5 6"
timeout_s=120
stop_start=0
while (($#)); do
    case "$1" in
        --nodes) (($# >= 2)) || die "--nodes needs a value"; nodes=$2; shift 2 ;;
        --timeout) (($# >= 2)) || die "--timeout needs a value"; timeout_s=$2; shift 2 ;;
        --stop-start) stop_start=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
for n in $nodes; do
    [[ $n =~ ^[1-6]$ ]] || die "node ids are 1 to 6, got '$n'"
done
[[ -n ${nodes// /} ]] || die "--nodes is empty"
for tool in docker curl jq; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed"
done

edge_host=${STRATUS_EDGE_HOST:-127.0.0.1}
stop_grace_s=${STRATUS_STOP_GRACE_S:-20}

container() { echo "stratus-node$1"; }
edge() { echo "http://$edge_host:$((4565 + $1))"; }
now_ms() { date +%s%3N; }

# Polls the command until it succeeds or the deadline passes.
wait_for() {
    local what=$1 deadline=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "timed out waiting for $what"
        fi
        sleep 0.2
    done
}

container_healthy() {
    [[ $(docker inspect --format '{{.State.Health.Status}}' "$(container "$1")") == healthy ]]
}

# The cluster as node $1 sees it: every node up and every group with a leader.
cluster_ok() {
    curl -fsS --max-time 3 "$(edge "$1")/_stratus/health" | jq -e '.status == "ok"'
}

# The applied index of every group's leader, as {"<group>": index}, seen from node $1.
leader_applied() {
    curl -fsS --max-time 3 "$(edge "$1")/_stratus/health" |
        jq -ce 'select(.status == "ok") | [.groups[] | {key: (.id | tostring), value: .applied_index}] | from_entries'
}

# Node $1 knows a leader for each of its groups and has applied at least $2's indexes.
caught_up() {
    curl -fsS --max-time 3 "$(edge "$1")/_stratus/health/node" |
        jq -e --argjson want "$2" \
            '(.groups | length > 0) and all(.groups[]; .leader != null and .applied_index >= $want[.id | tostring])'
}

# Every group's voters all report, agree on one leader, and that leader says so itself.
# (The merged /_stratus/health view can name a leader that has just gone away for a few
# seconds, until the followers notice; the nodes' own reports cannot.)
all_nodes="1 2 3 4 5 6"
groups_settled() {
    local n reports=()
    for n in $all_nodes; do
        reports+=("$(curl -fsS --max-time 3 "$(edge "$n")/_stratus/health/node")") || return 1
    done
    printf '%s\n' "${reports[@]}" | jq -se '
        [.[] | .id as $node | .groups[] | {group: .id, node: $node, leader, voters}]
        | group_by(.group)
        | all(.[]; (map(.leader) | unique) as $leaders
            | ($leaders | length == 1) and $leaders[0] != null
            and (map(.node) | sort) == (.[0].voters | sort)
            and any(.[]; .node == $leaders[0]))'
}

first=${nodes%% *}
wait_for "the cluster to be healthy before starting (node $first's /_stratus/health)" \
    $((SECONDS + timeout_s)) cluster_ok "$first"
wait_for "every group's voters to agree on a live leader before starting" \
    $((SECONDS + timeout_s)) groups_settled

total_start=$(now_ms)
for n in $nodes; do
    name=$(container "$n")
    docker inspect "$name" >/dev/null || die "no container $name"
    t0=$(now_ms)
    if ((stop_start)); then
        docker stop --time "$stop_grace_s" "$name" >/dev/null
        docker start "$name" >/dev/null
    else
        docker restart --time "$stop_grace_s" "$name" >/dev/null
    fi
    t_started=$(now_ms)
    deadline=$((SECONDS + timeout_s))
    wait_for "$name to be healthy" "$deadline" container_healthy "$n"
    t_healthy=$(now_ms)
    until want=$(leader_applied "$n" 2>/dev/null); do
        ((SECONDS < deadline)) || die "timed out waiting for node $n's view of the cluster"
        sleep 0.2
    done
    wait_for "node $n to catch up with the leaders ($want)" "$deadline" caught_up "$n" "$want"
    t_caught_up=$(now_ms)
    wait_for "every node up and every group led" "$deadline" cluster_ok "$n"
    wait_for "every group's voters to agree on a live leader" "$deadline" groups_settled
    t_done=$(now_ms)
    printf 'rolling-restart: node %s back in %d ms (stop+start %d ms, healthy +%d ms, caught up +%d ms, cluster settled +%d ms)\n' \
        "$n" $((t_done - t0)) $((t_started - t0)) $((t_healthy - t_started)) \
        $((t_caught_up - t_healthy)) $((t_done - t_caught_up))
done
echo "rolling-restart: restarted nodes $nodes in $(($(now_ms) - total_start)) ms"
