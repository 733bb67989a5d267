#!/usr/bin/env bash
# Cluster mode (issue 13) against a stand-in cluster (`trainyard server --no-controllers`, plain
# HTTP on loopback), two figures beside a baseline:
#  1. from `kubectl apply` of a PyTorchJob of G pods (default 64: 1 master, 63 workers) to
#     every pod bound through pods/binding by the cluster-mode operator (target < 1 s), seen
#     through a watch on the stand-in; with the client's rate limit off, at the default
#     (Kueue's 50 QPS / burst 100), and at client-go's 5 / 10. Baseline: the same job on one
#     `trainyard server` with its own controllers (no API between them).
#  2. the operator's RSS while it watches P pods (default 5,000) on N nodes (default 500),
#     made through the API and bound to nodes no kubelet of the stand-in runs (target < 30 MB;
#     the training operator's and Kueue's deployments each request 512 MiB). Baseline: the
#     same operator watching an empty cluster.
# Every process started here is stopped on exit.
#   G=64 P=5000 N=500 bench/cluster.sh      (SKIP_GANG=1: the RSS figure only)
set -euo pipefail
cd "$(dirname "$0")/.."
G=${G:-64}
P=${P:-5000}
N=${N:-500}
make -s build/trainyard
tmp=$(mktemp -d /var/tmp/trainyard-cluster-bench.XXXXXX)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
/usr/bin/python3 - "$tmp" "$G" "$P" "$N" <<'PY'
import http.client, json, os, re, signal, subprocess, sys, threading, time
tmp, G, P, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
TY = "build/trainyard"
procs = []

def end_all():
    """Stops what this script started: the servers and operators, then the stand-ins' pods
    (their supervisors, by pid, found by the data directory in their command line)."""
    for p in procs:
        if p.poll() is None:
            p.kill(); p.wait()
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and int(pid) != os.getpid() and \
                    tmp.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass

import atexit
atexit.register(end_all)

def server(name, *args):
    d = os.path.join(tmp, name)
    log = open(d + ".log", "w")
    p = subprocess.Popen([TY, "server", "--data-dir", d, "--listen", "127.0.0.1:0",
                          "--no-pod-network", *args], stdout=log, stderr=log)
    procs.append(p)
    kc = os.path.join(d, "kubeconfig")
    for _ in range(300):
        if os.path.exists(kc):
            break
        time.sleep(0.1)
    url = re.search(r"server: (\S+)", open(kc).read()).group(1)
    host, port = url.split("//")[1].split(":")
    return kc, host, int(port), p

def operator(kc, *args):
    log = open(os.path.join(tmp, f"operator-{len(procs)}.log"), "w")
    p = subprocess.Popen([TY, "server", "--kubeconfig", kc, "-v", *args], stdout=log,
                         stderr=subprocess.STDOUT)
    procs.append(p)
    return p, log.name

def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()

def wait_log(path, text, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if text in open(path).read():
            return True
        time.sleep(0.05)
    raise SystemExit(f"{path}: no '{text}'")

def rss_kb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

def job(name, pods):
    c = {"name": "pytorch", "image": "busybox", "command": ["sleep", "60"],
         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
    rs = {"Master": {"replicas": 1, "restartPolicy": "Never",
                     "template": {"spec": {"containers": [c]}}}}
    if pods > 1:
        rs["Worker"] = {"replicas": pods - 1, "restartPolicy": "Never",
                        "template": {"spec": {"containers": [c]}}}
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name},
            "spec": {"pytorchReplicaSpecs": rs}}

def bound_watch(host, port, n, ready):
    """Returns the time every one of n pods had a nodeName, from a watch of the pods."""
    out = {}
    def run():
        conn = http.client.HTTPConnection(host, port, timeout=120)
        conn.request("GET", "/api/v1/namespaces/default/pods?watch=1")
        r = conn.getresponse()
        ready.set()
        bound = set()
        while True:
            chunk = r.readline()
            if not chunk:
                return
            ev = json.loads(chunk)
            o = ev["object"]
            if o.get("spec", {}).get("nodeName"):
                bound.add(o["metadata"]["name"])
            if len(bound) >= n:
                out["t"] = time.monotonic()
                return
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out

def gang(kc, host, port, name):
    path = os.path.join(tmp, name + ".json")
    json.dump(job(name, G), open(path, "w"))
    ready = threading.Event()
    t, out = bound_watch(host, port, G, ready)
    ready.wait(10)
    t0 = time.monotonic()
    subprocess.run(["/usr/bin/kubectl", "--kubeconfig", kc, "apply", "-f", path], check=True,
                   capture_output=True)
    t.join(300)
    assert "t" in out, f"{name}: not every pod bound"
    subprocess.run(["/usr/bin/kubectl", "--kubeconfig", kc, "delete", "pytorchjob", name,
                    "--wait=false"], capture_output=True)
    # the next gang starts on an idle cluster: the pods of this one gone
    for _ in range(600):
        c = http.client.HTTPConnection(host, port)
        c.request("GET", "/api/v1/namespaces/default/pods")
        if not json.loads(c.getresponse().read())["items"]:
            break
        time.sleep(0.1)
    return out["t"] - t0

