"""`trainyard server` running jobs, driven by kubectl and the Python Kubernetes client: the
controllers and the node agent behind the API, and recovery after the server is killed."""
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest
import yaml

from conftest import is_pod_address, processes_with, kill_all, wait_until
from jobs import pytorchjob
from server_fixture import Server


@pytest.fixture
def server(tmp_path, marker):
    s = Server(tmp_path / "data", ["--gpus", "2"]).start()
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def job_state(server, name):
    job = server.json("get", "pytorchjob", name)
    conds = [c for c in job.get("status", {}).get("conditions", []) if c["status"] == "True"]
    return conds[-1]["type"] if conds else ""


def test_apply_get_logs_describe_delete(server, marker, tmp_path):
    cmd = "for i in 1 2 3; do echo tick $i; sleep 0.3; done; sleep 1"
    path = tmp_path / "job.json"
    path.write_text(pytorchjob("ticker", marker, master_cmd=cmd, worker_cmd="sleep 30",
                               workers=1))
    out = server.kubectl("apply", "-f", str(path)).stdout
    assert "pytorchjob.kubeflow.org/ticker created" in out, out
    assert "unchanged" in server.kubectl("apply", "-f", str(path)).stdout
    assert wait_until(lambda: job_state(server, "ticker") == "Running", 20)
    pods = server.kubectl("get", "pods", "-o", "wide").stdout
    m = re.search(r"ticker-master-0\s+1/1\s+Running\s+0\s+\S+\s+(\S+)", pods)
    assert m and is_pod_address(m[1]), pods
    logs = server.kubectl("logs", "-f", "ticker-master-0", timeout=30).stdout
    assert logs.splitlines()[:3] == ["tick 1", "tick 2", "tick 3"], logs
    assert wait_until(lambda: job_state(server, "ticker") == "Succeeded", 30)
    table = server.kubectl("get", "pytorchjobs").stdout
    assert re.search(r"^NAME\s+STATE\s+AGE", table, re.M) and "Succeeded" in table, table
    describe = server.kubectl("describe", "pytorchjob", "ticker").stdout
    assert "SuccessfulCreatePod" in describe and "Created pod: ticker-master-0" in describe, describe
    server.kubectl("delete", "pytorchjob", "ticker")
    assert wait_until(lambda: "ticker" not in server.kubectl("get", "pods").stdout, 40)
    assert wait_until(lambda: not processes_with(marker), 40), processes_with(marker)


def test_get_watch_sees_the_phases(server, marker, tmp_path):
    path = tmp_path / "job.json"
    path.write_text(pytorchjob("watched", marker, master_cmd="sleep 1"))
    w = subprocess.Popen(["/usr/bin/kubectl", "--kubeconfig", server.kubeconfig, "get",
                          "pytorchjobs", "-w", "--request-timeout=40s"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        server.kubectl("apply", "-f", str(path))
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "Succeeded" not in seen:
            line = w.stdout.readline()
            if not line:
                break
            seen.append(line.split()[1] if len(line.split()) > 2 else "")
        assert "Running" in seen and "Succeeded" in seen, seen
    finally:
        w.kill()


def test_python_client_custom_objects_and_logs(server, marker):
    from kubernetes import client, config, watch
    api_client = config.new_client_from_config(config_file=server.kubeconfig)
    co = client.CustomObjectsApi(api_client)
    core = client.CoreV1Api(api_client)
    body = json.loads(pytorchjob("pyclient", marker, master_cmd="echo hello from the master"))
    co.create_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs", body)
    got = co.get_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs",
                                          "pyclient")
    assert got["metadata"]["uid"]
    items = co.list_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs")
    assert [i["metadata"]["name"] for i in items["items"]] == ["pyclient"]
    co.patch_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs", "pyclient",
                                      {"metadata": {"labels": {"team": "a"}}})
    w = watch.Watch()
    states = []
    for ev in w.stream(co.list_namespaced_custom_object, "kubeflow.org", "v1", "default",
                       "pytorchjobs", timeout_seconds=30):
        conds = [c["type"] for c in ev["object"].get("status", {}).get("conditions", [])
                 if c["status"] == "True"]
        states.append(conds[-1] if conds else "")
        if "Succeeded" in states:
            w.stop()
    assert "Succeeded" in states, states
    log = core.read_namespaced_pod_log("pyclient-master-0", "default")
    assert "hello from the master" in log
    assert co.get_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs",
                                           "pyclient")["metadata"]["labels"] == {"team": "a"}
    co.delete_namespaced_custom_object("kubeflow.org", "v1", "default", "pytorchjobs", "pyclient")
    assert wait_until(lambda: not co.list_namespaced_custom_object(
        "kubeflow.org", "v1", "default", "pytorchjobs")["items"], 20)
