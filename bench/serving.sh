#!/usr/bin/env bash
# The serving gateway's cost (docs/serving.md): a Fashion-MNIST C model server behind
# `trainyard server`'s gateway.
#  1. Added latency: one client with keep-alive, paced at 1,000 requests/s, sends the example's
#     infer request (one image) to the replica directly and through the gateway (Host
#     routing); p50 and p99 of each and the p50 difference (target: < 0.3 ms).
#  2. Cold start: an InferenceService at zero replicas; the time from the first request to
#     its answer, 3 times (target: < 300 ms with the C server).
#  3. Autoscaling: a step from 0 to 200 concurrent clients (CLIENTS=...): the time until the
#     KPA's replica count is ready, failed requests (target: none), and the time back to zero.
#   bench/serving.sh [requests per measurement, default 5000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
make -s build/trainyard build/examples/fashion-mnist build/examples/fashion-mnist-serve
tmp=$(mktemp -d)
cleanup() {
    [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
    pkill -f -- "--model-dir /mnt/models --name bench-" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\""
build/examples/fashion-mnist --epochs 1 --hidden 128 --seed 1 --log-every 0 \
    --data-dir /usr/share/datasets/fashion-mnist --checkpoint-dir "$tmp/model" >/dev/null
gw=$((28000 + RANDOM % 2000))
TRAINYARD_SCALE_TO_ZERO_GRACE_MS=200 build/trainyard server --data-dir "$tmp/data" \
    --listen 127.0.0.1:0 --no-pod-network --serving-listen "127.0.0.1:$gw" 2>"$tmp/server.log" &
spid=$!
for _ in $(seq 100); do [ -f "$tmp/data/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG=$tmp/data/kubeconfig
for _ in $(seq 100); do kubectl get --raw /version >/dev/null 2>&1 && break; sleep 0.1; done
kubectl apply -f examples/fashion-mnist/servingruntime.yaml >/dev/null
isvc() { # name minReplicas [annotations]
    cat <<EOF | kubectl apply -f - >/dev/null
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: $1, annotations: {autoscaling.knative.dev/window: "6s"}}
spec:
  predictor:
    minReplicas: $2
    model: {modelFormat: {name: fashion-mnist}, storageUri: "file://$tmp/model"}
EOF
}
isvc bench-warm 1
kubectl wait --for=condition=Ready isvc/bench-warm --timeout=60s >/dev/null
ip=$(kubectl get pods -l serving.kserve.io/inferenceservice=bench-warm -o jsonpath='{.items[0].status.podIP}')
/usr/bin/python3 - "$N" "$ip" "$gw" <<'PY'
import http.client, statistics, sys, time
n, ip, gw = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = open("examples/fashion-mnist/infer-request.json", "rb").read()
def run(host, port, hdr):
    c = http.client.HTTPConnection(host, port)
    lat, t_next = [], time.perf_counter()
    for i in range(n + 200):
        now = time.perf_counter()
        if now < t_next:
            time.sleep(t_next - now)
        t_next += 0.001  # 1,000 requests/s
        t0 = time.perf_counter()
        c.request("POST", "/v2/models/bench-warm/infer", body, hdr)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
        if i >= 200:  # warm-up
            lat.append((time.perf_counter() - t0) * 1e3)
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], n / (sum(lat) / 1e3)
d50, d99, _ = run(ip, 8080, {})
g50, g99, _ = run("127.0.0.1", gw, {"Host": "bench-warm.default.example.com"})
print(f"direct to the replica:  p50={d50:.3f} ms  p99={d99:.3f} ms  ({n} requests at 1000/s)")
print(f"through the gateway:    p50={g50:.3f} ms  p99={g99:.3f} ms")
print(f"added p50: {g50 - d50:.3f} ms (target < 0.3 ms; KServe with Knative: +2 to 3 ms)")
PY
isvc bench-cold 0
kubectl wait --for=condition=Ready isvc/bench-cold --timeout=60s >/dev/null
for i in 1 2 3; do
    for _ in $(seq 300); do
        [ -z "$(kubectl get pods -l serving.kserve.io/inferenceservice=bench-cold -o name)" ] && break
        sleep 0.1
    done
    t=$(curl -s -o /dev/null -w '%{time_total}' -H 'Host: bench-cold.default.example.com' \
        -d @examples/fashion-mnist/infer-request.json "http://127.0.0.1:$gw/v2/models/bench-cold/infer")
    echo "cold start $i: $(/usr/bin/python3 -c "print(f'{$t * 1000:.0f}')") ms from zero replicas to the answer (target < 300 ms; Knative: ~2 s and more)"
done
# 3. Autoscaling: a step from 0 to $CLIENTS concurrent clients (each with one request
#    outstanding at all times) on an InferenceService at one replica; the KPA's count is
#    ceil(clients / (100 x 0.7)); when the replicas reach it, how many requests failed, and
#    the time back to zero after the clients stop (the 6 s stable window and the grace).
CLIENTS=${CLIENTS:-200}
isvc bench-step 0
kubectl wait --for=condition=Ready isvc/bench-step --timeout=60s >/dev/null
/usr/bin/python3 - "$CLIENTS" "$gw" "$KUBECONFIG" <<'PY'
import http.client, json, math, subprocess, sys, threading, time
clients, gw, kc = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = open("examples/fashion-mnist/infer-request.json", "rb").read()
stop, ok, failed = threading.Event(), [0], [0]
def client():
    c = None
    while not stop.is_set():
        try:
            c = c or http.client.HTTPConnection("127.0.0.1", gw, timeout=60)
            c.request("POST", "/v2/models/bench-step/infer", body,
                      {"Host": "bench-step.default.example.com"})
            r = c.getresponse(); r.read()
            (ok if r.status == 200 else failed)[0] += 1
        except Exception:
            failed[0] += 1
            c = None
def ready():
    out = subprocess.run(["kubectl", "--kubeconfig", kc, "get", "pods", "-l",
                          "serving.kserve.io/inferenceservice=bench-step", "-o", "json"],
                         capture_output=True, text=True).stdout
    pods = json.loads(out)["items"]
    return sum(any(c["type"] == "Ready" and c["status"] == "True"
                   for c in p.get("status", {}).get("conditions", [])) for p in pods), len(pods)
want = math.ceil(clients / 70)
t0 = time.monotonic()
ts = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
for t in ts:
    t.start()
reached = None
while time.monotonic() - t0 < 60:
    r, _ = ready()
    if r >= want:
        reached = time.monotonic() - t0
        break
    time.sleep(0.2)
time.sleep(2)
stop.set()
for t in ts:
    t.join()
print(f"step 0 -> {clients} clients: {want} replicas (the KPA's ceil({clients}/70)) ready after "
      + (f"{reached:.1f} s" if reached else "more than 60 s")
      + f" (panic window 6 s); {ok[0]} requests answered, {failed[0]} failed")
t1 = time.monotonic()
while time.monotonic() - t1 < 120 and ready()[1] > 0:
    time.sleep(0.5)
print(f"back to zero replicas {time.monotonic() - t1:.1f} s after the clients stopped "
      "(stable window 6 s + scale-to-zero grace)")
PY