nodes = f"8x{{cpu:64,memory:256Gi}}"
def drop_lease(host, port):
    """Deletes the Lease a stopped operator held, so that the next need not wait for it to
    expire."""
    c = http.client.HTTPConnection(host, port)
    c.request("DELETE", "/apis/coordination.k8s.io/v1/namespaces/default/leases/"
              "trainyard-controller")
    c.getresponse().read()

if os.environ.get("SKIP_GANG"):
    G = 0
if G:
  print(f"1. kubectl apply to all {G} pods of a gang bound (8 nodes of 64 cpu), 2 shared cores")
  kc, host, port, local = server("local", "--nodes", nodes)
  base = [gang(kc, host, port, f"local-{i}") for i in range(3)]
  stop(local)
  print(f"   baseline, one trainyard server (controllers in process): "
        + ", ".join(f"{x:.2f}" for x in base) + " s")
  kc, host, port, standin = server("standin", "--no-controllers", "--nodes", nodes)
  for label, args in (("client rate limit off (--kube-qps 0)", ["--kube-qps", "0"]),
                      ("the default, Kueue's 50 QPS / burst 100", []),
                      ("client-go's 5 QPS / burst 10", ["--kube-qps", "5", "--kube-burst", "10"])):
      op, log = operator(kc, *args)
      wait_log(log, "leading and synced")
      slow = "5" in args
      xs = [gang(kc, host, port, f"g{len(procs)}-{i}") for i in range(1 if slow else 3)]
      stop(op)
      drop_lease(host, port)  # the next operator need not wait for it to expire
      print(f"   cluster mode, {label}: " + ", ".join(f"{x:.2f}" for x in xs) + " s")
  stop(standin)

print(f"2. operator RSS while watching {P} pods on {N} nodes")
kc, host, port, standin = server("big", "--no-controllers", "--nodes", "1x{cpu:4,memory:8Gi}")
conn = http.client.HTTPConnection(host, port)
def post(path, obj):
    conn.request("POST", path, json.dumps(obj), {"Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    assert r.status in (201, 409), (r.status, path)
def put(path, obj):
    conn.request("PUT", path, json.dumps(obj), {"Content-Type": "application/json"})
    r = conn.getresponse(); body = r.read()
    assert r.status == 200, (r.status, body[:200])
op, log = operator(kc, "--kube-qps", "0")
wait_log(log, "leading and synced")
time.sleep(1)
empty_rss = rss_kb(op.pid)
stop(op)
drop_lease(host, port)
for i in range(N):
    post("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                           "metadata": {"name": f"gpu-{i:03d}", "labels": {
                               "kubernetes.io/hostname": f"gpu-{i:03d}",
                               "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
                           "status": {"capacity": {"cpu": "96", "memory": "1Ti",
                                                   "nvidia.com/gpu": "8", "pods": "110"},
                                      "allocatable": {"cpu": "95", "memory": "1000Gi",
                                                      "nvidia.com/gpu": "8", "pods": "110"}}})
for i in range(P):
    node = f"gpu-{i % N:03d}"
    post("/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"train-{i // 10}-worker-{i % 10}", "labels": {
            "training.kubeflow.org/job-name": f"train-{i // 10}",
            "training.kubeflow.org/replica-type": "worker",
            "training.kubeflow.org/replica-index": str(i % 10)}},
        "spec": {"nodeName": node, "schedulerName": "trainyard", "containers": [{
            "name": "pytorch", "image": "registry.example.com/team/train:1.4.2",
            "command": ["torchrun", "--nnodes=10", "--nproc-per-node=8", "train.py"],
            "env": [{"name": "MASTER_ADDR", "value": f"train-{i // 10}-master-0"},
                    {"name": "MASTER_PORT", "value": "23456"}],
            "resources": {"requests": {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"},
                          "limits": {"nvidia.com/gpu": "1"}}}]}})
print(f"   made {N} nodes and {P} pods through the API")
op, log = operator(kc, "--kube-qps", "0")
t0 = time.monotonic()
wait_log(log, "every resource listed", 300)
synced = time.monotonic() - t0
wait_log(log, "leading and synced", 300)
time.sleep(5)  # the controllers' first passes over everything
rss, hwm = rss_kb(op.pid), rss_kb(op.pid, "VmHWM")
stop(op)
stop(standin)
print(f"   cluster mode: listed and synced in {synced:.2f} s; RSS {rss / 1024:.1f} MiB "
      f"(peak {hwm / 1024:.1f} MiB); target < 30 MB")
print(f"   baseline, the same operator watching an empty cluster: {empty_rss / 1024:.1f} MiB; "
      f"the training operator's and Kueue's deployments each request 512 MiB")
PY
