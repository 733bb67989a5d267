"""metrics.k8s.io/v1beta1 from the node's own sampling (docs/serving.md, "Resource metrics"):
`kubectl top pods` and `kubectl top nodes` against `trainyard server`, the raw API, label
selectors, discovery and the Python client. TRAINYARD_METRICS_PERIOD_MS keeps it quick."""
import json
import re
import time

import pytest
from kubernetes import client, config

from conftest import wait_until
from server_fixture import Server

PY = "/usr/bin/python3"
# holds ~64 MiB and spins
BUSY = "x = bytearray(64 * 1024 * 1024)\nwhile True:\n    pass\n"


@pytest.fixture
def server(tmp_path, marker, monkeypatch):
    monkeypatch.setenv("TRAINYARD_METRICS_PERIOD_MS", "500")
    s = Server(tmp_path / "data", ["--no-pod-network"]).start()
    yield s
    s.stop()
    s.reap()


def pod(name, marker, script, labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox",
                                     "command": [PY, "-c", script],
                                     "env": [{"name": "TY_MARKER", "value": marker}]}]}}


def cpu_milli(text):
    return int(text[:-1]) if text.endswith("m") else int(text) * 1000


def mem_mi(text):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", text)
    n, unit = int(m.group(1)), m.group(2)
    return n / 1024 if unit == "Ki" else n * 1024 if unit == "Gi" else n


def top(server, *args):
    p = server.kubectl("top", *args, check=False)
    return p.stdout if p.returncode == 0 else None


def test_top_pods_and_nodes(server, marker):
    server.kubectl("apply", "-f", "-",
                   input=json.dumps(pod("busy", marker, BUSY, {"app": "busy"})))
    server.kubectl("apply", "-f", "-",
                   input=json.dumps(pod("idle", marker, "import time; time.sleep(600)",
                                        {"app": "idle"})))
    assert wait_until(lambda: (top(server, "pods") or "").count("\n") >= 3, 30), \
        server.kubectl("top", "pods", check=False)
    # let the busy one be measured over a window in which it ran all the time
    time.sleep(1.5)
    rows = {line.split()[0]: line.split() for line in top(server, "pods").splitlines()[1:]}
    assert cpu_milli(rows["busy"][1]) >= 200, rows  # a spinning process (2 shared cores)
    assert mem_mi(rows["busy"][2]) >= 60, rows
    assert cpu_milli(rows["idle"][1]) < 100, rows
    # per container, and by label
    out = top(server, "pods", "--containers")
    assert re.search(r"^busy\s+main\s+\d+m\s+\d+Mi", out, re.M), out
    out = top(server, "pods", "-l", "app=idle")
    assert "idle" in out and "busy" not in out, out
    # the node: this machine
    out = top(server, "nodes")
    node = server.json("get", "nodes")["items"][0]["metadata"]["name"]
    assert re.search(rf"^{re.escape(node)}\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%", out, re.M), out
    # the raw API: metrics-server's shapes
    pm = json.loads(server.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/"
                                   "default/pods/busy").stdout)
    assert pm["kind"] == "PodMetrics" and pm["metadata"]["labels"] == {"app": "busy"}
    assert re.fullmatch(r"\d+n", pm["containers"][0]["usage"]["cpu"]), pm
    assert re.fullmatch(r"\d+Ki", pm["containers"][0]["usage"]["memory"]), pm
    assert re.fullmatch(r"[\d.]+m?s", pm["window"]), pm
    p = server.kubectl("top", "pod", "nope", check=False)
    assert p.returncode != 0
    assert 'podmetrics.metrics.k8s.io "default/nope" not found' in p.stderr, p.stderr
    # discovery: read-only resources of their own group
    res = server.kubectl("api-resources", "--api-group=metrics.k8s.io", "-o", "wide").stdout
    assert re.search(r"^pods\s+metrics.k8s.io/v1beta1\s+true\s+PodMetrics\s+get,list", res,
                     re.M), res
    assert re.search(r"^nodes\s+metrics.k8s.io/v1beta1\s+false\s+NodeMetrics\s+get,list", res,
                     re.M), res
    p = server.kubectl("delete", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/"
                       "pods/busy", check=False)
    assert p.returncode != 0 and "does not allow this method" in p.stderr, p.stderr
    # the Python client, as custom objects
    config.load_kube_config(server.kubeconfig)
    co = client.CustomObjectsApi()
    items = co.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default",
                                             "pods")["items"]
    assert {i["metadata"]["name"] for i in items} == {"busy", "idle"}
    nodes = co.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == [node]
    # an ended pod has no metrics
    server.kubectl("delete", "pod", "busy", "--wait=true", timeout=60)
    assert wait_until(lambda: "busy" not in (top(server, "pods") or "busy"), 10)
    server.kubectl("delete", "pod", "idle", "--wait=true", timeout=60)


def test_top_nodes_of_declared_nodes_sums_their_pods(tmp_path, marker, monkeypatch):
    monkeypatch.setenv("TRAINYARD_METRICS_PERIOD_MS", "500")
    s = Server(tmp_path / "data", ["--no-pod-network", "--nodes", "2x{cpu:4,memory:8Gi}"]).start()
    try:
        nodes = sorted(n["metadata"]["name"] for n in s.json("get", "nodes")["items"])
        assert len(nodes) == 2, nodes
        p = pod("busy", marker, BUSY, {"app": "busy"})
        p["spec"]["nodeName"] = nodes[1]
        s.kubectl("apply", "-f", "-", input=json.dumps(p))
        assert wait_until(lambda: nodes[1] in (top(s, "nodes") or ""), 30), \
            s.kubectl("top", "nodes", check=False)
        time.sleep(1.5)
        out = top(s, "nodes")
        row = next(line.split() for line in out.splitlines() if line.startswith(nodes[1]))
        assert cpu_milli(row[1]) >= 200 and mem_mi(row[3]) >= 60, out
        # the node without pods has no usage to report: kubectl says so, as for a node
        # metrics-server has no metrics of
        idle = next(line.split() for line in out.splitlines() if line.startswith(nodes[0]))
        assert idle[1] == "<unknown>", out
        s.kubectl("delete", "pod", "busy", "--wait=true", timeout=60)
    finally:
        s.stop()
        s.reap()
