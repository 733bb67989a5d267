"""`trainyard server`: server-side apply with the real kubectl (`kubectl apply --server-side`)
and the Python client, and the managedFields it keeps."""
import json
import urllib.error
import urllib.request

import pytest
import yaml

from conftest import kill_all
from server_fixture import Server

BASE = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs"


@pytest.fixture
def server(tmp_path, marker):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def job(marker, backoff=3, deadline=600, labels=None):
    """A suspended job (no pods run) whose runPolicy fields the tests change."""
    run_policy = {"suspend": True, "backoffLimit": backoff}
    if deadline is not None:
        run_policy["activeDeadlineSeconds"] = deadline
    return {
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": "ssa", "labels": labels or {"team": "a"}},
        "spec": {"runPolicy": run_policy, "pytorchReplicaSpecs": {"Master": {
            "replicas": 1, "restartPolicy": "OnFailure",
            "template": {"spec": {"containers": [{
                "name": "pytorch", "image": "busybox", "command": ["sleep", "300"],
                "env": [{"name": "TY_MARKER", "value": marker}]}]}}}}},
    }


def apply(server, tmp_path, obj, *extra, check=True):
    path = tmp_path / "apply.yaml"
    path.write_text(yaml.safe_dump(obj))
    return server.kubectl("apply", "--server-side", "-f", str(path), *extra, check=check)


def managers(obj):
    return {(e["manager"], e["operation"]): e["fieldsV1"]
            for e in obj["metadata"].get("managedFields", [])}


