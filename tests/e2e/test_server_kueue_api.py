"""`trainyard server` serving the Kueue API (kueue.x-k8s.io/v1beta1) and scheduling.k8s.io/v1
PriorityClass to the real kubectl, as a cluster with Kueue v0.9-v0.10 installed: apply (twice:
the second is a no-op), get with Kueue's columns, explain, describe, short names, discovery,
the webhook's 422 for an invalid ClusterQueue (nothing stored), a Workload's status
subresource, strategic merge patches of a PriorityClass, deletion."""
import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import trainyard_bin
from server_fixture import Server

QUEUES = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata:
  name: default-flavor
spec:
  nodeLabels: {trainyard.dev/pool: default}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata:
  name: team-a
spec:
  namespaceSelector: {}
  cohort: research
  queueingStrategy: StrictFIFO
  resourceGroups:
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: default-flavor
      resources:
      - {name: cpu, nominalQuota: 8, borrowingLimit: 4}
      - {name: memory, nominalQuota: 32Gi, lendingLimit: 16Gi}
      - {name: nvidia.com/gpu, nominalQuota: 2}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata:
  name: user-queue
spec:
  clusterQueue: team-a
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: WorkloadPriorityClass
metadata:
  name: urgent
value: 10000
description: deadline work
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high-pods
value: 1000
description: pods that go first
"""

WORKLOAD = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: Workload
metadata:
  name: job-a
spec:
  queueName: user-queue
  priorityClassName: urgent
  priority: 10000
  priorityClassSource: kueue.x-k8s.io/workloadpriorityclass
  podSets:
  - count: 2
    template:
      spec:
        containers:
        - {name: c, image: busybox, resources: {requests: {cpu: "1"}}}
"""


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    assert s.stop() == 0
    s.reap()


