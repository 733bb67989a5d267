"""`trainyard server` driven by the real kubectl as against a cluster with Kubeflow installed:
explain, foreground/orphan deletion, -o yaml round trips, wide tables, events, describe, the
errors of bad input (with nothing stored), namespaces, and the options of `kubectl logs` on a
container that restarted in place."""
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml

from conftest import expected_master_addr, is_pod_address, kill_all, processes_with, wait_until
from jobs import container, pytorchjob
from server_fixture import KUBECTL, Server

BASE = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs"
# A container that takes two seconds to stop on SIGTERM, so a deletion can be seen in progress.
SLOW_STOP = "trap 'sleep 2; exit 0' TERM; sleep 300 & wait; sleep 2"


@pytest.fixture
def server(tmp_path, marker, monkeypatch):
    # The node agent restarts a failed container after this back-off (default 10 s).
    monkeypatch.setenv("TRAINYARD_RESTART_BACKOFF_MS", "100")
    s = Server(tmp_path / "data", ["--gpus", "2"]).start()
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def request(server, method, path, body=None, content_type="application/json"):
    """(status, decoded JSON body) of a raw HTTP request."""
    req = urllib.request.Request(server.url + path, data=body, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def job_names(server, ns="default"):
    return [i["metadata"]["name"] for i in server.json("get", "pytorchjobs", "-n", ns)["items"]]


def pod_names(server, ns="default"):
    return [i["metadata"]["name"] for i in server.json("get", "pods", "-n", ns)["items"]]


def running(server, pods, ns="default"):
    items = server.json("get", "pods", "-n", ns)["items"]
    phases = {i["metadata"]["name"]: i.get("status", {}).get("phase") for i in items}
    return all(phases.get(p) == "Running" for p in pods)


def apply(server, tmp_path, text, *args, check=True):
    path = tmp_path / f"m{time.monotonic_ns()}.yaml"
    path.write_text(text)
    return server.kubectl("apply", "-f", str(path), *args, check=check)


@pytest.mark.parametrize("kind,field,replica", [("pytorchjob", "pytorchReplicaSpecs", "Master"),
                                                ("tfjob", "tfReplicaSpecs", "Chief")])
def test_explain(server, kind, field, replica):
    spec = server.kubectl("explain", f"{kind}.spec").stdout
    assert re.search(r"^KIND:\s+" + ("PyTorchJob" if kind == "pytorchjob" else "TFJob"), spec,
                     re.M), spec
    assert re.search(r"^FIELD:\s+spec <Object>", spec, re.M), spec
    assert re.search(rf"^  {field}\t<map\[string\]Object> -required-$", spec, re.M), spec
    assert re.search(r"^  runPolicy\t<Object>$", spec, re.M), spec
    # Every field has a description under it.
    assert "Replica specs by type" in spec and replica in spec, spec
    rs = server.kubectl("explain", f"{kind}.spec.{field}").stdout
    assert re.search(rf"^FIELD:\s+{field} <map\[string\]Object>", rs, re.M), rs
    for f in ("replicas\t<integer>", "restartPolicy\t<string>", "template\t<Object>"):
        assert "  " + f in rs, rs
    assert "enum: Always, ExitCode, Never, OnFailure" in rs, rs
    deep = server.kubectl("explain", f"{kind}.spec.{field}.template.spec.containers.image").stdout
    assert "FIELD: image <string>" in deep, deep
    bad = server.kubectl("explain", f"{kind}.spec.nope", check=False)
    assert bad.returncode != 0 and 'field "nope" does not exist' in bad.stderr, bad.stderr


def test_delete_foreground_waits_for_the_pods_and_orphan_leaves_them(server, marker, tmp_path):
    apply(server, tmp_path, pytorchjob("fg", marker, master_cmd=SLOW_STOP, worker_cmd=SLOW_STOP,
                                       grace=10))
    apply(server, tmp_path, pytorchjob("orph", marker, master_cmd="sleep 300"))
    pods = ["fg-master-0", "fg-worker-0", "orph-master-0"]
    assert wait_until(lambda: running(server, pods), 20), server.kubectl("get", "pods").stdout

    server.kubectl("delete", "pytorchjob", "fg", "--cascade=foreground", "--wait=false")
    job = server.json("get", "pytorchjob", "fg")
    # The job stays, marked, while its pods stop (each takes 2 s on SIGTERM).
    assert job["metadata"].get("deletionTimestamp"), job["metadata"]
    assert "foregroundDeletion" in job["metadata"].get("finalizers", []), job["metadata"]
    assert {"fg-master-0", "fg-worker-0"} <= set(pod_names(server))
    table = server.kubectl("get", "pods").stdout
    assert re.search(r"^fg-master-0\s+\S+\s+Terminating", table, re.M), table
    # Then the pods go, then the job; kubectl delete (waiting) returns once it has gone.
    server.kubectl("delete", "pytorchjob", "fg", "--cascade=foreground", "--ignore-not-found",
                   timeout=30)
    assert "fg" not in job_names(server)
    assert not [p for p in pod_names(server) if p.startswith("fg-")], pod_names(server)

    out = server.kubectl("delete", "pytorchjob", "orph", "--cascade=orphan").stdout
    assert 'pytorchjob.kubeflow.org "orph" deleted' in out, out
    assert "orph" not in job_names(server)
    # No sleep: the garbage collector runs inside the delete (the store's cascade), so the
    # answer above came after it; had it taken the pod, the pod would be gone or marked now,
    # and the node agent stops a pod's processes only once it is marked.
    pod = server.json("get", "pod", "orph-master-0")
    assert not pod["metadata"].get("deletionTimestamp"), pod["metadata"]
    assert pod["status"]["phase"] == "Running" and not pod["metadata"].get("ownerReferences")
    assert processes_with(marker), "the orphaned pod's process is gone"
    server.kubectl("delete", "pod", "orph-master-0", "--grace-period=1", timeout=30)
    assert wait_until(lambda: not processes_with(marker), 15), processes_with(marker)


def test_yaml_round_trip_wide_events_describe(server, marker, tmp_path):
    apply(server, tmp_path, pytorchjob("rt", marker, master_cmd="sleep 300",
                                       worker_cmd="sleep 300"))
    assert wait_until(lambda: running(server, ["rt-master-0", "rt-worker-0"]), 20)
    # Let the controllers' status writes settle: the output carries a resourceVersion, and an
    # apply of a stale one is a conflict (as against any API server).
    assert wait_until(lambda: (server.json("get", "pytorchjob", "rt").get("status", {})
                               .get("replicaStatuses", {}).get("Worker", {})
                               .get("active")) == 1, 20)
    time.sleep(0.5)
    before = server.json("get", "pytorchjob", "rt")
    text = server.kubectl("get", "pytorchjob", "rt", "-o", "yaml").stdout
    assert yaml.safe_load(text)["spec"] == before["spec"]
    out = apply(server, tmp_path, text).stdout
    assert "pytorchjob.kubeflow.org/rt" in out, out
    after = server.json("get", "pytorchjob", "rt")
    assert after["spec"] == before["spec"] and after["status"] == before["status"]
    for k in ("uid", "generation", "creationTimestamp", "labels"):
        assert after["metadata"].get(k) == before["metadata"].get(k), k
    # Its own copy again: still "configured" (the copy's resourceVersion and the recorded
    # last-applied configuration differ, as on any API server), and still the same object.
    again = server.kubectl("get", "pytorchjob", "rt", "-o", "yaml").stdout
    apply(server, tmp_path, again)
    assert server.json("get", "pytorchjob", "rt")["metadata"]["generation"] == \
        before["metadata"]["generation"]

    wide = server.kubectl("get", "pods", "-o", "wide").stdout
    assert re.search(r"^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+"
                     r"READINESS GATES$", wide, re.M), wide
    for p in ("rt-master-0", "rt-worker-0"):
        m = re.search(rf"^{p}\s+1/1\s+Running\s+0\s+\S+\s+(\d+\.\d+\.\d+\.\d+)\s+\S+\s+<none>\s+"
                      r"<none>$", wide, re.M)
        assert m and is_pod_address(m[1]), wide

    events = server.kubectl("get", "events").stdout
    assert re.search(r"^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$", events, re.M), events
    assert re.search(r"Normal\s+SuccessfulCreatePod\s+pytorchjob/rt\s+Created pod: rt-master-0",
                     events), events
    assert re.search(r"Normal\s+Scheduled\s+pod/rt-worker-0\s+Successfully assigned "
                     r"default/rt-worker-0 to", events), events
    fs = server.json("get", "events", "--field-selector", "involvedObject.name=rt-master-0")
    assert fs["items"] and all(e["involvedObject"]["name"] == "rt-master-0" for e in fs["items"])

    d = server.kubectl("describe", "pod", "rt-master-0").stdout
    ip = server.json("get", "pod", "rt-master-0")["status"]["podIP"]
    assert is_pod_address(ip), ip
    master_addr = expected_master_addr(ip, "rt-master-0")
    ip = re.escape(ip)
    for pat in (r"^Name:\s+rt-master-0$", r"^Namespace:\s+default$", r"^Status:\s+Running$",
                r"^Controlled By:\s+PyTorchJob/rt$", rf"^IP:\s+{ip}$",
                r"training.kubeflow.org/replica-type=master", r"^    State:\s+Running$",
                r"^    Restart Count:\s+0$", r"^    Port:\s+23456/TCP$",
                r"^    Host Port:\s+0/TCP$", r"^      TY_MARKER:\s+" + marker,
                rf"^      MASTER_ADDR:\s+{re.escape(master_addr)}$", r"^  Ready\s+True\s*$",
                r"Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned"):
        assert re.search(pat, d, re.M), (pat, d)
    server.kubectl("delete", "pytorchjob", "rt", timeout=30)


def test_bad_input_is_refused_and_stores_nothing(server, marker, tmp_path):
    def stored():
        return job_names(server)

    # Malformed YAML: kubectl's own parse error, nothing sent.
    r = apply(server, tmp_path, "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata:\n"
                                "  name: bad\n spec: [\n", check=False)
    assert r.returncode == 1 and re.search(r"error parsing .*: error converting YAML to JSON: "
                                           r"yaml: line \d+:", r.stderr), r.stderr
    # Malformed JSON over raw HTTP: 400 BadRequest.
    st, body = request(server, "POST", BASE, b'{"apiVersion": "kubeflow.org/v1", "kind": ')
    assert st == 400 and body["kind"] == "Status" and body["reason"] == "BadRequest", body
    # A kind the server does not serve: kubectl's message against a cluster without the CRD.
    for api, kind in (("kubeflow.org/v1", "MPIJob"), ("kubeflow.org/v2", "PyTorchJob")):
        r = apply(server, tmp_path, f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: m\n"
                                    "spec: {}\n", check=False)
        assert r.returncode == 1, r
        assert f'no matches for kind "{kind}" in version "{api}"' in r.stderr, r.stderr
        assert "ensure CRDs are installed first" in r.stderr, r.stderr
    # An invalid name: 422 naming the field.
    r = apply(server, tmp_path, pytorchjob("Bad_Name", marker, master_cmd="true"), check=False)
    assert r.returncode == 1 and 'The PyTorchJob "Bad_Name" is invalid: metadata.name: ' \
        'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of' in r.stderr, \
        r.stderr
    st, body = request(server, "POST", BASE, pytorchjob("Bad_Name", marker,
                                                        master_cmd="true").encode())
    assert st == 422 and body["reason"] == "Invalid", body
    assert body["details"]["causes"][0]["field"] == "metadata.name", body
    # A body over the limit (3 MiB): 413.
    big = json.loads(pytorchjob("big", marker, master_cmd="true"))
    big["metadata"]["annotations"] = {"pad": "x" * (3 * 1024 * 1024 + 10)}
    st, body = request(server, "POST", BASE, json.dumps(big).encode())
    assert st == 413 and body["reason"] == "RequestEntityTooLarge", body
    # Strict field validation (kubectl's default, and --validate=strict): the field is named.
    unknown = json.loads(pytorchjob("unk", marker, master_cmd="true"))
    unknown["spec"]["pytorchReplicaSpecs"]["Master"]["bogus"] = 3
    r = apply(server, tmp_path, json.dumps(unknown), "--validate=strict", check=False)
    assert r.returncode == 1 and 'strict decoding error: unknown field ' \
        '"spec.pytorchReplicaSpecs.Master.bogus"' in r.stderr, r.stderr
    assert stored() == []

    # A stale copy replaced: 409 Conflict, the newer object kept.
    apply(server, tmp_path, pytorchjob("ok", marker, master_cmd="sleep 300"))
    old = tmp_path / "old.yaml"
    old.write_text(server.kubectl("get", "pytorchjob", "ok", "-o", "yaml").stdout)
    server.kubectl("label", "pytorchjob", "ok", "team=b")
    r = server.kubectl("replace", "-f", str(old), check=False)
    assert r.returncode == 1 and 'Error from server (Conflict): error when replacing ' in r.stderr \
        and 'Operation cannot be fulfilled on pytorchjobs.kubeflow.org "ok": the object has ' \
        'been modified; please apply your changes to the latest version and try again' \
        in r.stderr, r.stderr
    assert server.json("get", "pytorchjob", "ok")["metadata"]["labels"] == {"team": "b"}
    # A merge patch that would make the object invalid: 422, the object unchanged.
    before = server.json("get", "pytorchjob", "ok")
    r = server.kubectl("patch", "pytorchjob", "ok", "--type", "merge", "-p",
                       '{"spec":{"pytorchReplicaSpecs":{"Master":{"replicas":-1}}}}', check=False)
    assert r.returncode == 1 and 'The PyTorchJob "ok" is invalid: ' in r.stderr and \
        'spec.pytorchReplicaSpecs.Master.replicas: Invalid value: -1: must be greater than ' \
        'or equal to 0' in r.stderr, r.stderr
    after = server.json("get", "pytorchjob", "ok")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]
    assert stored() == ["ok"]
    server.kubectl("delete", "pytorchjob", "ok", timeout=30)


NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n  labels: {a: b}\n"


def test_namespace_apply_job_and_delete(server, marker, tmp_path):
    assert "namespace/team created" in apply(server, tmp_path, NAMESPACE).stdout
    assert "unchanged" in apply(server, tmp_path, NAMESPACE).stdout
    ns = server.json("get", "namespace", "team")
    assert ns["status"]["phase"] == "Active" and ns["metadata"]["labels"] == {"a": "b"}
    apply(server, tmp_path, pytorchjob("nsjob", marker, master_cmd=SLOW_STOP,
                                       worker_cmd="sleep 300", grace=10), "-n", "team")
    pods = ["nsjob-master-0", "nsjob-worker-0"]
    assert wait_until(lambda: running(server, pods, "team"), 20)
    assert pod_names(server) == []  # nothing of it in default

    server.kubectl("delete", "namespace", "team", "--wait=false")
    ns = server.json("get", "namespace", "team")
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    r = apply(server, tmp_path, pytorchjob("late", marker, master_cmd="true"), "-n", "team",
              check=False)
    assert r.returncode == 1 and "because it is being terminated" in r.stderr, r.stderr
    # kubectl delete waits (watching from its list) until the namespace has gone.
    server.kubectl("delete", "namespace", "team", "--ignore-not-found", timeout=20)
    assert "team" not in [i["metadata"]["name"] for i in server.json("get", "ns")["items"]]
    assert server.json("get", "pytorchjobs", "-A")["items"] == []
    assert server.json("get", "pods", "-A")["items"] == []
    assert wait_until(lambda: not processes_with(marker), 15), processes_with(marker)


