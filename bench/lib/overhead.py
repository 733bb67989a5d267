"""The measurements behind bench/overhead.sh; see there."""
import json
import os
import statistics
import subprocess
import tempfile
import time

TRAINYARD = os.path.abspath("build/trainyard")


def job(name, replicas, command):
    specs = {"Master": {"replicas": 1, "restartPolicy": "Never",
                        "template": {"spec": {"containers": [
                            {"name": "pytorch", "image": "x", "command": command}]}}}}
    if replicas > 1:
        specs["Worker"] = json.loads(json.dumps(specs["Master"]))
        specs["Worker"]["replicas"] = replicas - 1
    return json.dumps({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                       "metadata": {"name": name}, "spec": {"pytorchReplicaSpecs": specs}})


def exec_time_ns(log_dir):
    """The `date +%s%N` the container printed, from its CRI log."""
    for root, _, files in os.walk(log_dir):
        for f in files:
            if f.endswith(".log"):
                line = open(os.path.join(root, f)).read().split("\n")[0]
                return int(line.split(" ", 3)[3])
    raise RuntimeError("no log written")


def start_to_exec(tmp, runs=20):
    path = os.path.join(tmp, "one.json")
    open(path, "w").write(job("one", 1, ["/bin/date", "+%s%N"]))
    ours, base = [], []
    for i in range(runs):
        state = os.path.join(tmp, f"state-{i}")
        t0 = time.time_ns()
        subprocess.run([TRAINYARD, "run", "--state-dir", state, path], check=True,
                       stdout=subprocess.DEVNULL)
        ours.append(exec_time_ns(state) - t0)
        t0 = time.time_ns()
        out = subprocess.run(["/bin/date", "+%s%N"], check=True, capture_output=True, text=True)
        base.append(int(out.stdout) - t0)
    o, b = statistics.median(ours) / 1e6, statistics.median(base) / 1e6
    print(f"start to first exec: trainyard {o:.2f} ms (p90 {sorted(ours)[int(runs*.9)]/1e6:.2f}),"
          f" direct exec {b:.2f} ms, ratio {o/b:.1f}x, overhead {o-b:.2f} ms (target < 20 ms)")


def hundred_true(tmp, runs=5):
    path = os.path.join(tmp, "hundred.json")
    open(path, "w").write(job("hundred", 100, ["true"]))
    ours, base = [], []
    for i in range(runs):
        t0 = time.monotonic()
        subprocess.run([TRAINYARD, "run", "--state-dir", os.path.join(tmp, f"h-{i}"), path],
                       check=True, stdout=subprocess.DEVNULL)
        ours.append(time.monotonic() - t0)
        t0 = time.monotonic()
        procs = [subprocess.Popen(["true"]) for _ in range(100)]
        for p in procs:
            p.wait()
        base.append(time.monotonic() - t0)
    o, b = statistics.median(ours), statistics.median(base)
    print(f"100-replica job of true: trainyard {o*1e3:.0f} ms, 100 direct spawns {b*1e3:.0f} ms,"
          f" ratio {o/b:.1f}x (target < 1000 ms)")


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_during_example(tmp):
    # Its checkpoints go to the run's own TRAINYARD_JOB_DIR, under the state dir.
    path = "examples/fashion-mnist/pytorchjob.yaml"
    p = subprocess.Popen([TRAINYARD, "run", "--state-dir", os.path.join(tmp, "fm"), path],
                         stdout=subprocess.DEVNULL)
    ours = rank = shims = 0
    while p.poll() is None:
        ours = max(ours, rss_kib(p.pid))
        shim_now = 0
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read()
                except OSError:
                    continue
                if cmd.startswith(b"build/examples/fashion-mnist"):
                    rank = max(rank, rss_kib(int(pid)))
                elif cmd.startswith(TRAINYARD.encode() + b"\0shim"):
                    shim_now += rss_kib(int(pid))
        shims = max(shims, shim_now)
        time.sleep(0.05)
    if p.returncode != 0:
        raise RuntimeError("the example failed")
    print(f"RSS while the example runs: trainyard {ours/1024:.1f} MiB, one training rank "
          f"{rank/1024:.1f} MiB, ratio {ours/max(rank,1):.2f} (target < 10 MB); the 4 pods'"
          f" supervisors (2 processes each) {shims/1024:.1f} MiB together")


if __name__ == "__main__":  # bench/lib/podstart.py imports the helpers above
    with tempfile.TemporaryDirectory() as tmp:
        start_to_exec(tmp)
        hundred_true(tmp)
        rss_during_example(tmp)
