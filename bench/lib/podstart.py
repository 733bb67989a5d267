"""The measurements behind bench/podstart.sh; see there."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from overhead import TRAINYARD, exec_time_ns, job  # noqa: E402

PY = "/usr/bin/python3"
MODES = (("own netns", []), ("loopback", ["--no-pod-network"]))


def start_to_exec(tmp, runs):
    """`trainyard run` of one pod running `date +%s%N`: from the run's start to the exec,
    alternating the two modes so that both see the same load."""
    path = os.path.join(tmp, "one.json")
    open(path, "w").write(job("one", 1, ["/bin/date", "+%s%N"]))
    times = {m: [] for m, _ in MODES}
    for i in range(runs):
        for mode, args in MODES:
            state = os.path.join(tmp, f"s-{mode[0]}-{i}")
            t0 = time.time_ns()
            subprocess.run([TRAINYARD, "run", "--state-dir", state, *args, path], check=True,
                           stdout=subprocess.DEVNULL)
            times[mode].append((exec_time_ns(state) - t0) / 1e6)
    for mode, _ in MODES:
        t = sorted(times[mode])
        print(f"start to exec, {mode:9}: median {statistics.median(t):6.2f} ms, "
              f"p90 {t[int(len(t) * .9)]:6.2f} ms ({runs} runs)")
    n, b = statistics.median(times["own netns"]), statistics.median(times["loopback"])
    print(f"  own netns costs {n - b:+.2f} ms ({n / b:.2f}x); target < 50 ms with its own netns")


def hundred(tmp, runs):
    """A 100-replica job of `true`, whole run: 100 namespaces and veths made and removed."""
    path = os.path.join(tmp, "hundred.json")
    open(path, "w").write(job("hundred", 100, ["true"]))
    times = {m: [] for m, _ in MODES}
    for i in range(runs):
        for mode, args in MODES:
            t0 = time.monotonic()
            subprocess.run([TRAINYARD, "run", "--state-dir", os.path.join(tmp, f"h-{mode[0]}-{i}"),
                            *args, path], check=True, stdout=subprocess.DEVNULL)
            times[mode].append((time.monotonic() - t0) * 1e3)
    for mode, _ in MODES:
        print(f"100-replica job of true, {mode:9}: median {statistics.median(times[mode]):.0f} ms "
              f"({runs} runs)")


RECV = """
import os, socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7100)); s.listen(1)
c, _ = s.accept()
buf = bytearray(1 << 20); n = 0; t0 = None
while True:
    k = c.recv_into(buf)
    if not k:
        break
    if t0 is None:
        t0 = time.monotonic()
    n += k
dt = time.monotonic() - t0
print(f"RESULT {n / dt / 1e9:.3f}", flush=True)
"""

SEND = """
import os, socket, time
total = int(os.environ["BYTES"])
while True:
    try:
        c = socket.create_connection((os.environ["MASTER_ADDR"], 7100)); break
    except OSError:
        time.sleep(0.02)
chunk = b"x" * (1 << 20); sent = 0
while sent < total:
    c.sendall(chunk); sent += len(chunk)
c.close()
"""


def throughput(tmp, runs, nbytes):
    """A TCP stream from one pod to another: through the bridge (each pod in its own namespace)
    and over loopback in one namespace (--no-pod-network), the same programs."""
    def spec(cmd):
        return {"replicas": 1, "restartPolicy": "Never", "template": {"spec": {"containers": [
            {"name": "pytorch", "image": "x", "command": [PY, "-c", cmd],
             "env": [{"name": "BYTES", "value": str(nbytes)}]}]}}}
    path = os.path.join(tmp, "tput.json")
    open(path, "w").write(json.dumps({
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "tput"},
        "spec": {"pytorchReplicaSpecs": {"Master": spec(RECV), "Worker": spec(SEND)}}}))
    rates = {m: [] for m, _ in MODES}
    for i in range(runs):
        for mode, args in MODES:
            out = subprocess.run([TRAINYARD, "run", "--follow", "--state-dir",
                                  os.path.join(tmp, f"t-{mode[0]}-{i}"), *args, path],
                                 check=True, capture_output=True, text=True).stdout
            line = [ln for ln in out.splitlines() if "RESULT" in ln][0]
            rates[mode].append(float(line.split("RESULT")[1]))
    for mode, _ in MODES:
        print(f"pod-to-pod TCP, {mode:9}: median {statistics.median(rates[mode]):.2f} GB/s "
              f"({runs} runs of {nbytes >> 20} MiB)")
    n, b = statistics.median(rates["own netns"]), statistics.median(rates["loopback"])
    print(f"  bridge / loopback = {n / b:.2f}x (target >= 0.8x)")


def main():
    runs = int(os.environ.get("RUNS", "20"))
    with tempfile.TemporaryDirectory(prefix="trainyard-podstart-") as tmp:
        start_to_exec(tmp, runs)
        hundred(tmp, int(os.environ.get("HUNDRED_RUNS", "3")))
        throughput(tmp, int(os.environ.get("TPUT_RUNS", "5")),
                   int(os.environ.get("BYTES", str(512 << 20))))


if __name__ == "__main__":
    main()
