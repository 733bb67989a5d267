#!/usr/bin/env bash
# The admission controller (controllers/admission.c) with thousands of pending Workloads, this
# tree beside a baseline commit (BASE, default: where this branch left main) built from
# `git archive` in a temporary directory, each figure with the ratio baseline / this tree:
#   - bench/lib/admission_bench.c over an in-memory store, N pending Workloads (N = 1000 and
#     5000, NS="1000 5000"): the first pass, a pass after one new Workload, a pass after a
#     change that concerns no Workload (pass time and loop busy time, median of R);
#   - `trainyard server` with 100 virtual nodes: J (1000) PyTorchJobs created through the API
#     (one keep-alive connection, bench/lib/server_client.py load) into a LocalQueue "default"
#     whose ClusterQueue has no room for them, so they all wait: the time to create them, and
#     until every one has its Workload counted as pending in /metrics; then J more with
#     `kubectl apply -f` of one List, with 1000 already waiting.
# Every process started here is stopped on exit. BASE=HEAD compares the tree with itself.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-$(git merge-base HEAD main)}
NS=${NS:-1000 5000}
R=${R:-5}
J=${J:-1000}
PY=/usr/bin/python3

tmp=$(mktemp -d /var/tmp/trainyard-admission-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

read -ra libs <<<"$(pkg-config --libs libuv yaml-0.1 jansson sqlite3)"
bench_bin() { # $1: tree, $2: output
    cc -std=gnu17 -O2 -g -Wall -Wextra -Werror -Isrc -I"$1/src" -D_GNU_SOURCE \
        $(pkg-config --cflags jansson libuv) -o "$2" bench/lib/admission_bench.c \
        "$1/build/libtrainyard.a" "${libs[@]}" -ldl -lm
}
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
echo "baseline: $BASE = $(git rev-parse --short "$BASE"); this tree: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + changes')"
make -s build/trainyard build/libtrainyard.a
mkdir -p "$tmp/base"
git archive "$BASE" | tar -x -C "$tmp/base"
make -s -C "$tmp/base" build/trainyard build/libtrainyard.a >/dev/null
mkdir -p build/bench
bench_bin . build/bench/admission_bench
bench_bin "$tmp/base" "$tmp/admission_bench_base"

# the "label|pass ms|busy ms|passes" lines of two runs side by side
side_by_side() {
    paste -d'|' "$1" "$2" | awk -F'|' '
        function ratio(a, b) { return b > 0 ? sprintf("%5.1fx", a / b) : "no pass" }
        {
            printf "  %-28s pass %8.2f -> %7.2f ms (%s)   loop busy %8.2f -> %7.2f ms (%s)   passes %.1f -> %.1f\n",
                $1, $2, $6, ratio($2, $6), $3, $7, ratio($3, $7), $4, $8
        }'
}
for n in $NS; do
    echo "== in-memory store, $n pending workloads (baseline -> this tree; median of $R)"
    taskset -c 0 "$tmp/admission_bench_base" "$n" "$R" >"$tmp/base.out"
    taskset -c 0 build/bench/admission_bench "$n" "$R" >"$tmp/new.out"
    side_by_side "$tmp/base.out" "$tmp/new.out"
done

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# $1: binary. Prints "create_s pending_s apply_s apply_pending_s".
api_run() {
    local port url data server
    port=$(free_port)
    url=http://127.0.0.1:$port
    data=$(mktemp -d "$tmp/data.XXXX")
    "$1" server --data-dir "$data" --listen "127.0.0.1:$port" \
        --nodes '100x{cpu:32,memory:256Gi,nvidia.com/gpu:8}' >>"$tmp/server.log" 2>&1 &
    server=$!
    pids+=($server)
    for _ in $(seq 1 500); do curl -sf -o /dev/null "$url/version" && break; sleep 0.01; done
    for obj in \
        '{"apiVersion":"kueue.x-k8s.io/v1beta1","kind":"ResourceFlavor","metadata":{"name":"default-flavor"}}' \
        '{"apiVersion":"kueue.x-k8s.io/v1beta1","kind":"ClusterQueue","metadata":{"name":"cq"},"spec":{"namespaceSelector":{},"resourceGroups":[{"coveredResources":["cpu","memory"],"flavors":[{"name":"default-flavor","resources":[{"name":"cpu","nominalQuota":"0"},{"name":"memory","nominalQuota":"0"}]}]}]}}' \
        '{"apiVersion":"kueue.x-k8s.io/v1beta1","kind":"LocalQueue","metadata":{"name":"default","namespace":"default"},"spec":{"clusterQueue":"cq"}}'; do
        kind=$(echo "$obj" | sed 's/.*"kind":"\([A-Za-z]*\)".*/\1/' | tr 'A-Z' 'a-z')s
        ns=; [ "$kind" = localqueues ] && ns=namespaces/default/
        curl -sf -o /dev/null -H 'Content-Type: application/json' -d "$obj" \
            "$url/apis/kueue.x-k8s.io/v1beta1/$ns$kind"
    done
    # every Workload counted as pending by the last pass
    wait_pending() {
        local deadline=$(( $(date +%s) + 900 ))
        until curl -sf "$url/metrics" | grep -q "^kueue_pending_workloads{cluster_queue=\"cq\"} $1\$"; do
            sleep 0.05
            [ "$(date +%s)" -lt "$deadline" ] || { echo "timeout waiting for $1 pending" >&2; return; }
        done
    }
    local t0 t1 t2 t3 t4 t5
    t0=$(date +%s%N)
    $PY bench/lib/server_client.py load "$url" "$J" >/dev/null
    t1=$(date +%s%N)
    wait_pending "$J"
    t2=$(date +%s%N)
    t3=$(date +%s%N)
    /usr/bin/kubectl --kubeconfig "$data/kubeconfig" apply -f "$tmp/jobs.json" >/dev/null
    t4=$(date +%s%N)
    wait_pending $((2 * J))
    t5=$(date +%s%N)
    kill "$server"; wait "$server" || true
    awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" -v f="$t5" \
        'BEGIN {printf "%.1f %.1f %.1f %.1f\n", (b - a) / 1e9, (c - a) / 1e9, (e - d) / 1e9, (f - d) / 1e9}'
}
# the same jobs as server_client.py's, named apply-NNNNN, as one List for kubectl apply
$PY - "$J" >"$tmp/jobs.json" <<'PYEOF'
import json, sys
sys.path.insert(0, "bench/lib")
import server_client
tmpl = server_client.template()
print(json.dumps({"apiVersion": "v1", "kind": "List",
                  "items": [server_client.named(tmpl, "apply", i) for i in range(int(sys.argv[1]))]}))
PYEOF
echo "== trainyard server, 100 virtual nodes: $J PyTorchJobs into a full ClusterQueue (baseline -> this tree)"
read -r bc bs ba bap <<<"$(api_run "$tmp/base/build/trainyard")"
read -r nc ns na nap <<<"$(api_run build/trainyard)"
awk -v bc="$bc" -v bs="$bs" -v nc="$nc" -v ns="$ns" -v ba="$ba" -v bap="$bap" -v na="$na" -v nap="$nap" -v j="$J" 'BEGIN {
    printf "  created by POSTs on one connection:       %6.1f -> %6.1f s (%4.1fx)\n", bc, nc, bc / nc
    printf "    until all %d are pending in /metrics: %6.1f -> %6.1f s (%4.1fx)\n", j, bs, ns, bs / ns
    printf "  kubectl apply -f of %d more:             %6.1f -> %6.1f s (%4.1fx)\n", j, ba, na, ba / na
    printf "    until all %d are pending:             %6.1f -> %6.1f s (%4.1fx)\n", 2 * j, bap, nap, bap / nap }'