def test_kubectl_create_namespace(server):
    # kubectl sends this one as protobuf (client-go's typed clients prefer it for built-in kinds).
    server.kubectl("create", "namespace", "made")
    assert server.json("get", "namespace", "made")["status"]["phase"] == "Active"
    r = server.kubectl("create", "namespace", "made", check=False)
    assert r.returncode != 0 and 'namespaces "made" already exists' in r.stderr, r.stderr
    r = server.kubectl("create", "namespace", "Bad_Name", check=False)
    assert r.returncode != 0 and "metadata.name: Invalid value" in r.stderr, r.stderr


def test_logs_options_on_a_restarted_container(server, marker, tmp_path):
    flag = tmp_path / "ran-once"
    cmd = (f"echo one; echo two; echo three; if [ ! -e {flag} ]; then touch {flag}; "
           "echo first-run; exit 3; fi; echo second-run; sleep 300")
    c = container(cmd, marker, name="tensorflow")
    job = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "tfl"},
           "spec": {"tfReplicaSpecs": {"Worker": {
               "replicas": 1, "restartPolicy": "OnFailure",
               "template": {"spec": {"containers": [c]}}}}}}
    apply(server, tmp_path, json.dumps(job))
    pod = "tfl-worker-0"

    def restarted():
        p = server.json("get", "pod", pod)
        cs = p.get("status", {}).get("containerStatuses", [])
        return cs and cs[0]["restartCount"] == 1 and "running" in cs[0]["state"]

    assert wait_until(restarted, 20), server.kubectl("get", "pod", pod, "-o", "yaml").stdout
    assert wait_until(lambda: "second-run" in server.kubectl("logs", pod).stdout, 10)
    table = server.kubectl("get", "pod", pod).stdout
    assert re.search(rf"^{pod}\s+1/1\s+Running\s+1 \(\S+ ago\)", table, re.M), table

    assert server.kubectl("logs", pod).stdout == "one\ntwo\nthree\nsecond-run\n"
    prev = server.kubectl("logs", pod, "--previous").stdout
    assert prev == "one\ntwo\nthree\nfirst-run\n", prev
    assert server.kubectl("logs", pod, "--tail=2").stdout == "three\nsecond-run\n"
    assert server.kubectl("logs", pod, "-p", "--tail=1").stdout == "first-run\n"
    assert server.kubectl("logs", pod, "-c", "tensorflow", "--tail=1").stdout == "second-run\n"
    ts = server.kubectl("logs", pod, "--timestamps", "--tail=2").stdout.splitlines()
    assert len(ts) == 2, ts
    for line, text in zip(ts, ("three", "second-run")):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z " + text, line), ts
    assert server.kubectl("logs", pod, "--since=1h").stdout.endswith("second-run\n")
    # The last line ages past 1 s (the wait is on the clock, not on the server).
    assert wait_until(lambda: server.kubectl("logs", pod, "--since=1s").stdout == "", 5)
    r = server.kubectl("logs", pod, "-c", "nope", check=False)
    assert r.returncode == 1 and "container nope is not valid for pod tfl-worker-0" in r.stderr, r
    desc = server.kubectl("describe", "pod", pod).stdout
    assert re.search(r"Last State:\s+Terminated\n\s+Reason:\s+Error\n\s+Exit Code:\s+3", desc), desc
    server.kubectl("delete", "tfjob", "tfl", timeout=30)


