"""The measurements behind bench/images.sh; see there."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "e2e"))
import images as I  # noqa: E402

TRAINYARD = os.path.abspath("build/trainyard")
NOW = os.path.abspath("build/bench/now")


def job(image, command):
    return json.dumps({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                       "metadata": {"name": "one"}, "spec": {"pytorchReplicaSpecs": {"Master": {
                           "replicas": 1, "restartPolicy": "Never", "template": {"spec": {
                               "containers": [{"name": "pytorch", "image": image,
                                               "command": command}]}}}}}})


def exec_ns(state):
    for root, _, files in os.walk(os.path.join(state, "pods")):
        for f in files:
            if f.endswith(".log"):
                return int(open(os.path.join(root, f)).read().split("\n")[0].split(" ", 3)[3])
    raise RuntimeError(f"no log in {state}")


def main(runs=20):
    tmp = tempfile.mkdtemp(prefix="ty-bench-images-")
    store = os.path.join(tmp, "store")
    with open(NOW, "rb") as f:
        now = f.read()
    layer = I.layer([("now", "file", now, 0o755, 0)])
    I.docker_archive(os.path.join(tmp, "now.tar"), ["bench/now:1"], [layer], I.config([layer]))
    subprocess.run([TRAINYARD, "image", "load", "--state-dir", store,
                    os.path.join(tmp, "now.tar")], check=True, stdout=subprocess.DEVNULL)
    in_image = os.path.join(tmp, "image.json")
    on_host = os.path.join(tmp, "host.json")
    open(in_image, "w").write(job("bench/now:1", ["/now"]))
    open(on_host, "w").write(job("bench/absent:1", [NOW]))
    ours, base = [], []
    for i in range(runs):
        for path, out in ((in_image, ours), (on_host, base)):
            state = os.path.join(tmp, f"state-{i}-{len(out)}-{os.path.basename(path)}")
            os.makedirs(state)
            os.symlink(os.path.join(store, "images"), os.path.join(state, "images"))
            t0 = time.time_ns()
            subprocess.run([TRAINYARD, "run", "--state-dir", state, path], check=True,
                           stdout=subprocess.DEVNULL)
            out.append(exec_ns(state) - t0)
    o, b = statistics.median(ours) / 1e6, statistics.median(base) / 1e6
    p90 = sorted(ours)[int(runs * .9)] / 1e6
    print(f"start to exec, overlay root filesystem via crun: {o:.2f} ms median (p90 {p90:.2f}); "
          f"host-run pod {b:.2f} ms; difference {o - b:.2f} ms (target < 50 ms)")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
