#!/usr/bin/env bash
# What probes cost: N pods, each a python3 http.server, run twice under `trainyard server`
# for the same time: without probes (the baseline), then each with an httpGet readiness probe
# and a tcpSocket liveness probe at periodSeconds 1 (and an exec startup probe, which runs
# until it first passes). Prints the CPU time the pods' supervisors (the shims, which run the
# probes) and the server used in each, and the cost per check.
#   bench/probes.sh [pods] [seconds]     (default 20 pods, 20 s)
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/trainyard
N=${1:-20}
SECS=${2:-20}
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\""
/usr/bin/python3 - "$N" "$SECS" <<'PY'
import json, os, random, signal, subprocess, sys, tempfile, time
sys.path.insert(0, "tests/e2e")
from server_fixture import Server, kill_pods_of

n, secs = int(sys.argv[1]), float(sys.argv[2])
tick = os.sysconf("SC_CLK_TCK")

def cpu_of(pids):
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime
        except OSError:
            pass
    return total / tick

def shims(data):
    needle = (os.path.join(data, "node", "pods") + "/").encode()
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if b"\0shim\0" in cmd and needle in cmd:
                out.append(int(pid))
    return out

def run(with_probes):
    data = tempfile.mkdtemp(prefix="ty-bench-probes-")
    s = Server(os.path.join(data, "d"), ["--no-pod-network"]).start()
    base = random.randrange(20000, 30000)
    items = []
    for i in range(n):
        c = {"name": "web", "image": "busybox",
             "command": ["/usr/bin/python3", "-m", "http.server", str(base + i), "--bind",
                         "$(POD_IP)"]}
        if with_probes:
            c["readinessProbe"] = {"httpGet": {"path": "/", "port": base + i}, "periodSeconds": 1}
            c["livenessProbe"] = {"tcpSocket": {"port": base + i}, "periodSeconds": 1}
            c["startupProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 1}
        items.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"web-{i}"},
                      "spec": {"terminationGracePeriodSeconds": 1, "containers": [c]}})
    s.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                     "items": items}))
    deadline = time.time() + 120
    while time.time() < deadline:
        pods = s.json("get", "pods")["items"]
        ready = sum(1 for p in pods for c in p.get("status", {}).get("containerStatuses", [])
                    if c.get("ready"))
        if ready == n:
            break
        time.sleep(0.5)
    else:
        sys.exit(f"pods not ready: {ready}/{n}")
    time.sleep(2)
    sh = shims(s.data_dir)
    c0, s0 = cpu_of(sh), cpu_of([s.proc.pid])
    time.sleep(secs)
    c1, s1 = cpu_of(sh), cpu_of([s.proc.pid])
    s.kubectl("delete", "pods", "--all", "--wait=true", "--grace-period=1", timeout=120)
    s.stop()
    kill_pods_of(s.data_dir)
    return c1 - c0, s1 - s0

base_shim, base_srv = run(False)
probe_shim, probe_srv = run(True)
checks = n * 2 * secs  # readiness + liveness every second (startup ran once)
print(f"{n} pods, {secs:.0f} s")
print(f"baseline (no probes):            shims {base_shim*1000:7.0f} ms CPU   server {base_srv*1000:6.0f} ms CPU")
print(f"httpGet + tcpSocket every 1 s:   shims {probe_shim*1000:7.0f} ms CPU   server {probe_srv*1000:6.0f} ms CPU")
extra = max(probe_shim - base_shim, 0)
print(f"probe cost: {extra * 1e6 / checks:.0f} us CPU per check ({checks:.0f} checks), "
      f"{extra / secs * 100:.2f}% of a core for {n} pods; server: {(probe_srv - base_srv)*1000:+.0f} ms")
PY