def test_get_answers_a_table_in_one_request_whatever_the_chunk_size(server, marker):
    """kubectl pages through client-go's rate limiter (5 requests a second): its Table comes
    in one answer however small --chunk-size is, while a list of objects is paged as asked."""
    for i in range(30):
        job = json.loads(pytorchjob(f"many-{i:02d}", marker, master_cmd="sleep 300"))
        job["spec"]["runPolicy"] = {"suspend": True}
        status, _ = request(server, "POST", BASE, json.dumps(job).encode())
        assert status == 201
    p = server.kubectl("get", "pytorchjobs", "--chunk-size=4", "-v=6")
    rows = [line.split()[0] for line in p.stdout.splitlines()[1:]]
    assert rows == [f"many-{i:02d}" for i in range(30)], p.stdout
    gets = [line for line in p.stderr.splitlines()
            if "GET" in line and "/pytorchjobs" in line and "round_trippers" in line]
    assert len(gets) == 1, gets
    assert "limit=4" in gets[0], gets
    # -o name lists objects (no Table), paged by the limit: 8 requests
    p = server.kubectl("get", "pytorchjobs", "--chunk-size=4", "-o", "name", "-v=6")
    assert len(p.stdout.split()) == 30
    gets = [line for line in p.stderr.splitlines()
            if "GET" in line and "/pytorchjobs" in line and "round_trippers" in line]
    assert len(gets) == 8, gets