def raw(server, method, path, body, content_type):
    req = urllib.request.Request(server.url + path, data=body.encode(), method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_kubectl_apply_server_side(server, tmp_path, marker):
    p = apply(server, tmp_path, job(marker))
    assert "serverside-applied" in p.stdout
    first = server.json("get", "pytorchjob", "ssa", "--show-managed-fields")
    fields = managers(first)[("kubectl", "Apply")]
    assert fields["f:spec"]["f:runPolicy"] == {"f:suspend": {}, "f:backoffLimit": {},
                                               "f:activeDeadlineSeconds": {}}
    containers = fields["f:spec"]["f:pytorchReplicaSpecs"]["f:Master"]["f:template"]["f:spec"][
        "f:containers"]
    assert '.' in containers['k:{"name":"pytorch"}'], containers
    # kubectl hides them unless asked.
    assert "managedFields" not in server.json("get", "pytorchjob", "ssa")["metadata"]

    # The same manifest again: nothing is written.
    apply(server, tmp_path, job(marker))
    again = server.json("get", "pytorchjob", "ssa")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    # A changed field is applied; a field left out of the manifest is removed.
    apply(server, tmp_path, job(marker, backoff=4, deadline=None))
    changed = server.json("get", "pytorchjob", "ssa", "--show-managed-fields")
    assert changed["spec"]["runPolicy"]["backoffLimit"] == 4
    assert "activeDeadlineSeconds" not in changed["spec"]["runPolicy"]
    assert "f:activeDeadlineSeconds" not in \
        managers(changed)[("kubectl", "Apply")]["f:spec"]["f:runPolicy"]

    # Another manager applying a different value conflicts, naming the field and the owner.
    p = apply(server, tmp_path, job(marker, backoff=7, deadline=None), "--field-manager=other",
              check=False)
    assert p.returncode != 0
    assert 'conflict with "kubectl" using kubeflow.org/v1: .spec.runPolicy.backoffLimit' \
        in p.stderr, p.stderr
    assert server.json("get", "pytorchjob", "ssa")["spec"]["runPolicy"]["backoffLimit"] == 4
    # --force-conflicts takes it over.
    apply(server, tmp_path, job(marker, backoff=7, deadline=None), "--field-manager=other",
          "--force-conflicts")
    forced = server.json("get", "pytorchjob", "ssa", "--show-managed-fields")
    assert forced["spec"]["runPolicy"]["backoffLimit"] == 7
    m = managers(forced)
    assert "f:backoffLimit" in m[("other", "Apply")]["f:spec"]["f:runPolicy"]
    assert "f:backoffLimit" not in m[("kubectl", "Apply")]["f:spec"]["f:runPolicy"]
    # Now kubectl leaves backoffLimit out: "other" still owns it, so it stays.
    lean = job(marker, deadline=None)
    del lean["spec"]["runPolicy"]["backoffLimit"]
    apply(server, tmp_path, lean)
    assert server.json("get", "pytorchjob", "ssa")["spec"]["runPolicy"]["backoffLimit"] == 7

    # Ordinary writes record an Update entry for their manager.
    server.kubectl("label", "pytorchjob", "ssa", "extra=1")
    p = server.kubectl("get", "pytorchjob", "ssa", "-o", "yaml", "--show-managed-fields")
    assert "manager: kubectl-label" in p.stdout and "operation: Update" in p.stdout
    assert "manager: other" in p.stdout and "operation: Apply" in p.stdout


def test_apply_admission_dry_run_and_errors(server, tmp_path, marker):
    # dryRun: nothing stored.
    p = apply(server, tmp_path, job(marker), "--dry-run=server")
    assert "serverside-applied (server dry run)" in p.stdout
    assert server.kubectl("get", "pytorchjob", "ssa", check=False).returncode != 0
    # Validation applies as for a create: a negative backoffLimit is refused.
    bad = job(marker)
    bad["spec"]["runPolicy"]["backoffLimit"] = "many"
    p = apply(server, tmp_path, bad, check=False)
    assert p.returncode != 0 and "backoffLimit" in p.stderr, p.stderr
    # Defaults are applied on create as a POST does.
    apply(server, tmp_path, job(marker))
    created = server.json("get", "pytorchjob", "ssa")
    assert created["spec"]["runPolicy"]["cleanPodPolicy"] == "None"
    # fieldManager is required; the body must name the URL's object.
    body = json.dumps(job(marker))
    st, status = raw(server, "PATCH", BASE + "/ssa", body, "application/apply-patch+yaml")
    assert st == 400 and "fieldManager is required" in status["message"], status
    st, status = raw(server, "PATCH", BASE + "/other?fieldManager=x", body,
                     "application/apply-patch+yaml")
    assert st == 400, status
    # A conflict is a Status with FieldManagerConflict causes.
    other = job(marker, backoff=9)
    st, status = raw(server, "PATCH", BASE + "/ssa?fieldManager=x", json.dumps(other),
                     "application/apply-patch+yaml")
    assert st == 409 and status["reason"] == "Conflict", status
    assert status["details"]["causes"] == [{
        "reason": "FieldManagerConflict", "message": 'conflict with "kubectl" using kubeflow.org/v1',
        "field": ".spec.runPolicy.backoffLimit"}]


def test_apply_merges_a_service_s_ports_by_key(server, tmp_path):
    def svc(ports):
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"},
                         "ports": [{"name": f"p{p}", "port": p} for p in ports]}}
    apply(server, tmp_path, svc([80]), "--field-manager=a")
    apply(server, tmp_path, svc([90]), "--field-manager=b", "--force-conflicts")
    ports = sorted(p["port"] for p in server.json("get", "service", "web")["spec"]["ports"])
    assert ports == [80, 90]
    # a gives up its port: it goes, b's stays.
    apply(server, tmp_path, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                             "spec": {"selector": {"app": "web"}}}, "--field-manager=a")
    assert [p["port"] for p in server.json("get", "service", "web")["spec"]["ports"]] == [90]


def test_python_client_server_side_apply(server, marker):
    from kubernetes import config
    from kubernetes.dynamic import DynamicClient
    dyn = DynamicClient(config.new_client_from_config(str(server.kubeconfig)))
    jobs = dyn.resources.get(api_version="kubeflow.org/v1", kind="PyTorchJob")
    # This client sends an apply body only as text (a dict fails before any request).
    out = jobs.server_side_apply(body=yaml.safe_dump(job(marker)), name="ssa",
                                 namespace="default", field_manager="py")
    assert out.metadata.managedFields[0].manager == "py"
    out = jobs.server_side_apply(body=yaml.safe_dump(job(marker, backoff=5)), name="ssa",
                                 namespace="default", field_manager="py")
    assert out.spec.runPolicy.backoffLimit == 5
