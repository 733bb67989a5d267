#!/usr/bin/env bash
# The Kubernetes client's reflector (src/kube) listing and watching N objects (default 5,000
# Events, about the size of the issue's 5,000 pods in count) served by `trainyard server` on
# loopback: time from start to synced (a paged LIST, 500 a page, QPS 5 / burst 10 as client-go),
# the driver's RSS then, and the time until M more creates (default 1,000) were all seen
# through the watch. Baseline beside it: kubectl get of the same list (one request, no limit),
# and the same driver's RSS with no objects. Every process started here is stopped on exit.
#   N=5000 M=1000 bench/kube_reflector.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
M=${M:-1000}
make -s build/trainyard build/tests/kube_driver
tmp=$(mktemp -d /var/tmp/trainyard-kube-bench.XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
build/trainyard server --data-dir "$tmp/srv" --listen 127.0.0.1:0 >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -f "$tmp/srv/kubeconfig" ] && break; sleep 0.1; done
/usr/bin/python3 - "$tmp/srv/kubeconfig" "$N" "$M" <<'PY'
import http.client, json, os, re, subprocess, sys, threading, time
kc, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
url = re.search(r"server: (\S+)", open(kc).read()).group(1)
host, port = url.split("//")[1].split(":")
conn = http.client.HTTPConnection(host, int(port))

def post(path, obj):
    conn.request("POST", path, json.dumps(obj), {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    assert r.status in (201, 409), r.status

def event(i):
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"ev-{i}"},
            "involvedObject": {"kind": "Pod", "name": f"pod-{i}", "namespace": "bench"},
            "reason": "Bench", "message": f"event {i} of the reflector benchmark", "type": "Normal"}

post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "empty"}})
for i in range(n):
    post("/api/v1/namespaces/bench/events", event(i))

def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def watch(ns):
    t0 = time.monotonic()
    p = subprocess.Popen(["build/tests/kube_driver", "--kubeconfig", kc, "watch", ns],
                         stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if '"synced"' in line:
            return p, time.monotonic() - t0

p, synced_s = watch("bench")
rss = rss_kb(p.pid)
seen = [0]
done = threading.Event()
def read():
    for line in p.stdout:
        if '"ADDED"' in line:
            seen[0] += 1
            if seen[0] == m:
                done.set()
threading.Thread(target=read, daemon=True).start()
t0 = time.monotonic()
for i in range(n, n + m):
    post("/api/v1/namespaces/bench/events", event(i))
assert done.wait(120), seen[0]
watch_s = time.monotonic() - t0
p.terminate(); p.wait()
e, _ = watch("empty")
empty_rss = rss_kb(e.pid)
e.terminate(); e.wait()
t0 = time.monotonic()
subprocess.run(["kubectl", "--kubeconfig", kc, "get", "events", "-n", "bench", "-o", "json",
                "--chunk-size=0"], check=True, capture_output=True)
kubectl_s = time.monotonic() - t0
print(f"objects: {n} Events listed, then {m} created and watched")
print(f"reflector: synced in {synced_s:.2f} s (paged LIST at 5 QPS / burst 10); baseline: kubectl get of the same list {kubectl_s:.2f} s")
print(f"reflector: driver RSS at sync {rss / 1024:.1f} MiB; baseline: the same driver with no objects {empty_rss / 1024:.1f} MiB")
print(f"watch: {m} creates all seen {watch_s:.2f} s after the first was sent (creates back to back over one connection)")
PY