def test_services_suspend_and_jobs_managed_elsewhere(server, marker):
    """The operator's headless services as a cluster stores them; suspending a job deletes
    its services with its pods; a job that another controller manages is left alone."""
    job = json.loads(pytorchjob("svc", marker, master_cmd="sleep 300"))
    assert request(server, "POST", BASE, json.dumps(job).encode())[0] == 201
    assert wait_until(lambda: running(server, ["svc-master-0"]), 30)
    svc = server.json("get", "service", "svc-master-0")
    assert svc["spec"] == {
        "clusterIP": "None", "clusterIPs": ["None"], "internalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
        "type": "ClusterIP", "selector": svc["metadata"]["labels"],
        "ports": [{"name": "pytorchjob-port", "port": 23456, "protocol": "TCP",
                   "targetPort": 23456}]}, svc
    pod = server.json("get", "pod", "svc-master-0")
    assert {"name": "pytorchjob-port", "containerPort": 23456, "protocol": "TCP"} in \
        pod["spec"]["containers"][0]["ports"], pod["spec"]
    row = server.kubectl("get", "service", "svc-master-0", "--no-headers").stdout.split()
    assert row[:5] == ["svc-master-0", "ClusterIP", "None", "<none>", "23456/TCP"], row
    # A service made through the API gets the same defaults.
    plain = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "plain"},
             "spec": {"clusterIP": "None", "ports": [{"name": "80-8080", "port": 80,
                                                       "targetPort": 8080}]}}
    assert request(server, "POST", "/api/v1/namespaces/default/services",
                   json.dumps(plain).encode())[0] == 201
    plain = server.json("get", "service", "plain")["spec"]
    assert plain["ports"][0] == {"name": "80-8080", "port": 80, "protocol": "TCP",
                                 "targetPort": 8080}, plain
    assert plain["sessionAffinity"] == "None" and plain["ipFamilyPolicy"] == "SingleStack", plain

    server.kubectl("patch", "pytorchjob", "svc", "--type=merge",
                   "-p", '{"spec": {"runPolicy": {"suspend": true}}}')
    gone = lambda: server.kubectl("get", "service", "svc-master-0", check=False).returncode != 0
    assert wait_until(lambda: "svc-master-0" not in pod_names(server) and gone(), 30)

    other = json.loads(pytorchjob("elsewhere", marker, master_cmd="sleep 300"))
    other["spec"]["runPolicy"] = {"managedBy": "kueue.x-k8s.io/multikueue"}
    assert request(server, "POST", BASE, json.dumps(other).encode())[0] == 201
    # A job created after it runs: the controller has passed it by.
    after = json.loads(pytorchjob("after", marker, master_cmd="sleep 300"))
    assert request(server, "POST", BASE, json.dumps(after).encode())[0] == 201
    assert wait_until(lambda: running(server, ["after-master-0"]), 30)
    assert "status" not in server.json("get", "pytorchjob", "elsewhere")
    assert not [p for p in pod_names(server) if p.startswith("elsewhere-")]
    assert server.kubectl("get", "service", "elsewhere-master-0", check=False).returncode != 0


