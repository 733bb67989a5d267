"""`trainyard server`: the Kubernetes API driven by the real kubectl and by raw HTTP requests.

Each test starts the real binary on a free port (`--listen 127.0.0.1:0`), reads the port from
the kubeconfig it writes, and stops it with SIGTERM at the end: it must exit 0 without a
sanitizer report (the ASan build reports leaks at exit)."""
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from server_fixture import kill_pods_of

from conftest import REPO, assert_no_sanitizer_report, trainyard_bin, wait_until

KUBECTL = "/usr/bin/kubectl"
EXAMPLE = os.path.join(REPO, "examples", "fashion-mnist", "pytorchjob.yaml")
BASE = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs"

# A job whose manifest already holds every default the server adds (the container port), so a
# second `kubectl apply` computes an empty patch.
SMALL_JOB = """\
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: small
  labels: {team: a}
spec:
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      restartPolicy: OnFailure
      template:
        spec:
          containers:
          - name: pytorch
            image: busybox
            command: ["true"]
            ports:
            - {containerPort: 23456, name: pytorchjob-port}
"""


class Server:
    def __init__(self, tmp_path):
        self.dir = tmp_path / "data"
        self.errfile = open(tmp_path / "server.err", "w+")
        self.proc = subprocess.Popen(
            [trainyard_bin(), "server", "--data-dir", str(self.dir), "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=self.errfile, cwd=REPO)
        self.kubeconfig = self.dir / "kubeconfig"
        assert wait_until(self.kubeconfig.exists, 10), self.stderr()
        m = re.search(r"server: http://127\.0\.0\.1:(\d+)", self.kubeconfig.read_text())
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopped = False

    def stderr(self):
        self.errfile.seek(0)
        return self.errfile.read()

    def kubectl(self, *args, check=True, input=None, timeout=30):
        r = subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], input=input,
                           capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if check:
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        return r

    def request(self, method, path, body=None, headers=None):
        """(status, headers, decoded JSON body or text)."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, rh, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, rh, raw = e.code, e.headers, e.read()
        try:
            return status, rh, json.loads(raw)
        except ValueError:
            return status, rh, raw.decode()

    def stop(self):
        self.stopped = True
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=20)
        err = self.stderr()
        assert_no_sanitizer_report(err)
        assert rc == 0, err


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    try:
        yield s
    finally:
        # The server leaves its pods running for its next start: end them.
        try:
            if s.proc.poll() is None:
                s.stop()
            elif not s.stopped:
                pytest.fail(f"server died: {s.proc.returncode}\n{s.stderr()}")
        finally:
            kill_pods_of(s.dir)


def job(name="raw", replicas=1, **extra):
    obj = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
           "metadata": {"name": name, "labels": {"app": name}},
           "spec": {"pytorchReplicaSpecs": {"Master": {
               "replicas": replicas, "restartPolicy": "OnFailure",
               "template": {"spec": {"containers": [
                   {"name": "pytorch", "image": "busybox", "command": ["true"]}]}}}}}}
    obj.update(extra)
    return obj


def test_kubeconfig_and_discovery(server):
    assert "current-context: trainyard" in server.kubeconfig.read_text()
    r = server.kubectl("api-resources")
    assert re.search(r"^pytorchjobs\s+kubeflow.org/v1\s+true\s+PyTorchJob$", r.stdout, re.M), r.stdout
    assert re.search(r"^pods\s+po\s+v1\s+true\s+Pod$", r.stdout, re.M), r.stdout
    st, _, body = server.request("GET", "/apis/kubeflow.org/v1")
    assert st == 200 and body["kind"] == "APIResourceList"
    pj = next(r for r in body["resources"] if r["name"] == "pytorchjobs")
    assert pj["categories"] == ["all"] and "watch" in pj["verbs"] and pj["singularName"] == "pytorchjob"
    assert any(r["name"] == "pytorchjobs/status" for r in body["resources"])
    assert server.request("GET", "/version")[2]["major"] == "1"
    # Aggregated discovery, which kubectl asks for first.
    accept = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
              "application/json")
    st, hdrs, body = server.request("GET", "/apis", headers={"Accept": accept})
    assert st == 200 and body["kind"] == "APIGroupDiscoveryList"
    assert hdrs["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    groups = {g["metadata"]["name"]: g for g in body["items"]}
    assert set(groups) == {"kubeflow.org", "batch", "kueue.x-k8s.io", "scheduling.k8s.io",
                           "rbac.authorization.k8s.io", "authorization.k8s.io",
                           "authentication.k8s.io", "discovery.k8s.io", "metrics.k8s.io",
                           "serving.kserve.io",
                           "coordination.k8s.io"}
    # KServe's group at two versions, the preferred (v1beta1) first, each with its kinds.
    kserve = groups["serving.kserve.io"]["versions"]
    assert [v["version"] for v in kserve] == ["v1beta1", "v1alpha1"]
    assert {r["resource"] for r in kserve[0]["resources"]} == {"inferenceservices"}
    assert {r["resource"] for r in kserve[1]["resources"]} == {"servingruntimes",
                                                               "clusterservingruntimes"}
    st, _, g = server.request("GET", "/apis/serving.kserve.io")
    assert [v["version"] for v in g["versions"]] == ["v1beta1", "v1alpha1"]
    assert g["preferredVersion"]["version"] == "v1beta1"
    metrics = {r["resource"]: r for r in groups["metrics.k8s.io"]["versions"][0]["resources"]}
    assert metrics["pods"]["verbs"] == ["get", "list"]  # served from samples, never stored
    assert metrics["nodes"]["scope"] == "Cluster"
    assert groups["kueue.x-k8s.io"]["versions"][0]["version"] == "v1beta1"
    group = groups["kubeflow.org"]
    assert group["versions"][0]["version"] == "v1"
    res = {r["resource"]: r for r in group["versions"][0]["resources"]}
    assert res["pytorchjobs"]["scope"] == "Namespaced"
    assert res["pytorchjobs"]["responseKind"]["kind"] == "PyTorchJob"
    assert res["tfjobs"]["subresources"][0]["subresource"] == "status"
    st, _, body = server.request("GET", "/api", headers={"Accept": accept})
    core = {r["resource"] for r in body["items"][0]["versions"][0]["resources"]}
    assert core == {"namespaces", "nodes", "pods", "services", "endpoints", "events",
                    "persistentvolumes", "persistentvolumeclaims", "configmaps", "secrets",
                    "serviceaccounts"}
    # Without it, the legacy documents.
    assert server.request("GET", "/api")[2]["versions"] == ["v1"]


def test_apply_get_delete_with_kubectl(server, tmp_path):
    r = server.kubectl("apply", "-f", EXAMPLE)
    assert "pytorchjob.kubeflow.org/fashion-mnist created" in r.stdout
    # The server adds the default container port (as Kubeflow's webhook does), so kubectl's
    # merge patch of the example is not empty; it still applies cleanly.
    r = server.kubectl("apply", "-f", EXAMPLE)
    assert "pytorchjob.kubeflow.org/fashion-mnist" in r.stdout
    small = tmp_path / "small.yaml"
    small.write_text(SMALL_JOB)
    assert "created" in server.kubectl("apply", "-f", str(small)).stdout
    assert "pytorchjob.kubeflow.org/small unchanged" in server.kubectl("apply", "-f", str(small)).stdout

    out = server.kubectl("get", "pytorchjobs").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATE", "AGE"], out
    assert [l.split()[0] for l in out[1:]] == ["fashion-mnist", "small"]

    obj = json.loads(server.kubectl("get", "pytorchjob", "fashion-mnist", "-o", "json").stdout)
    assert obj["kind"] == "PyTorchJob" and obj["metadata"]["uid"]
    assert obj["metadata"]["namespace"] == "default"
    assert obj["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3
    y = server.kubectl("get", "pytorchjob", "fashion-mnist", "-o", "yaml").stdout
    assert "kind: PyTorchJob" in y and "name: fashion-mnist" in y

    out = server.kubectl("get", "pytorchjobs", "-l", "app=fashion-mnist", "-o", "name").stdout
    assert out.split() == ["pytorchjob.kubeflow.org/fashion-mnist"]
    out = server.kubectl("get", "pytorchjobs", "-l", "team=a", "-o", "name").stdout
    assert out.split() == ["pytorchjob.kubeflow.org/small"]
    r = server.kubectl("get", "pytorchjobs", "-l", "app=nope")
    assert "No resources found in default namespace." in r.stderr
    out = server.kubectl("get", "pytorchjobs", "-A").stdout.splitlines()
    assert out[0].split()[:2] == ["NAMESPACE", "NAME"] and len(out) == 3

    r = server.kubectl("delete", "pytorchjob", "fashion-mnist")
    assert 'pytorchjob.kubeflow.org "fashion-mnist" deleted' in r.stdout
    r = server.kubectl("get", "pytorchjob", "fashion-mnist", check=False)
    assert r.returncode != 0
    assert 'pytorchjobs.kubeflow.org "fashion-mnist" not found' in r.stderr


def test_bad_manifests_store_nothing(server, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL_JOB.replace("replicas: 1", "replicas: -1"))
    r = server.kubectl("apply", "-f", str(bad), check=False)
    assert r.returncode != 0
    assert 'The PyTorchJob "small" is invalid' in r.stderr, r.stderr
    assert "spec.pytorchReplicaSpecs.Master.replicas: Invalid value: -1" in r.stderr
    bad.write_text(SMALL_JOB.replace("      replicas: 1\n", "      replicas: 1\n      bogus: 2\n"))
    r = server.kubectl("apply", "-f", str(bad), check=False)
    assert r.returncode != 0
    assert 'strict decoding error: unknown field "spec.pytorchReplicaSpecs.Master.bogus"' in r.stderr
    bad.write_text(SMALL_JOB.replace("name: small", "name: Not_Valid"))
    r = server.kubectl("apply", "-f", str(bad), check=False)
    assert r.returncode != 0 and "a lowercase RFC 1123 subdomain" in r.stderr, r.stderr
    assert server.request("GET", BASE)[2]["items"] == []


def test_kubectl_watch_sees_an_update(server, tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text(SMALL_JOB)
    server.kubectl("apply", "-f", str(small))
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(server.kubeconfig), "get", "pytorchjobs",
                             "-w", "-o", "name"], stdout=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=10).strip() == "pytorchjob.kubeflow.org/small"
        server.kubectl("label", "pytorchjob", "small", "stage=two")
        assert lines.get(timeout=10).strip() == "pytorchjob.kubeflow.org/small"
        server.kubectl("delete", "pytorchjob", "small")
        assert lines.get(timeout=10).strip() == "pytorchjob.kubeflow.org/small"
    finally:
        proc.kill()
        proc.wait()


def test_kubectl_watch_prints_table_rows(server, tmp_path):
    small = tmp_path / "small.yaml"
    small.write_text(SMALL_JOB)
    server.kubectl("apply", "-f", str(small))
    proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(server.kubeconfig), "get", "pytorchjobs",
                             "-w"], stdout=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=10).split() == ["NAME", "STATE", "AGE"]
        assert lines.get(timeout=10).split()[0] == "small"
        server.request("PATCH", "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/small/status",
                       {"status": {"conditions": [{"type": "Running", "status": "True"}]}},
                       {"Content-Type": "application/merge-patch+json"})
        assert lines.get(timeout=10).split()[:2] == ["small", "Running"]
    finally:
        proc.kill()
        proc.wait()


def test_status_errors(server):
    st, _, body = server.request("GET", BASE + "/nope")
    assert st == 404
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": 'pytorchjobs.kubeflow.org "nope" not found', "reason": "NotFound",
                    "details": {"name": "nope", "group": "kubeflow.org", "kind": "pytorchjobs"},
                    "code": 404}
    st, _, body = server.request("GET", "/api/v1/namespaces/default/pods/p")
    assert st == 404 and body["message"] == 'pods "p" not found' and "group" not in body["details"]

    st, _, created = server.request("POST", BASE, job())
    assert st == 201 and created["metadata"]["resourceVersion"]
    st, _, body = server.request("POST", BASE, job())
    assert st == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'pytorchjobs.kubeflow.org "raw" already exists'

    st, _, body = server.request("POST", BASE, job("neg", replicas=-1))
    assert st == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('PyTorchJob.kubeflow.org "neg" is invalid: ')
    assert body["details"]["kind"] == "PyTorchJob" and body["details"]["group"] == "kubeflow.org"
    cause = body["details"]["causes"][0]
    assert cause["reason"] == "FieldValueInvalid"
    assert cause["field"] == "spec.pytorchReplicaSpecs.Master.replicas"

    st, _, body = server.request("POST", BASE, job("Bad_Name"))
    assert st == 422 and body["details"]["causes"][0]["field"] == "metadata.name"

    st, _, body = server.request("POST", BASE, b"{not json")
    assert st == 400 and body["reason"] == "BadRequest"
    st, _, body = server.request("POST", BASE, b"apiVersion: [", {"Content-Type": "application/yaml"})
    assert st == 400 and body["reason"] == "BadRequest"
    st, _, body = server.request("POST", BASE, dict(job("k"), kind="TFJob"))
    assert st == 400 and body["reason"] == "BadRequest"
    st, _, body = server.request("POST", BASE, dict(job("v"), apiVersion="kubeflow.org/v2"))
    assert st == 400 and "does not match the expected API version" in body["message"]
    st, _, body = server.request("POST", "/apis/kubeflow.org/v1/namespaces/nope/pytorchjobs", job("n"))
    assert st == 404 and body["message"] == 'namespaces "nope" not found'

    # YAML bodies are accepted.
    st, _, body = server.request("POST", BASE, SMALL_JOB.encode(), {"Content-Type": "application/yaml"})
    assert st == 201 and body["metadata"]["name"] == "small"

    stale = dict(created)
    server.request("PATCH", BASE + "/raw", {"metadata": {"labels": {"x": "1"}}},
                   {"Content-Type": "application/merge-patch+json"})
    st, _, body = server.request("PUT", BASE + "/raw", stale)
    assert st == 409 and body["reason"] == "Conflict"
    assert body["message"].startswith('Operation cannot be fulfilled on pytorchjobs.kubeflow.org "raw"')

    st, _, body = server.request("DELETE", BASE + "/raw/status")
    assert st == 405 and body["reason"] == "MethodNotAllowed"
    st, _, body = server.request("PATCH", BASE + "/raw", {"a": 1}, {"Content-Type": "text/plain"})
    assert st == 415 and body["reason"] == "UnsupportedMediaType"

    names = [o["metadata"]["name"] for o in server.request("GET", BASE)[2]["items"]]
    assert names == ["raw", "small"]


def test_webhook_rules_answer_as_the_operators_webhook(server, tmp_path):
    """The operator's webhook rules are answered as a denying webhook's (403), the schema's as
    422, with upstream's field paths; its warnings become Warning headers."""
    hook = 'admission webhook "validator.pytorchjob.training-operator.kubeflow.org" ' \
           'denied the request: '
    j = job("empty")
    j["spec"]["pytorchReplicaSpecs"]["Worker"] = {"template": {"spec": {"containers": []}}}
    st, _, body = server.request("POST", BASE, j)
    assert st == 403 and body["reason"] == "Forbidden" and body["code"] == 403, body
    w = "spec.pytorchReplicaSpecs[Worker].template.spec.containers: Required value: "
    assert body["message"] == hook + f"[{w}must be specified, " \
        f"{w}must have at least one container with name pytorch]", body
    # Before defaults: a Master without replicas, a lower-case key.
    j = job("unset")
    del j["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"]
    st, _, body = server.request("POST", BASE, j)
    assert st == 403 and body["message"] == \
        hook + "spec.pytorchReplicaSpecs[Master].replicas: Forbidden: must be 1", body
    j = job("lower")
    j["spec"]["pytorchReplicaSpecs"]["master"] = j["spec"]["pytorchReplicaSpecs"].pop("Master")
    st, _, body = server.request("POST", BASE, j)
    assert st == 403 and 'spec.pytorchReplicaSpecs[master]: Unsupported value: "master"' in \
        body["message"], body
    # A schema error is answered alone, as the webhook never runs then.
    st, _, body = server.request("POST", BASE,
                                 dict(job("neg", replicas=-1), metadata={"name": "0-x"}))
    assert st == 422 and body["reason"] == "Invalid", body
    assert [c["field"] for c in body["details"]["causes"]] == \
        ["spec.pytorchReplicaSpecs.Master.replicas"], body
    # The deprecated nProcPerNode: a warning, and kubectl prints it.
    j = job("dep")
    j["spec"]["elasticPolicy"] = {"nProcPerNode": 1}
    j["spec"]["pytorchReplicaSpecs"]["Worker"] = j["spec"]["pytorchReplicaSpecs"]["Master"]
    del j["spec"]["pytorchReplicaSpecs"]["Master"]
    st, hdrs, body = server.request("POST", BASE, j)
    assert st == 201, body
    assert hdrs.get("Warning") == '299 - "spec.elasticPolicy.nProcPerNode is deprecated, ' \
        'use spec.nprocPerNode instead"', dict(hdrs)
    # A status write is not the webhook's: no warning.
    cur = server.request("GET", BASE + "/dep")[2]
    st, hdrs, got = server.request("PUT", BASE + "/dep/status", cur)
    assert st == 200 and "Warning" not in hdrs, (got, dict(hdrs))
    j["metadata"]["name"] = "dep2"
    path = tmp_path / "dep.json"
    path.write_text(json.dumps(j))
    r = server.kubectl("create", "-f", str(path))
    assert "Warning: spec.elasticPolicy.nProcPerNode is deprecated" in r.stderr, r.stderr
    # kubectl says who denied it.
    j = job("nocont")
    j["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["name"] = ""
    path.write_text(json.dumps(j))
    r = server.kubectl("create", "-f", str(path), check=False)
    assert r.returncode == 1 and "Error from server (Forbidden): " in r.stderr and hook + \
        "spec.pytorchReplicaSpecs[Master].template.spec.containers: Required value: must have " \
        "at least one container with name pytorch" in r.stderr, r.stderr
    # Updates: managedBy is the webhook's to keep, the queue the schema's (a CEL rule).
    j = job("upd")
    j["spec"]["runPolicy"] = {"suspend": True, "schedulingPolicy": {"queue": "a"}}
    st, _, cur = server.request("POST", BASE, j)
    assert st == 201, cur
    cur["spec"]["runPolicy"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    st, _, body = server.request("PUT", BASE + "/upd", cur)
    assert st == 403 and body["message"] == hook + 'spec.runPolicy.managedBy: Invalid value: ' \
        '"kueue.x-k8s.io/multikueue": field is immutable', body
    del cur["spec"]["runPolicy"]["managedBy"]
    cur["spec"]["runPolicy"]["schedulingPolicy"]["queue"] = "b"
    st, _, body = server.request("PUT", BASE + "/upd", cur)
    queue = "spec.runPolicy.schedulingPolicy.queue"
    assert st == 422 and body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": queue,
        "message": f'Invalid value: "string": {queue} is immutable'}], body
    st, _, body = server.request("PATCH", BASE + "/upd",
                                 {"spec": {"runPolicy": {"schedulingPolicy": {"queue": None}}}},
                                 {"Content-Type": "application/merge-patch+json"})
    assert st == 200, body


def test_body_limit_dry_run_and_field_validation(server):
    big = job("big")
    big["metadata"]["annotations"] = {"x": "a" * (4 * 1024 * 1024)}
    st, _, body = server.request("POST", BASE, big)
    assert st == 413 and body["reason"] == "RequestEntityTooLarge"

    st, _, body = server.request("POST", BASE + "?dryRun=All", job("dry"))
    assert st == 201 and body["metadata"]["name"] == "dry"
    assert body["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] == 1
    assert server.request("GET", BASE + "/dry")[0] == 404

    j = job("warned")
    j["spec"]["extra"] = 1
    st, hdrs, body = server.request("POST", BASE + "?fieldValidation=Warn", j)
    assert st == 201 and "extra" not in body["spec"]
    assert 'unknown field \\"spec.extra\\"' in hdrs.get("Warning", ""), dict(hdrs)
    st, _, body = server.request("POST", BASE + "?fieldValidation=Strict", dict(j, metadata={"name": "s"}))
    assert st == 400 and 'unknown field "spec.extra"' in body["message"]

    # A dry-run patch answers the result and changes nothing (GET before and after).
    assert "dry" not in server.request("GET", BASE + "/warned")[2]["metadata"]["labels"]
    st, _, body = server.request("PATCH", BASE + "/warned?dryRun=All",
                                 {"metadata": {"labels": {"dry": "1"}}},
                                 {"Content-Type": "application/merge-patch+json"})
    assert st == 200 and body["metadata"]["labels"]["dry"] == "1"
    assert "dry" not in server.request("GET", BASE + "/warned")[2]["metadata"]["labels"]
    assert "dry" not in server.request("GET", BASE)[2]["items"][0]["metadata"]["labels"]

    st, _, body = server.request("DELETE", BASE + "/warned?dryRun=All")
    assert st == 200 and server.request("GET", BASE + "/warned")[0] == 200
    st, _, body = server.request("DELETE", BASE + "/warned", {"kind": "DeleteOptions",
                                                               "apiVersion": "v1",
                                                               "propagationPolicy": "Background"})
    assert st == 200 and body["status"] == "Success"
    assert server.request("GET", BASE + "/warned")[0] == 404


def test_pages_across_namespaces_a_and_a_b(server):
    # Pages follow the list's order (namespace, then name): "a" before "a-b", though the
    # string "a-b/j" sorts before "a/j".
    for ns in ("a", "a-b"):
        st, _, obj = server.request("POST", "/api/v1/namespaces",
                                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        assert st == 201, obj
        assert server.request("POST", f"/apis/kubeflow.org/v1/namespaces/{ns}/pytorchjobs", job("j"))[0] == 201
    seen, token = [], ""
    for _ in range(5):
        st, _, page = server.request("GET", "/apis/kubeflow.org/v1/pytorchjobs?limit=1" +
                                     (f"&continue={token}" if token else ""))
        assert st == 200, page
        seen += [o["metadata"]["namespace"] for o in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert seen == ["a", "a-b"]


def test_label_selection_follows_label_changes(server):
    # Jobs sharing a label set, then one relabelled and one deleted: the server's per-label-set
    # view of the list is rebuilt on every change of the store.
    names = lambda sel: [o["metadata"]["name"] for o in
                         server.request("GET", BASE + "?labelSelector=" + sel)[2]["items"]]
    for n in ("j1", "j2", "j3"):
        obj = job(n)
        obj["metadata"]["labels"] = {"team": "x", "tier": "a" if n != "j3" else "b"}
        assert server.request("POST", BASE, obj)[0] == 201
    assert names("team%3Dx,tier%3Da") == ["j1", "j2"]
    assert names("tier%21%3Da") == ["j3"]
    st, _, obj = server.request("PATCH", BASE + "/j1", {"metadata": {"labels": {"tier": "b"}}},
                                {"Content-Type": "application/merge-patch+json"})
    assert st == 200, obj
    assert names("tier%3Da") == ["j2"]
    assert names("tier%3Db") == ["j1", "j3"]
    assert server.request("DELETE", BASE + "/j3")[0] == 200
    assert names("tier%3Db") == ["j1"]
    assert names("team") == ["j1", "j2"]


def test_malformed_integer_parameters_and_continue_tokens_are_refused(server):
    """As Go's strconv.ParseInt decodes them: a bad value is a 400 naming the parameter, and
    the request does nothing (it used to read as 0: no limit, or an immediate delete)."""
    assert server.request("POST", BASE, job("a"))[0] == 201
    for query in ("limit=abc", "limit=1.5", "limit=", "watch=true&timeoutSeconds=1s",
                  "limit=99999999999999999999"):
        st, _, obj = server.request("GET", BASE + "?" + query)
        assert st == 400 and obj["reason"] == "BadRequest", (query, obj)
        key = query.split("&")[-1].split("=")[0]
        assert obj["message"].startswith(key + ": strconv.ParseInt: parsing "), obj
    st, _, obj = server.request("DELETE", BASE + "/a?gracePeriodSeconds=now")
    assert st == 400 and "gracePeriodSeconds" in obj["message"], obj
    assert server.request("GET", BASE + "/a")[0] == 200
    # Hex pairs only: sscanf("%2x") used to take a sign or a blank, and "00" cut the key short.
    for token in ("-1", "+6", "%206", "00", "6"):
        st, _, obj = server.request("GET", BASE + "?limit=1&continue=" + token)
        assert st == 400 and "continue key is not valid" in obj["message"], (token, obj)
    st, _, page = server.request("GET", BASE + "?limit=1&timeoutSeconds=%2B9223372036854775807")
    assert st == 200 and [o["metadata"]["name"] for o in page["items"]] == ["a"], page


def test_list_pages_selectors_and_status(server):
    for n in ("a", "b", "c"):
        assert server.request("POST", BASE, job(n))[0] == 201
    st, _, page = server.request("GET", BASE + "?limit=2")
    assert [o["metadata"]["name"] for o in page["items"]] == ["a", "b"]
    assert page["metadata"]["remainingItemCount"] == 1
    st, _, rest = server.request("GET", BASE + "?limit=2&continue=" + page["metadata"]["continue"])
    assert [o["metadata"]["name"] for o in rest["items"]] == ["c"] and "continue" not in rest["metadata"]
    st, _, sel = server.request("GET", "/apis/kubeflow.org/v1/pytorchjobs?labelSelector=app%3Db")
    assert [o["metadata"]["name"] for o in sel["items"]] == ["b"]
    st, _, sel = server.request("GET", BASE + "?fieldSelector=metadata.name%3Dc")
    assert [o["metadata"]["name"] for o in sel["items"]] == ["c"]

    st, _, obj = server.request("PATCH", BASE + "/a/status",
                                {"status": {"conditions": [{"type": "Created", "status": "True"}]}},
                                {"Content-Type": "application/merge-patch+json"})
    assert st == 200, obj
    assert obj["status"]["conditions"][0]["type"] == "Created"
    st, _, obj = server.request("GET", BASE + "/a/status")
    assert st == 200 and obj["status"]["conditions"][0]["type"] == "Created"

    st, _, gone = server.request("DELETE", BASE + "?labelSelector=app%3Dc")
    assert st == 200 and gone["kind"] == "PyTorchJobList"
    assert [o["metadata"]["name"] for o in gone["items"]] == ["c"]
    assert gone["items"][0]["kind"] == "PyTorchJob" and gone["items"][0]["metadata"]["uid"]
    assert server.request("GET", BASE + "/c")[0] == 404
    # by field, and as a dry run: the answer lists what would go, and nothing does
    st, _, would = server.request("DELETE", BASE + "?fieldSelector=metadata.name%21%3Da&dryRun=All")
    assert st == 200 and [o["metadata"]["name"] for o in would["items"]] == ["b"]
    assert server.request("GET", BASE + "/b")[0] == 200
    st, _, none = server.request("DELETE", BASE + "?labelSelector=app%3Dnobody")
    assert st == 200 and none["items"] == [] and int(none["metadata"]["resourceVersion"]) > 0

    st, _, table = server.request("GET", BASE, headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert table["kind"] == "Table" and len(table["rows"]) == 2


def read_events(server, path, count, timeout=10):
    """The first `count` watch events of `path` (the stream is cut after them)."""
    req = urllib.request.Request(server.url + path)
    events = []
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        assert resp.status == 200
        while len(events) < count:
            line = resp.readline()
            if not line:
                break
            events.append(json.loads(line))
    return events


def test_watch_from_resource_version(server):
    st, _, created = server.request("POST", BASE, job("w"))
    rv = created["metadata"]["resourceVersion"]
    server.request("PATCH", BASE + "/w", {"metadata": {"labels": {"x": "1"}}},
                   {"Content-Type": "application/merge-patch+json"})
    # The job controller writes the job's status too: find the label change among the events.
    evs = read_events(server, BASE + f"?watch=1&resourceVersion={rv}&timeoutSeconds=3", 50)
    ev = [e for e in evs if e["object"]["metadata"].get("labels", {}).get("x") == "1"]
    assert ev and ev[0]["type"] == "MODIFIED", evs
    assert all(int(e["object"]["metadata"]["resourceVersion"]) > int(rv) for e in evs)

    # Without a resourceVersion: the current state as ADDED, then live events.
    result = []
    t = threading.Thread(target=lambda: result.extend(
        read_events(server, BASE + "?watch=true&timeoutSeconds=4", 100)))
    t.start()
    time.sleep(0.5)
    server.request("POST", BASE, job("w2"))
    server.request("DELETE", BASE + "/w2")
    t.join(10)
    # Less the job controller's status writes (MODIFIED):
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in result
            if e["type"] != "MODIFIED"] == [("ADDED", "w"), ("ADDED", "w2"), ("DELETED", "w2")]

    # timeoutSeconds ends the stream.
    start = time.monotonic()
    ev = read_events(server, BASE + "?watch=1&timeoutSeconds=1", 10)
    assert len(ev) == 1 and time.monotonic() - start < 5


def test_watch_without_resource_version_replays_what_matches(server):
    # The replay is built from the stored texts; selectors and Tables must still apply to it.
    for name, team in (("r1", "a"), ("r2", "b"), ("r3", "a")):
        server.request("POST", BASE, job(name, metadata={"name": name, "labels": {"team": team}}))

    def replay(query, headers=None):
        req = urllib.request.Request(server.url + BASE + "?watch=1&timeoutSeconds=1" + query,
                                     headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as resp:
            events = [json.loads(line) for line in resp if line.strip()]
        # the replay, less the job controller's status writes that may follow it
        return [e for e in events if e["type"] != "MODIFIED"]

    every = replay("")
    assert [e["type"] for e in every] == ["ADDED"] * len(every)
    assert {"r1", "r2", "r3"} <= {e["object"]["metadata"]["name"] for e in every}
    assert all(e["object"]["kind"] == "PyTorchJob" and e["object"]["apiVersion"] == "kubeflow.org/v1"
               for e in every)
    assert sorted(e["object"]["metadata"]["name"] for e in replay("&labelSelector=team%3Da")) == \
        ["r1", "r3"]
    assert [e["object"]["metadata"]["name"] for e in replay("&fieldSelector=metadata.name%3Dr2")] \
        == ["r2"]
    both = replay("&labelSelector=team%3Da&fieldSelector=metadata.name%21%3Dr1")
    assert [e["object"]["metadata"]["name"] for e in both] == ["r3"]
    tables = replay("&labelSelector=team%3Db", {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert len(tables) == 1 and tables[0]["object"]["kind"] == "Table"
    assert tables[0]["object"]["rows"][0]["cells"][0] == "r2"


def test_sigterm_ends_open_watches(server):
    server.request("POST", BASE, job("s"))
    req = urllib.request.urlopen(server.url + BASE + "?watch=1", timeout=10)
    assert json.loads(req.readline())["type"] == "ADDED"
    server.stop()
    assert req.read() == b""


def test_python_client(server):
    from kubernetes import client, config, watch
    api = client.ApiClient(config.new_client_from_config(str(server.kubeconfig)).configuration)
    co = client.CustomObjectsApi(api)
    args = ("kubeflow.org", "v1", "default", "pytorchjobs")
    created = co.create_namespaced_custom_object(*args, job("py"))
    assert created["metadata"]["uid"]
    assert co.get_namespaced_custom_object(*args, "py")["metadata"]["name"] == "py"
    assert [o["metadata"]["name"] for o in co.list_namespaced_custom_object(*args)["items"]] == ["py"]
    patched = co.patch_namespaced_custom_object(*args, "py", {"metadata": {"labels": {"a": "b"}}})
    assert patched["metadata"]["labels"]["a"] == "b"

    threading.Timer(0.5, lambda: co.delete_namespaced_custom_object(*args, "py")).start()
    seen = []
    w = watch.Watch()
    for ev in w.stream(co.list_namespaced_custom_object, *args, timeout_seconds=5):
        seen.append((ev["type"], ev["object"]["metadata"]["name"]))
        if ev["type"] == "DELETED":
            w.stop()
    # Between them, the job controller's status writes arrive as MODIFIED.
    assert seen[0] == ("ADDED", "py") and seen[-1] == ("DELETED", "py"), seen
    assert all(t == "MODIFIED" for t, _ in seen[1:-1]), seen
    with pytest.raises(client.ApiException) as e:
        co.get_namespaced_custom_object(*args, "py")
    assert e.value.status == 404

    # The client's VersionApi asks for /version/.
    assert client.VersionApi(api).get_code().git_version.startswith("v1.")

    # Typed clients of built-in kinds send JSON too.
    core = client.CoreV1Api(api)
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-a")))
    assert ns.status.phase == "Active"
    assert "team-a" in [n.metadata.name for n in core.list_namespace().items]
    # Status is not the client's to set on create.
    j = job("st")
    j["status"] = {"conditions": [{"type": "Succeeded", "status": "True"}]}
    created = co.create_namespaced_custom_object("kubeflow.org", "v1", "team-a", "pytorchjobs", j)
    assert "conditions" not in created.get("status", {})


def test_watch_with_selector_sees_objects_enter_and_leave(server):
    server.request("POST", BASE, job("sel"))
    merge = {"Content-Type": "application/merge-patch+json"}
    result = []
    t = threading.Thread(target=lambda: result.extend(
        read_events(server, BASE + "?watch=1&labelSelector=app%3Dsel&timeoutSeconds=4", 100)))
    t.start()
    time.sleep(0.5)
    server.request("PATCH", BASE + "/sel", {"metadata": {"labels": {"x": "1"}}}, merge)
    server.request("PATCH", BASE + "/sel", {"metadata": {"labels": {"app": "other"}}}, merge)
    server.request("PATCH", BASE + "/sel", {"metadata": {"labels": {"x": "2"}}}, merge)
    server.request("PATCH", BASE + "/sel", {"metadata": {"labels": {"app": "sel"}}}, merge)
    t.join(10)
    # The job controller's status writes add MODIFIED events while the job matches.
    kinds = [e["type"] for e in result if e["type"] != "MODIFIED"]
    assert kinds == ["ADDED", "DELETED", "ADDED"], [e["type"] for e in result]
    assert any(e["type"] == "MODIFIED" and e["object"]["metadata"]["labels"].get("x") == "1"
               for e in result)
    # As the watch cache answers: the version that matched, at the event's resourceVersion.
    deleted = next(e for e in result if e["type"] == "DELETED")
    assert deleted["object"]["metadata"]["labels"]["app"] == "sel"
    assert deleted["object"]["metadata"]["labels"]["x"] == "1"


def test_selector_watch_from_a_resource_version_sees_an_object_leave(server):
    """A filtered watch from a resourceVersion knows what matched before each replayed event:
    an object relabelled after that version is DELETED for the client, one that comes to match
    is ADDED (Python client, as a controller's informer resumes)."""
    from kubernetes import client, config, watch
    api = client.ApiClient(config.new_client_from_config(str(server.kubeconfig)).configuration)
    co = client.CustomObjectsApi(api)
    args = ("kubeflow.org", "v1", "default", "pytorchjobs")
    merge = {"Content-Type": "application/merge-patch+json"}
    server.request("POST", BASE, job("leaver"))
    server.request("POST", BASE, job("joiner"))
    server.request("PATCH", BASE + "/joiner", {"metadata": {"labels": {"app": "no"}}}, merge)
    listed = co.list_namespaced_custom_object(*args, label_selector="app=leaver")
    rv = listed["metadata"]["resourceVersion"]
    assert [o["metadata"]["name"] for o in listed["items"]] == ["leaver"]
    # Changes after the list, replayed from the history when the watch starts:
    server.request("PATCH", BASE + "/leaver", {"metadata": {"labels": {"app": "gone"}}}, merge)
    server.request("PATCH", BASE + "/joiner", {"metadata": {"labels": {"app": "leaver"}}}, merge)
    seen = []
    w = watch.Watch()
    for ev in w.stream(co.list_namespaced_custom_object, *args, label_selector="app=leaver",
                       resource_version=rv, timeout_seconds=3):
        seen.append((ev["type"], ev["object"]["metadata"]["name"]))
        if ("ADDED", "joiner") in seen and ("DELETED", "leaver") in seen:
            w.stop()
    assert ("DELETED", "leaver") in seen, seen
    assert ("ADDED", "joiner") in seen, seen
    assert seen.index(("DELETED", "leaver")) < seen.index(("ADDED", "joiner")), seen
    # And live: the joiner leaves too.
    threading.Timer(0.5, lambda: server.request(
        "PATCH", BASE + "/joiner", {"metadata": {"labels": {"app": "x"}}}, merge)).start()
    live = []
    w = watch.Watch()
    for ev in w.stream(co.list_namespaced_custom_object, *args, label_selector="app=leaver",
                       timeout_seconds=4):
        live.append((ev["type"], ev["object"]["metadata"]["name"]))
        if ev["type"] == "DELETED":
            w.stop()
    assert live[0] == ("ADDED", "joiner") and live[-1] == ("DELETED", "joiner"), live
