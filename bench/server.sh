#!/usr/bin/env bash
# `trainyard server` with 10,000 PyTorchJobs (examples/fashion-mnist's job, suspended so that no
# pod runs, distinct names, label shard=s0..s99) created through the API, each figure beside a
# baseline measured in the same run (issue 3):
#   server RSS < 64 MB                  beside: the bytes of the stored JSON, the empty server's RSS
#   restart (exec -> /version) < 1 s    beside: the same with an empty data dir
#   kubectl get pytorchjobs < 1 s       beside: kubectl get --raw of the same list, curl of it
#   wrk GET one object >= 20,000 req/s and >= 1/2 of nginx serving a file of the same size
#   wrk LIST ?labelSelector=shard=s7 (100 of 10,000) >= 500 req/s, beside nginx with its bytes
#   create seen by a watcher < 5 ms p99 (C probe) beside: write+fsync of 2.5 KB on the same
#                                       file system, back to back and 20 ms apart as the
#                                       creates are, the same probe creating small Events, and
#                                       the Python client's figure
# Everything on loopback; every process started here is stopped on exit.
# N=... objects (default 10000), D=... wrk seconds (default 5), W=... watched creates (500, twice).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
D=${D:-5}
W=${W:-500}
PY=/usr/bin/python3
CLIENT=bench/lib/server_client.py
KUBECTL=/usr/bin/kubectl

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (apt-get)"
    apt-get install -y -q "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
make -s build/trainyard