def test_persistent_volume_claims(server, marker, tmp_path):
    """Claims are provisioned as directories of the data dir and mounted by the pods that name
    them; kubectl prints them as against a cluster; a pod waits for its claim; deleting a
    claim deletes the volume it was provisioned with, and its directory."""
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "2Gi"}}}}
    server.kubectl("apply", "-f", "-", input=json.dumps(claim))
    assert wait_until(lambda: server.json("get", "pvc", "data").get("status", {})
                      .get("phase") == "Bound", 10)
    pvc = server.json("get", "pvc", "data")
    volume = pvc["spec"]["volumeName"]
    assert volume == "pvc-" + pvc["metadata"]["uid"], pvc
    assert pvc["spec"]["storageClassName"] == "standard"
    assert pvc["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                             "capacity": {"storage": "2Gi"}}, pvc
    out = server.kubectl("get", "pv,pvc").stdout.splitlines()
    assert out[0].split() == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY",
                              "STATUS", "CLAIM", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS",
                              "REASON", "AGE"], out
    assert out[1].split()[:8] == [f"persistentvolume/{volume}", "2Gi", "RWO", "Delete",
                                  "Bound", "default/data", "standard", "<unset>"], out
    assert out[4].split()[:7] == ["persistentvolumeclaim/data", "Bound", volume, "2Gi", "RWO",
                                  "standard", "<unset>"], out
    directory = os.path.join(server.data_dir, "volumes", volume)
    assert os.path.isdir(directory)

    # One pod writes, the job's other pod reads what it wrote.
    mnt = str(tmp_path / "mnt")

    def replica(cmd):
        return {"replicas": 1, "restartPolicy": "Never", "template": {"spec": {
            "containers": [container(cmd, marker) | {
                "volumeMounts": [{"name": "d", "mountPath": mnt}]}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}}
    job = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "io"},
           "spec": {"pytorchReplicaSpecs": {
               "Worker": replica(f"echo written > {mnt}/f"),
               "Master": replica(f"while [ ! -s {mnt}/f ]; do sleep 0.05; done; cat {mnt}/f")}}}
    server.kubectl("apply", "-f", "-", input=json.dumps(job))
    assert wait_until(lambda: server.kubectl("get", "pytorchjob", "io", "--no-headers")
                      .stdout.split()[1:2] == ["Succeeded"], 30)
    assert server.kubectl("logs", "io-master-0").stdout == "written\n"
    assert open(os.path.join(directory, "f")).read() == "written\n"

    # A pod whose claim does not exist waits, saying so.
    lone = json.loads(pytorchjob("lone", marker, master_cmd="true"))
    spec = lone["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    spec["volumes"] = [{"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "d", "mountPath": mnt}]
    server.kubectl("apply", "-f", "-", input=json.dumps(lone))

    def waiting():
        pods = server.json("get", "pods", "-l", "training.kubeflow.org/job-name=lone")["items"]
        conds = pods[0].get("status", {}).get("conditions", []) if pods else []
        return [c for c in conds if c["type"] == "PodScheduled" and c["status"] == "False"]
    assert wait_until(waiting, 10)
    assert waiting()[0]["message"] == 'persistentvolumeclaim "nope" not found', waiting()
    # ... and runs once the claim is there.
    nope = dict(claim, metadata={"name": "nope"})
    server.kubectl("apply", "-f", "-", input=json.dumps(nope))
    assert wait_until(lambda: server.kubectl("get", "pytorchjob", "lone", "--no-headers")
                      .stdout.split()[1:2] == ["Succeeded"], 30)

    # A volume made by hand binds to a claim of its class; Retain keeps it, Released.
    manual = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "manual"},
              "spec": {"accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                       "capacity": {"storage": "5Gi"}, "storageClassName": "",
                       "hostPath": {"path": str(tmp_path / "manual")}}}
    server.kubectl("apply", "-f", "-", input=json.dumps(manual))
    assert wait_until(lambda: server.json("get", "pv", "manual").get("status", {})
                      .get("phase") == "Available", 10)
    byhand = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "byhand"},
              "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "",
                       "resources": {"requests": {"storage": "1Gi"}}}}
    server.kubectl("apply", "-f", "-", input=json.dumps(byhand))
    assert wait_until(lambda: server.json("get", "pvc", "byhand")["spec"].get("volumeName")
                      == "manual", 10)
    assert server.json("get", "pv", "manual")["spec"]["claimRef"]["name"] == "byhand"
    server.kubectl("delete", "pvc", "byhand")
    assert wait_until(lambda: server.json("get", "pv", "manual")["status"]["phase"]
                      == "Released", 10)

    # A volume pre-bound to a claim by name takes it (and its uid); deleting it under the
    # claim leaves the claim Lost.
    pre = json.loads(json.dumps(manual))
    pre["metadata"]["name"] = "pre"
    pre["spec"]["claimRef"] = {"namespace": "default", "name": "want"}
    server.kubectl("apply", "-f", "-", input=json.dumps(pre))
    want = dict(byhand, metadata={"name": "want"})
    server.kubectl("apply", "-f", "-", input=json.dumps(want))
    assert wait_until(lambda: server.json("get", "pvc", "want").get("status", {})
                      .get("phase") == "Bound", 10)
    bound = server.json("get", "pv", "pre")
    assert bound["spec"]["claimRef"]["uid"] == server.json("get", "pvc", "want")["metadata"]["uid"]
    assert bound["status"]["phase"] == "Bound", bound
    server.kubectl("delete", "pv", "pre")
    assert wait_until(lambda: server.json("get", "pvc", "want")["status"]["phase"] == "Lost", 10)

    # Deleting the provisioned claim deletes its volume and the directory.
    server.kubectl("delete", "pytorchjob", "io")
    server.kubectl("delete", "pvc", "data")
    assert wait_until(lambda: server.kubectl("get", "pv", volume, check=False).returncode != 0
                      and not os.path.exists(directory), 20)
    # Bad claims are refused as the API server refuses them.
    bad = dict(claim, metadata={"name": "bad"}, spec={"accessModes": []})
    r = server.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert r.returncode == 1 and 'The PersistentVolumeClaim "bad" is invalid' in r.stderr and \
        "spec.accessModes: Required value: at least 1 access mode is required" in r.stderr and \
        "spec.resources[storage]: Required value" in r.stderr, r.stderr