def apply(server, tmp_path, text, *args, check=True, name="m.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return server.kubectl("apply", "-f", str(path), *args, check=check)


def request(server, method, path, body=None, content_type="application/json"):
    req = urllib.request.Request(server.url + path, data=body, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def header_and_rows(out):
    lines = [l.split() for l in out.strip().splitlines()]
    return out.strip().splitlines()[0], lines[1:]


def test_apply_twice_get_columns_explain_describe_delete(server, tmp_path):
    out = apply(server, tmp_path, QUEUES).stdout
    assert out.splitlines() == [
        "resourceflavor.kueue.x-k8s.io/default-flavor created",
        "clusterqueue.kueue.x-k8s.io/team-a created",
        "localqueue.kueue.x-k8s.io/user-queue created",
        "workloadpriorityclass.kueue.x-k8s.io/urgent created",
        "priorityclass.scheduling.k8s.io/high-pods created",
    ]
    cq = server.json("get", "clusterqueue", "team-a")
    rv = cq["metadata"]["resourceVersion"]
    # Kueue's defaults (CRD and webhook), and what was written kept as written.
    assert cq["spec"]["flavorFungibility"] == {"whenCanBorrow": "Borrow",
                                               "whenCanPreempt": "TryNextFlavor"}
    assert cq["spec"]["preemption"] == {"withinClusterQueue": "Never",
                                        "reclaimWithinCohort": "Never",
                                        "borrowWithinCohort": {"policy": "Never"}}
    assert cq["spec"]["stopPolicy"] == "None" and cq["spec"]["queueingStrategy"] == "StrictFIFO"
    assert "namespace" not in cq["metadata"]
    # The second apply changes nothing.
    out = apply(server, tmp_path, QUEUES).stdout
    assert all(l.endswith(" unchanged") for l in out.splitlines()), out
    assert len(out.splitlines()) == 5
    assert server.json("get", "cq", "team-a")["metadata"]["resourceVersion"] == rv

    # Columns, as Kueue's CRDs print them (wide ones only with -o wide), plus trainyard's
    # ADMITTED WORKLOADS and USAGE without -o wide (issue 4: get shows usage).
    head, rows = header_and_rows(server.kubectl("get", "clusterqueues").stdout)
    assert head.split() == ["NAME", "COHORT", "PENDING", "WORKLOADS", "ADMITTED", "WORKLOADS",
                            "USAGE", "AGE"]
    assert rows[0][:2] == ["team-a", "research"]
    head, rows = header_and_rows(server.kubectl("get", "cq", "-o", "wide").stdout)
    assert head.split() == ["NAME", "COHORT", "STRATEGY", "PENDING", "WORKLOADS", "ADMITTED",
                            "WORKLOADS", "USAGE", "AGE"]
    assert rows[0][:3] == ["team-a", "research", "StrictFIFO"]
    head, rows = header_and_rows(server.kubectl("get", "localqueues").stdout)
    assert head.split() == ["NAME", "CLUSTERQUEUE", "PENDING", "WORKLOADS", "ADMITTED",
                            "WORKLOADS", "AGE"]
    assert rows[0][:2] == ["user-queue", "team-a"]
    head, rows = header_and_rows(server.kubectl("get", "resourceflavors").stdout)
    assert head.split() == ["NAME", "AGE"] and rows[0][0] == "default-flavor"
    head, rows = header_and_rows(server.kubectl("get", "workloadpriorityclasses").stdout)
    assert head.split() == ["NAME", "VALUE", "AGE"] and rows[0][:2] == ["urgent", "10000"]
    head, rows = header_and_rows(server.kubectl("get", "priorityclasses").stdout)
    assert head.split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    assert rows[0][:3] == ["high-pods", "1000", "false"]
    assert rows[0][4] == "PreemptLowerPriority"
    # All four in one get, and by short names.
    out = server.kubectl("get", "clusterqueues,localqueues,resourceflavors,"
                         "workloadpriorityclasses").stdout
    for name in ["clusterqueue.kueue.x-k8s.io/team-a", "localqueue.kueue.x-k8s.io/user-queue",
                 "resourceflavor.kueue.x-k8s.io/default-flavor",
                 "workloadpriorityclass.kueue.x-k8s.io/urgent"]:
        assert name in out, out
    for short, name in [("cq", "team-a"), ("lq", "user-queue"), ("queue", "user-queue"),
                        ("rf", "default-flavor"), ("flavor", "default-flavor"), ("pc", "high-pods")]:
        assert server.kubectl("get", short, "-o", "name").stdout.strip().endswith("/" + name)
    # Kueue's kinds are not in "all".
    assert "kueue" not in server.kubectl("get", "all").stdout

    out = server.kubectl("explain", "clusterqueue.spec.resourceGroups").stdout
    assert "KIND:       ClusterQueue" in out and "VERSION:    v1beta1" in out
    assert "coveredResources" in out and "flavors" in out
    out = server.kubectl("explain", "workload.spec.podSets.minCount").stdout
    assert "FIELD: minCount <integer>" in out
    out = server.kubectl("explain", "priorityclass.preemptionPolicy").stdout
    assert "GROUP:      scheduling.k8s.io" in out
    out = server.kubectl("describe", "clusterqueue", "team-a").stdout
    assert re.search(r"Cohort: +research", out) and re.search(r"Nominal Quota: +32Gi", out), out

    out = server.kubectl("delete", "-f", str(tmp_path / "m.yaml")).stdout
    assert len(out.splitlines()) == 5 and all(" deleted" in l for l in out.splitlines())
    for kind in ["clusterqueues", "localqueues", "resourceflavors", "workloadpriorityclasses",
                 "priorityclasses"]:
        assert server.json("get", kind)["items"] == []


def test_invalid_clusterqueue_is_refused_with_422_and_not_stored(server, tmp_path):
    bad = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata:
  name: bad
spec:
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: default-flavor
      resources:
      - {name: cpu, nominalQuota: 2, lendingLimit: 3, borrowingLimit: 1}
"""
    p = apply(server, tmp_path, bad, check=False)
    assert p.returncode != 0
    assert 'The ClusterQueue "bad" is invalid' in p.stderr, p.stderr
    lend = "spec.resourceGroups[0].flavors[0].resources[0].lendingLimit"
    assert f'{lend}: Invalid value: "3": must be nil when cohort is empty' in p.stderr
    assert f'{lend}: Invalid value: "3": must be less than or equal to the nominalQuota' in p.stderr
    assert 'spec: Invalid value: "object": borrowingLimit must be nil when cohort is empty' \
        in p.stderr
    assert server.json("get", "clusterqueues")["items"] == []

    # The same as a raw request: a Status with the causes, as Kueue's webhook answers.
    body = json.dumps({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
                       "metadata": {"name": "bad"},
                       "spec": {"cohort": "c", "resourceGroups": [{
                           "coveredResources": ["cpu"], "flavors": [{
                               "name": "f", "resources": [
                                   {"name": "cpu", "nominalQuota": "1", "lendingLimit": "2"}]}]}]}})
    code, st = request(server, "POST", "/apis/kueue.x-k8s.io/v1beta1/clusterqueues",
                       body.encode())
    assert code == 422 and st["reason"] == "Invalid"
    assert st["details"]["kind"] == "ClusterQueue" and st["details"]["group"] == "kueue.x-k8s.io"
    assert st["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": lend,
        "message": 'Invalid value: "2": must be less than or equal to the nominalQuota'}]
    assert server.json("get", "clusterqueues")["items"] == []
    # A flavor whose resources are not in the order of coveredResources.
    body = json.dumps({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
                       "metadata": {"name": "bad"},
                       "spec": {"resourceGroups": [{
                           "coveredResources": ["cpu", "memory"], "flavors": [{
                               "name": "f", "resources": [
                                   {"name": "memory", "nominalQuota": "1"},
                                   {"name": "cpu", "nominalQuota": "1"}]}]}]}})
    code, st = request(server, "POST", "/apis/kueue.x-k8s.io/v1beta1/clusterqueues",
                       body.encode())
    assert code == 422
    assert [c["field"] for c in st["details"]["causes"]] == [
        "spec.resourceGroups[0].flavors[0].resources[0].name",
        "spec.resourceGroups[0].flavors[0].resources[1].name"]
    assert server.json("get", "clusterqueues")["items"] == []


def test_workload_status_subresource(server, tmp_path):
    apply(server, tmp_path, QUEUES)
    server.kubectl("create", "-f", "-", input=WORKLOAD)
    wl = server.json("get", "workload", "job-a")
    assert wl["spec"]["podSets"][0]["name"] == "main" and wl["spec"]["active"] is True
    head, rows = header_and_rows(server.kubectl("get", "wl").stdout)
    assert head.split() == ["NAME", "QUEUE", "RESERVED", "IN", "ADMITTED", "FINISHED", "AGE",
                            "WAITING", "FOR"]
    assert rows[0][:2] == ["job-a", "user-queue"]

    status = {"status": {
        "admission": {"clusterQueue": "team-a", "podSetAssignments": [{
            "name": "main", "flavors": {"cpu": "default-flavor"},
            "resourceUsage": {"cpu": "2"}, "count": 2}]},
        "conditions": [
            {"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved",
             "message": "Quota reserved in ClusterQueue team-a",
             "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Admitted", "status": "True", "reason": "Admitted",
             "message": "The workload is admitted", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        # Written through /status, a spec change is ignored.
    }, "spec": {"queueName": "other"}}
    server.kubectl("patch", "workload", "job-a", "--subresource=status", "--type=merge",
                   "-p", json.dumps(status))
    wl = server.json("get", "workload", "job-a")
    assert wl["status"]["admission"]["clusterQueue"] == "team-a"
    assert wl["spec"]["queueName"] == "user-queue"
    head, rows = header_and_rows(server.kubectl("get", "workloads").stdout)
    assert rows[0][:4] == ["job-a", "user-queue", "team-a", "True"]

    # An admission that does not cover every pod set is refused.
    p = server.kubectl("patch", "workload", "job-a", "--subresource=status", "--type=merge",
                       "-p", json.dumps({"status": {"admission": {"clusterQueue": "team-a",
                                                                  "podSetAssignments": []}}}),
                       check=False)
    assert p.returncode != 0
    assert "status.admission.podSetAssignments: Invalid value: 0: must have the same number " \
        "of podSets as the spec" in p.stderr
    server.kubectl("delete", "workload", "job-a")


def test_priorityclass_strategic_merge_and_discovery(server, tmp_path):
    apply(server, tmp_path, QUEUES)
    # A built-in kind: kubectl sends strategic merge patches for it.
    p = server.kubectl("patch", "priorityclass", "high-pods", "-p",
                       '{"description": "changed", "metadata": {"labels": {"tier": "a"}}}', "-v=8")
    assert "Content-Type: application/strategic-merge-patch+json" in p.stderr
    assert "priorityclass.scheduling.k8s.io/high-pods patched" in p.stdout
    pc = server.json("get", "pc", "high-pods")
    assert pc["description"] == "changed" and pc["metadata"]["labels"] == {"tier": "a"}
    assert pc["value"] == 1000 and pc["preemptionPolicy"] == "PreemptLowerPriority"
    # kubectl's typed client sends a PriorityClass as protobuf.
    out = server.kubectl("create", "priorityclass", "made", "--value=7",
                         "--description=by kubectl", "--preemption-policy=Never").stdout
    assert out.strip() == "priorityclass.scheduling.k8s.io/made created"
    pc = server.json("get", "pc", "made")
    assert (pc["value"], pc["description"], pc["preemptionPolicy"], pc["globalDefault"]) == \
        (7, "by kubectl", "Never", False)
    # A custom resource refuses a strategic merge patch with 415, as the API server does.
    code, st = request(server, "PATCH", "/apis/kueue.x-k8s.io/v1beta1/clusterqueues/team-a",
                       b'{"spec": {"cohort": "x"}}', "application/strategic-merge-patch+json")
    assert code == 415
    # kubectl apply of a changed PriorityClass (strategic) and a changed ClusterQueue (merge).
    out = apply(server, tmp_path, QUEUES.replace("pods that go first", "first")
                .replace("cohort: research", "cohort: dev")).stdout
    assert "priorityclass.scheduling.k8s.io/high-pods configured" in out
    assert "clusterqueue.kueue.x-k8s.io/team-a configured" in out
    assert server.json("get", "cq", "team-a")["spec"]["cohort"] == "dev"
    assert server.json("get", "pc", "high-pods")["description"] == "first"

    # Immutable fields: a PriorityClass's value, a LocalQueue's ClusterQueue.
    p = apply(server, tmp_path, QUEUES.replace("value: 1000\n", "value: 2000\n"), check=False)
    assert p.returncode != 0
    assert "value: Forbidden: may not be changed in an update." in p.stderr, p.stderr
    p = apply(server, tmp_path, QUEUES.replace("clusterQueue: team-a", "clusterQueue: team-b"),
              check=False)
    assert 'spec.clusterQueue: Invalid value: "string": field is immutable' in p.stderr, p.stderr
    assert server.json("get", "pc", "high-pods")["value"] == 1000
    assert server.json("get", "lq", "user-queue")["spec"]["clusterQueue"] == "team-a"

    # Discovery: both groups at their versions, in the aggregated form kubectl reads.
    out = server.kubectl("api-resources", "--api-group=kueue.x-k8s.io", "-o", "wide").stdout
    rows = {l.split()[0]: l for l in out.strip().splitlines()[1:]}
    assert set(rows) == {"admissionchecks", "clusterqueues", "localqueues", "resourceflavors",
                         "workloadpriorityclasses", "workloads"}
    assert "kueue.x-k8s.io/v1beta1" in rows["clusterqueues"] and " cq " in rows["clusterqueues"]
    assert "flavor,flavors,rf" in rows["resourceflavors"]
    assert "true" in rows["workloads"].split() and "false" in rows["clusterqueues"].split()
    out = server.kubectl("api-resources", "--api-group=scheduling.k8s.io").stdout
    assert "priorityclasses" in out and "scheduling.k8s.io/v1" in out
    code, grp = request(server, "GET", "/apis/kueue.x-k8s.io")
    assert code == 200
    assert grp["preferredVersion"] == {"groupVersion": "kueue.x-k8s.io/v1beta1",
                                       "version": "v1beta1"}
    code, lst = request(server, "GET", "/apis/kueue.x-k8s.io/v1beta1")
    names = {r["name"] for r in lst["resources"]}
    assert "workloads/status" in names and "clusterqueues/status" in names
    assert "resourceflavors/status" not in names
    out = server.kubectl("get", "--raw", "/openapi/v3").stdout
    assert "apis/kueue.x-k8s.io/v1beta1" in out and "apis/scheduling.k8s.io/v1" in out


def test_run_takes_kueue_objects_beside_its_jobs(tmp_path):
    """`trainyard run` admits the queues and classes of a manifest (errors included) and ends
    with its jobs: only jobs are waited for."""
    job = """\
---
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: tiny
  labels: {kueue.x-k8s.io/queue-name: user-queue}
spec:
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      template:
        spec:
          containers:
          - {name: pytorch, image: busybox, command: ["true"]}
"""
    path = tmp_path / "all.yaml"
    path.write_text(QUEUES + job)
    p = subprocess.run([trainyard_bin(), "run", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert "PyTorchJob tiny Succeeded" in p.stdout
    assert "ClusterQueue" not in p.stdout
    path.write_text(QUEUES.replace("nominalQuota: 2}", "nominalQuota: -2}") + job)
    p = subprocess.run([trainyard_bin(), "run", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0
    assert "resources[2].nominalQuota: Invalid value: \"-2\": must be greater than or equal " \
        "to 0" in p.stderr, p.stderr


def test_admission_check_kind_validation_and_explain(server, tmp_path):
    ac = """\
apiVersion: kueue.x-k8s.io/v1beta1
kind: AdmissionCheck
metadata:
  name: prov
spec:
  controllerName: %s
  parameters: {apiGroup: kueue.x-k8s.io, kind: ProvisioningRequestConfig, name: %s}
"""
    p = apply(server, tmp_path, ac % ('""', "Bad_Name"), check=False)
    assert p.returncode != 0
    assert "spec.controllerName: Required value" in p.stderr, p.stderr
    assert "spec.parameters.name: Invalid value: \"Bad_Name\"" in p.stderr, p.stderr
    assert server.json("get", "admissionchecks")["items"] == []
    assert "admissioncheck.kueue.x-k8s.io/prov created" in \
        apply(server, tmp_path, ac % ("kueue.x-k8s.io/provisioning-request", "cfg")).stdout
    got = server.json("get", "admissioncheck", "prov")
    assert got["spec"]["retryDelayMinutes"] == 15
    # controllerName is immutable (the CRD's CEL rule).
    p = apply(server, tmp_path, ac % ("example.com/other", "cfg"), check=False)
    assert 'spec.controllerName: Invalid value: "string": field is immutable' in p.stderr, \
        p.stderr
    # Its controller sets Active through the status subresource.
    cond = {"type": "Active", "status": "True", "reason": "Active", "message": "ok",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}
    server.kubectl("patch", "admissioncheck", "prov", "--subresource=status", "--type=merge",
                   "-p", json.dumps({"status": {"conditions": [cond]}}))
    assert server.json("get", "admissioncheck", "prov")["status"]["conditions"][0]["status"] \
        == "True"
    out = server.kubectl("explain", "admissioncheck.spec").stdout
    assert "controllerName" in out and "parameters" in out
    assert "prov" in server.kubectl("get", "admissionchecks").stdout
