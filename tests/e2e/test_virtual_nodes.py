"""Virtual nodes (--nodes, --nodes-file): many declared nodes on one machine, pods still real
processes here, each seeing the GPUs of its own node; gangs placed across the nodes."""
import json
import pytest

from conftest import kill_all, processes_with, wait_until
from jobs import pytorchjob
from server_fixture import Server


def test_gang_spreads_over_four_nodes_each_seeing_its_gpus(run_trainyard, manifest, marker,
                                                            tmp_path):
    out = tmp_path / "seen"
    out.mkdir()
    cmd = f"echo $CUDA_VISIBLE_DEVICES > {out}/$POD_NAME; echo $NODE > {out}/$POD_NAME.node"
    job = json.loads(pytorchjob("wide", marker, worker_cmd=cmd, workers=4, restart="Never",
                                resources={"limits": {"nvidia.com/gpu": 2}}))
    c = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    c["env"].append({"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    path = manifest(json.dumps(job))
    r = run_trainyard("-o", "json", "--nodes", "4x{cpu:4,memory:8Gi,nvidia.com/gpu:2}", path)
    assert r.rc == 0, r
    devices = {f.name: f.read_text().strip() for f in out.iterdir() if "." not in f.name}
    nodes = {f.name: f.read_text().strip() for f in out.iterdir() if f.name.endswith(".node")}
    assert sorted(devices) == [f"wide-worker-{i}" for i in range(4)], devices
    assert set(devices.values()) == {"0,1"}, devices
    assert sorted(nodes.values()) == ["node-1", "node-2", "node-3", "node-4"], nodes


def test_gang_too_big_for_the_cluster_fails_at_once(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("huge", marker, worker_cmd="true", workers=3,
                               resources={"limits": {"nvidia.com/gpu": 2}}))
    r = run_trainyard("-o", "json", "--nodes", "2x{cpu:4,memory:8Gi,nvidia.com/gpu:2}",
                      "--nodes", "{cpu:2,memory:1Gi}", path, timeout=30)
    assert r.rc == 1, r
    job = json.loads(r.out)["items"][0]
    cond = job["status"]["conditions"][-1]
    assert cond["type"] == "Failed", job
    assert "can never run here" in cond["message"], cond
    assert "0/3 nodes can take pod huge-worker-2 of the gang of 3" in cond["message"], cond
    assert "too few free nvidia.com/gpu (need 2)" in cond["message"], cond


def test_bad_nodes_flags_start_nothing(run_trainyard, manifest, marker, tmp_path):
    path = manifest(pytorchjob("never", marker, worker_cmd="true"))
    r = run_trainyard("--nodes", "4x{cpu:4,memory:lots}", path, timeout=30)
    assert r.rc == 2, r
    assert "--nodes '4x{cpu:4,memory:lots}': column 17: memory:" in r.err, r
    bad = tmp_path / "nodes.yaml"
    bad.write_text("metadata: {name: a}\nstatus:\n  capacity: {cpu: 1, memory: 1Zi}\n")
    r = run_trainyard("--nodes-file", str(bad), path, timeout=30)
    assert r.rc == 2, r
    assert f"{bad}:3:" in r.err and "status.capacity.memory" in r.err, r


NODES_FILE = """\
apiVersion: v1
kind: Node
metadata:
  name: a100-1
  labels:
    cloud.google.com/gke-accelerator: a100
status:
  capacity: {cpu: 8, memory: 16Gi, nvidia.com/gpu: 2}
---
apiVersion: v1
kind: Node
metadata:
  name: tainted-1
spec:
  taints:
  - {key: gpu, value: "true", effect: NoSchedule}
status:
  capacity: {cpu: 8, memory: 16Gi, nvidia.com/gpu: 4}
---
apiVersion: v1
kind: Node
metadata:
  name: plain-1
status:
  capacity: {cpu: 8, memory: 16Gi}
"""


@pytest.fixture
def vserver(tmp_path, marker):
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(NODES_FILE)
    s = Server(tmp_path / "data", ["--nodes-file", str(nodes)]).start()
    yield s
    s.stop(); s.reap()
    kill_all(marker)


def test_server_nodes_selector_and_taints(vserver, marker, tmp_path):
    table = vserver.kubectl("get", "nodes").stdout
    for name in ("a100-1", "tainted-1", "plain-1"):
        assert name in table, table
    assert "Ready" in table, table
    node = vserver.json("get", "node", "a100-1")
    assert node["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == "a100"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "a100-1"
    assert "gpu=true:NoSchedule" in vserver.kubectl("describe", "node", "tainted-1").stdout

    sel = json.loads(pytorchjob("sel", marker, master_cmd="sleep 30",
                                resources={"limits": {"nvidia.com/gpu": 1}}))
    sel["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["nodeSelector"] = {
        "cloud.google.com/gke-accelerator": "a100"}
    # Without a toleration a GPU pod can only go to a100-1 (tainted-1 refuses it); a
    # second one waits, naming both reasons.
    other = json.loads(pytorchjob("other", marker, master_cmd="sleep 30",
                                  resources={"limits": {"nvidia.com/gpu": 2}}))
    (tmp_path / "sel.json").write_text(json.dumps(sel))
    vserver.kubectl("apply", "-f", str(tmp_path / "sel.json"))
    assert wait_until(lambda: vserver.json("get", "pod", "sel-master-0")["spec"]
                      .get("nodeName") == "a100-1", 30)
    (tmp_path / "other.json").write_text(json.dumps(other))
    vserver.kubectl("apply", "-f", str(tmp_path / "other.json"))

    def waiting_message():
        pod = vserver.json("get", "pod", "other-master-0")
        conds = [c for c in pod.get("status", {}).get("conditions", [])
                 if c["type"] == "PodScheduled"]
        return conds[0].get("message", "") if conds and conds[0]["status"] == "False" else ""

    assert wait_until(lambda: "0/3 nodes" in waiting_message(), 30)
    msg = waiting_message()
    assert "taint gpu=true:NoSchedule" in msg and "too few free nvidia.com/gpu" in msg, msg
    vserver.kubectl("delete", "pytorchjob", "sel", "other", "--wait=false")


def test_restart_with_fewer_nodes_deletes_the_rest_and_fails_their_pods(tmp_path, marker):
    data = tmp_path / "data"
    job = tmp_path / "job.json"
    job.write_text(pytorchjob("keep", marker, worker_cmd="sleep 60", workers=2, restart="Never",
                              resources={"requests": {"cpu": "2"}}))
    s = Server(data, ["--nodes", "2x{cpu:2,memory:1Gi}"]).start()
    try:
        s.kubectl("apply", "-f", str(job))

        def placed():
            pods = s.json("get", "pods")["items"]
            return {p["metadata"]["name"]: (p["spec"].get("nodeName"), p["status"].get("phase"))
                    for p in pods}
        assert wait_until(lambda: sorted(placed().values()) ==
                          [("node-1", "Running"), ("node-2", "Running")], 30), placed()
        on_two = [n for n, (node, _) in placed().items() if node == "node-2"][0]
    finally:
        s.stop()
    s = Server(data, ["--nodes", "{cpu:2,memory:1Gi}"]).start()
    try:
        names = [n["metadata"]["name"] for n in s.json("get", "nodes")["items"]]
        assert names == ["node-1"], names
        assert wait_until(lambda: s.json("get", "pod", on_two)["status"].get("phase") == "Failed",
                          30), s.json("get", "pod", on_two)
        # its processes were stopped; the pod on node-1 was adopted and still runs
        def running(pod):
            return set(processes_with(marker)) & set(processes_with(f"POD_NAME={pod}"))
        assert wait_until(lambda: not running(on_two), 15), running(on_two)
        on_one = "keep-worker-0" if on_two == "keep-worker-1" else "keep-worker-1"
        assert running(on_one)
        assert s.json("get", "pod", on_one)["status"]["phase"] == "Running"
        s.kubectl("delete", "pytorchjob", "keep", "--wait=false")
    finally:
        s.stop(); s.reap()
        kill_all(marker)