tmp=$(mktemp -d /var/tmp/trainyard-server-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# until /version answers (the restart times are taken by server_client.py restart)
wait_up() {
    local i
    for i in $(seq 1 2000); do
        curl -sf -o /dev/null "$1/version" && return 0
        sleep 0.01
    done
    echo "server at $1 did not answer" >&2
    return 1
}
# median wall time in ms of a command run R times
time_ms() {
    local r=$1; shift
    local ts=() i t0 t1
    for i in $(seq 1 "$r"); do
        t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
        ts+=($(( (t1 - t0) / 1000000 )))
    done
    printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
wrk_rate() {
    wrk -t2 -c32 -d"${D}s" --latency "$1" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}

echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
echo "data dir: $tmp ($(df -T "$tmp" | awk 'NR==2 {print $2}'))"

port=$(free_port)
url=http://127.0.0.1:$port
data=$tmp/data
list=/apis/kubeflow.org/v1/namespaces/default/pytorchjobs
start_server() {
    build/trainyard server --data-dir "$1" --listen "127.0.0.1:$port" --gpus 0 \
        >>"$tmp/server.log" 2>&1 &
    server=$!
    pids+=($server)
    wait_up "$url"
}
stop_server() {
    kill "$server"
    wait "$server" || true
}

# --- an empty server first: the baseline for RSS and restart
start_server "$tmp/empty"
rss_empty=$(rss_mib "$server")
stop_server
restart_empty=$($PY $CLIENT restart "$url" 5 build/trainyard server --data-dir "$tmp/empty" \
    --listen "127.0.0.1:$port" --gpus 0)

# --- 10,000 objects
start_server "$data"
$PY $CLIENT load "$url" "$N"
sleep 1  # let the controllers' status writes settle
rss_loaded=$(rss_mib "$server")
curl -sf "$url$list" -o "$tmp/list.json"
json_bytes=$(stat -c %s "$tmp/list.json")
rm -f "$tmp/list.json" # 24 MB this script wrote: see the sync before the watch latency
db_bytes=$(du -sb "$data"/store.db* | awk '{s += $1} END {printf "%.1f", s / 1048576}')
stop_server

echo
echo "== store: $N PyTorchJobs, list JSON $(( json_bytes / 1024 )) KiB, SQLite files $db_bytes MiB"
restart_full=$($PY $CLIENT restart "$url" 5 build/trainyard server --data-dir "$data" \
    --listen "127.0.0.1:$port" --gpus 0)
echo "restart with recovery, $N objects:  $restart_full   [target < 1 s]"
echo "  baseline, empty data dir:          $restart_empty"

start_server "$data"
rss_restarted=$(rss_mib "$server")
echo "server RSS: $rss_loaded MiB after loading, $rss_restarted MiB after a restart   [target < 64 MB]"
echo "  baseline: empty server $rss_empty MiB; the objects' JSON is $(awk -v b="$json_bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB"

kc=(--kubeconfig "$data/kubeconfig")
n_rows=$($KUBECTL "${kc[@]}" get pytorchjobs --no-headers | wc -l)
t_get=$(time_ms 5 $KUBECTL "${kc[@]}" get pytorchjobs)
# kubectl fetches 500 rows a request (--chunk-size) through client-go's rate limiter: its
# requests and its waits, from its own log
$KUBECTL "${kc[@]}" get pytorchjobs -v=6 2>"$tmp/kubectl.log" >/dev/null
n_req=$(grep -c 'round_trippers.go.*GET' "$tmp/kubectl.log" || true)
t_wait=$({ grep -o 'Waited for [0-9.]*ms' "$tmp/kubectl.log" || true; } |
    awk '{s += $3 + 0} END {printf "%.0f", s}')
t_one=$(time_ms 5 $KUBECTL "${kc[@]}" get pytorchjobs --chunk-size=0)
t_raw=$(time_ms 5 $KUBECTL "${kc[@]}" get --raw "$list")
t_curl=$(time_ms 5 curl -sf "$url$list")
t_tbl=$(time_ms 5 curl -sf -H 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io' "$url$list")
t_ver=$(time_ms 5 $KUBECTL "${kc[@]}" get --raw /version)
echo "kubectl get pytorchjobs ($n_rows rows): median $t_get ms   [target < 1 s]"
echo "  of which kubectl's client-side throttling: ${t_wait:-0} ms over its $n_req requests"
echo "  kubectl get pytorchjobs --chunk-size=0 (one request): $t_one ms"
echo "  baseline: kubectl get --raw of the list $t_raw ms; curl of the list $t_curl ms, of its Table $t_tbl ms; kubectl get --raw /version $t_ver ms"
# kubectl describe lists the job's Events with a fieldSelector over every stored Event (the
# job controller records two per job here): no target, a figure to keep in view
evs=/api/v1/namespaces/default/events
n_events=$(curl -sf "$url$evs?limit=1" | $PY -c 'import json, sys; print(json.load(sys.stdin)["metadata"].get("remainingItemCount", 0) + 1)')
t_desc=$(time_ms 5 $KUBECTL "${kc[@]}" describe pytorchjob bench-00007)
t_fsel=$(time_ms 5 curl -sf "$url$evs?fieldSelector=involvedObject.name%3Dbench-00007,involvedObject.namespace%3Ddefault")
t_getyaml=$(time_ms 5 $KUBECTL "${kc[@]}" get pytorchjob bench-00007 -o yaml)
echo "kubectl describe pytorchjob, $n_events Events stored: median $t_desc ms"
echo "  of which its Events' LIST by fieldSelector (curl): $t_fsel ms"
echo "  baseline: kubectl get pytorchjob -o yaml of the same job $t_getyaml ms"

# --- throughput, beside nginx serving files of the same bytes
one=bench-00007
curl -sf "$url$list/$one" -o "$tmp/www/one.json" --create-dirs
curl -sf "$url$list?labelSelector=shard%3Ds7" -o "$tmp/www/sel.json"
sel_items=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$tmp/www/sel.json")
nport=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<CONF
user root root;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    default_type application/json;
    server { listen 127.0.0.1:$nport; root $tmp/www; }
}
CONF
"$NGINX" -e "$tmp/nginx/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
wait_up_nginx() {
    local i
    for i in $(seq 1 500); do curl -sf -o /dev/null "$1" && return 0; sleep 0.01; done
    echo "nginx did not answer" >&2; return 1
}
wait_up_nginx "http://127.0.0.1:$nport/one.json"

echo
echo "== wrk: 2 threads, 32 keep-alive connections, ${D} s each; server and nginx: one worker"
r_get=$(wrk_rate "$url$list/$one")
r_nget=$(wrk_rate "http://127.0.0.1:$nport/one.json")
echo "GET one object ($(stat -c %s "$tmp/www/one.json") bytes): $r_get req/s   [target >= 20000 and >= 1/2 nginx]"
echo "  baseline: nginx, file of the same bytes: $r_nget req/s (ratio $(awk -v a="$r_get" -v b="$r_nget" 'BEGIN {printf "%.2f", a / b}'))"
r_sel=$(wrk_rate "$url$list?labelSelector=shard%3Ds7")
r_nsel=$(wrk_rate "http://127.0.0.1:$nport/sel.json")
echo "LIST labelSelector=shard=s7 ($sel_items of $N objects, $(( $(stat -c %s "$tmp/www/sel.json") / 1024 )) KiB): $r_sel req/s   [target >= 500]"
echo "  baseline: nginx, file of the same bytes: $r_nsel req/s"

echo
echo "== watch latency"
# What this script wrote to the same file system (the list, nginx's files, logs) is flushed
# first: ext4 would write it back in the journal commit of the server's next fsync (an
# ordered-mode journal), and the first create measured would wait ~40 ms for it.
sync
# The probe is C (bench/lib/watch_probe.c): a watch on one connection, creates on another,
# nothing between the two timestamps but its write and its reads. Python's http.client and
# json add 0.3-0.9 ms of their own; its figures follow as a second opinion.
cc -O2 -o "$tmp/watch_probe" bench/lib/watch_probe.c
$PY $CLIENT body jobs >"$tmp/job.json"
$PY $CLIENT body events >"$tmp/event.json"
events=/api/v1/namespaces/default/events
probe() { # PATH BODY GAP_MS: from the current resourceVersion of PATH
    local rv
    rv=$(curl -sf "$url$1?limit=1" | $PY -c 'import json, sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
    "$tmp/watch_probe" "$port" "$1" "$rv" "$2" "$W" "$3"
}
# Back to back, a create can wait behind the job controller's work for the previous one
# (status, events, their commit); 20 ms apart it does not.
echo "create -> watch event, $W creates one by one, back to back: $(probe $list "$tmp/job.json" 0)   [target p99 < 5 ms]"
echo "create -> watch event, $W creates one by one, 20 ms apart: $(probe $list "$tmp/job.json" 20)   [target p99 < 5 ms]"
$PY $CLIENT fsync "$data" "$W" | sed 's/^/  baseline: /'
# the disk (and the machine) answer later after an idle gap: the baseline of the second mode
$PY $CLIENT fsync "$data" "$W" 20 | sed 's/^/  baseline: /'
# the same probe with small Events (no controller, little validation): what the disk, the
# wake-ups of an idle machine and the client cost, whatever the server does for a job
echo "  baseline: the same with $W small Event creates, back to back: $(probe $events "$tmp/event.json" 0)"
echo "  baseline: the same with $W small Event creates, 20 ms apart: $(probe $events "$tmp/event.json" 20)"
echo "  Python client (http.client), for comparison:"
$PY $CLIENT watchlat "$url" "$W" | sed 's/^/    /'
$PY $CLIENT watchlat "$url" "$W" 20 | sed 's/^/    /'
echo "server RSS at the end: $(rss_mib "$server") MiB"
