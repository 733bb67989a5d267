#!/usr/bin/env bash
# Cluster DNS (issue 17): A queries for Service names answered by `trainyard server
# --cluster-dns`, one at a time over UDP from a C probe (bench/lib/dns_probe.c), every query a
# different Service in turn:
#   p99 < 1 ms for a Service name at 1,000 Services    beside: the same server at 10 Services
# Everything on loopback; every process started here is stopped on exit.
# N=... queries per figure (default 20000), S=... Services (default 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}
S=${S:-1000}
PY=/usr/bin/python3
KUBECTL=/usr/bin/kubectl
make -s build/trainyard
tmp=$(mktemp -d /var/tmp/trainyard-dns-bench.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
cc -O2 -o "$tmp/dns_probe" bench/lib/dns_probe.c

echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
build/trainyard server --data-dir "$tmp/data" --listen 127.0.0.1:0 --gpus 0 \
    --cluster-dns 127.0.0.1:0 2> "$tmp/server.log" &
pid=$!
for _ in $(seq 1 500); do
    grep -q "cluster DNS on" "$tmp/server.log" 2>/dev/null && [ -f "$tmp/data/kubeconfig" ] && break
    sleep 0.02
done
addr=$(sed -n 's/.*cluster DNS on \([0-9.]*\):\([0-9]*\).*/\1 \2/p' "$tmp/server.log" | tail -1)
[ -n "$addr" ] || { cat "$tmp/server.log"; exit 1; }

# Services svc-<from>..svc-<to-1>, each with its own clusterIP, in one apply.
services() {
    $PY - "$1" "$2" <<'PYEOF'
import json, sys
a, b = int(sys.argv[1]), int(sys.argv[2])
items = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{i}"},
          "spec": {"clusterIP": f"10.96.{i // 250}.{i % 250 + 1}", "selector": {"app": f"a{i}"},
                   "ports": [{"name": "http", "port": 80}]}} for i in range(a, b)]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
PYEOF
}
names() { for ((i = 0; i < $1; i++)); do echo "svc-$i.default.svc.cluster.local"; done; }
probe() { "$tmp/dns_probe" $addr "$N" $(names "$1" | shuf); }

services 0 10 | $KUBECTL --kubeconfig "$tmp/data/kubeconfig" apply -f - >/dev/null
"$tmp/dns_probe" $addr 1000 $(names 10) >/dev/null # warm up
read -r b50 b99 bmax <<< "$(probe 10)"
services 10 "$S" | $KUBECTL --kubeconfig "$tmp/data/kubeconfig" apply -f - >/dev/null
read -r p50 p99 pmax <<< "$(probe "$S")"
printf '%-44s %8s %8s %8s\n' "A query, Service name (us, $N queries)" p50 p99 max
printf '%-44s %8s %8s %8s\n' "  at $S Services" "$p50" "$p99" "$pmax"
printf '%-44s %8s %8s %8s\n' "  baseline: the same server at 10 Services" "$b50" "$b99" "$bmax"
[ "$p99" -lt 1000 ] && echo "target p99 < 1 ms: met" || echo "target p99 < 1 ms: MISSED"
