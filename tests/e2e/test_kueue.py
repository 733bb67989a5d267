"""Kueue through kubectl against `trainyard server` with virtual GPU nodes and real processes:
two teams sharing a cohort (borrowing, then reclaiming), a large gang that small jobs do not
starve, and a high-priority job preempting a training run that then resumes from its
checkpoint."""
import json
import os
import time

import pytest
import yaml

from conftest import REPO, kill_all, wait_until
from jobs import pytorchjob
from server_fixture import Server

FLAVOR = """
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata: {name: default-flavor}
"""


def cluster_queue(name, gpus, cohort=None, preemption=None, strategy="BestEffortFIFO"):
    spec = {
        "namespaceSelector": {},
        "queueingStrategy": strategy,
        "resourceGroups": [{
            "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
            "flavors": [{"name": "default-flavor", "resources": [
                {"name": "cpu", "nominalQuota": 64},
                {"name": "memory", "nominalQuota": "256Gi"},
                {"name": "nvidia.com/gpu", "nominalQuota": gpus},
            ]}],
        }],
    }
    if cohort:
        spec["cohort"] = cohort
    if preemption:
        spec["preemption"] = preemption
    return json.dumps({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
                       "metadata": {"name": name}, "spec": spec})


def local_queue(ns, name, cq):
    return json.dumps({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
                       "metadata": {"name": name, "namespace": ns},
                       "spec": {"clusterQueue": cq}})


def gpu_job(name, marker, queue, gpus, cmd="sleep 300", workers=0, ns=None, labels=None):
    job = json.loads(pytorchjob(name, marker, master_cmd=cmd,
                                worker_cmd=cmd if workers else None, workers=workers,
                                resources={"requests": {"cpu": "100m", "memory": "64Mi",
                                                        "nvidia.com/gpu": gpus},
                                           "limits": {"nvidia.com/gpu": gpus}},
                                grace=1))
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": queue, **(labels or {})}
    if ns:
        job["metadata"]["namespace"] = ns
    return json.dumps(job)


def apply(server, tmp_path, *docs):
    path = tmp_path / f"apply-{time.monotonic_ns()}.yaml"
    # As YAML documents: kubectl reads a file that starts with "{" as a stream of JSON.
    path.write_text(yaml.safe_dump_all([yaml.safe_load(d) for d in docs]))
    return server.kubectl("apply", "-f", str(path))


def workload(server, ns, job):
    for wl in server.json("get", "workloads", "-n", ns)["items"]:
        if any(r["name"] == job for r in wl["metadata"].get("ownerReferences", [])):
            return wl
    return None


def condition(obj, ctype):
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


def waiting(server, ns, job, message=None):
    """Whether an admission pass has decided the job's workload waits (QuotaReserved=False
    with a message; `message`, when given, is in it): the state that proves it was not
    admitted, where a fixed sleep would only hope so."""
    c = condition(workload(server, ns, job), "QuotaReserved") or {}
    return c.get("status") == "False" and bool(c.get("message")) and \
        (message is None or message in c["message"])


def is_true(obj, ctype):
    c = condition(obj, ctype)
    return bool(c) and c["status"] == "True"


def admitted(server, ns, job):
    wl = workload(server, ns, job)
    return is_true(wl, "Admitted") and not is_true(wl, "Evicted")


def pods_of(server, ns, job):
    return [p for p in server.json("get", "pods", "-n", ns)["items"]
            if p["metadata"].get("labels", {}).get("training.kubeflow.org/job-name") == job]


def running(server, ns, job, n):
    pods = pods_of(server, ns, job)
    return len(pods) == n and all(p.get("status", {}).get("phase") == "Running" for p in pods)


def job_condition(server, ns, job, ctype):
    return is_true(server.json("get", "pytorchjob", job, "-n", ns), ctype)


@pytest.fixture
def start_server(tmp_path, marker):
    servers = []

    def start(nodes):
        s = Server(tmp_path / "data", ["--nodes", nodes]).start()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()
        s.reap()
    kill_all(marker)


def test_two_teams_borrow_then_reclaim(start_server, marker, tmp_path):
    server = start_server("4x{cpu:8,memory:16Gi,nvidia.com/gpu:4}")
    server.kubectl("create", "namespace", "team-a")
    server.kubectl("create", "namespace", "team-b")
    reclaim = {"reclaimWithinCohort": "Any"}
    apply(server, tmp_path, FLAVOR,
          cluster_queue("team-a", 8, cohort="research", preemption=reclaim),
          cluster_queue("team-b", 8, cohort="research", preemption=reclaim),
          local_queue("team-a", "main", "team-a"), local_queue("team-b", "main", "team-b"))

    # Team A asks for 12 GPUs: 8 of its own and 4 borrowed from idle team B.
    apply(server, tmp_path, gpu_job("big-a", marker, "main", 4, workers=2, ns="team-a"))
    assert wait_until(lambda: running(server, "team-a", "big-a", 3), 30), \
        server.kubectl("get", "workloads,pods", "-A", "-o", "wide").stdout
    # Three pods of 4 GPUs: three different nodes, each pod sees its node's four GPUs.
    nodes = {p["spec"]["nodeName"] for p in pods_of(server, "team-a", "big-a")}
    assert len(nodes) == 3
    cq = server.json("get", "clusterqueue", "team-a")
    gpu = [r for r in cq["status"]["flavorsReservation"][0]["resources"]
           if r["name"] == "nvidia.com/gpu"][0]
    assert (gpu["total"], gpu["borrowed"]) == ("12", "4"), cq["status"]
    table = server.kubectl("get", "clusterqueues").stdout
    assert "research" in table and "nvidia.com/gpu 12/8" in table, table

    # Team B wants 8 GPUs, its nominal quota: 4 are free, the rest comes back from team A.
    apply(server, tmp_path, gpu_job("want-b", marker, "main", 4, workers=1, ns="team-b"))
    assert wait_until(lambda: running(server, "team-b", "want-b", 2), 40), \
        server.kubectl("get", "workloads,pods", "-A").stdout
    victim = workload(server, "team-a", "big-a")
    assert condition(victim, "Preempted")["reason"] == "InCohortReclamation", victim["status"]
    assert condition(victim, "Evicted")["reason"] == "Preempted"
    assert wait_until(lambda: not pods_of(server, "team-a", "big-a"), 20)
    job = server.json("get", "pytorchjob", "big-a", "-n", "team-a")
    assert job["spec"]["runPolicy"]["suspend"] is True
    # It waits, saying why, and is back in once team B is done.
    assert wait_until(lambda: "quota" in (condition(workload(server, "team-a", "big-a"),
                                                     "QuotaReserved") or {}).get("message", ""),
                      20), workload(server, "team-a", "big-a")["status"]
    lq = server.json("get", "localqueue", "main", "-n", "team-a")
    assert lq["status"]["pendingWorkloads"] == 1
    # One get shows the usage, the pending counts and why the waiting workload waits.
    table = server.kubectl("get", "clusterqueues,localqueues,workloads", "-A").stdout
    assert "nvidia.com/gpu 8/8" in table and "insufficient unused quota" in table, table
    server.kubectl("delete", "pytorchjob", "want-b", "-n", "team-b", timeout=30)
    assert wait_until(lambda: running(server, "team-a", "big-a", 3), 40), \
        server.kubectl("get", "workloads", "-A", "-o", "yaml").stdout
    wl = workload(server, "team-a", "big-a")
    assert wl["status"]["requeueState"]["count"] == 1
    assert condition(wl, "Evicted")["status"] == "False"


def test_large_gang_is_not_starved_by_small_jobs(start_server, marker, tmp_path):
    server = start_server("2x{cpu:8,memory:16Gi,nvidia.com/gpu:4}")
    # Quota is not the limit here (16 GPUs for 8 real ones): the nodes are.
    apply(server, tmp_path, FLAVOR, cluster_queue("cq", 16),
          local_queue("default", "main", "cq"))
    for i in range(3):
        apply(server, tmp_path, gpu_job(f"small-{i}", marker, "main", 1, cmd="sleep 4"))
    assert wait_until(lambda: all(admitted(server, "default", f"small-{i}") for i in range(3)),
                      20)
    # Best fit: the three 1-GPU pods share one node, the other stays whole.
    nodes = {pods_of(server, "default", f"small-{i}")[0]["spec"]["nodeName"] for i in range(3)}
    assert len(nodes) == 1, nodes
    # /metrics reports it: 4 free GPUs on the whole node, 1 on the partly used one.
    metrics = lambda: server.kubectl("get", "--raw", "/metrics").stdout
    assert wait_until(lambda: 'trainyard_gpus_free{nodes="whole"} 4\n' in metrics(), 10), \
        metrics()
    assert 'trainyard_gpus_free{nodes="partial"} 1\n' in metrics()
    assert "trainyard_gpu_fragmentation 0.200000" in metrics()
    assert 'kueue_admitted_active_workloads{cluster_queue="cq"} 3' in metrics()
    apply(server, tmp_path, gpu_job("gang", marker, "main", 4, cmd="sleep 3", workers=1))
    time.sleep(0.5)
    for i in range(3, 6):
        apply(server, tmp_path, gpu_job(f"small-{i}", marker, "main", 1, cmd="sleep 2"))
    msg = lambda: (condition(workload(server, "default", "gang"), "QuotaReserved") or {}) \
        .get("message", "")
    assert wait_until(lambda: "node" in msg(), 10), msg()
    # The later small jobs could fit beside the first ones, but the gang holds its nodes: a
    # pass has decided each waits.
    assert wait_until(lambda: all(waiting(server, "default", f"small-{i}")
                                  for i in range(3, 6)), 10)
    assert not any(admitted(server, "default", f"small-{i}") for i in range(3, 6))
    assert wait_until(lambda: admitted(server, "default", "gang"), 30), msg()
    assert not any(admitted(server, "default", f"small-{i}") for i in range(3, 6))
    assert wait_until(lambda: job_condition(server, "default", "gang", "Succeeded"), 30)
    assert wait_until(lambda: all(job_condition(server, "default", f"small-{i}", "Succeeded")
                                  for i in range(6)), 40)


def test_high_priority_preempts_and_victim_resumes_from_checkpoint(start_server, marker,
                                                                  tmp_path):
    server = start_server("1x{cpu:8,memory:16Gi,nvidia.com/gpu:2}")
    prio = lambda name, value: json.dumps({"apiVersion": "kueue.x-k8s.io/v1beta1",
                                           "kind": "WorkloadPriorityClass",
                                           "metadata": {"name": name}, "value": value})
    apply(server, tmp_path, FLAVOR, prio("low", 100), prio("high", 1000),
          cluster_queue("cq", 2, preemption={"withinClusterQueue": "LowerPriority"}),
          local_queue("default", "main", "cq"))
    ckpt = tmp_path / "ckpt"
    train = json.loads(gpu_job("train", marker, "main", 2,
                               labels={"kueue.x-k8s.io/priority-class": "low"}))
    c = train["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    c["command"] = [os.path.join(REPO, "build/examples/fashion-mnist")]
    c["args"] = ["--epochs", "8", "--hidden", "32", "--seed", "1",
                 "--data-dir", "/usr/share/datasets/fashion-mnist", "--checkpoint-dir", str(ckpt)]
    apply(server, tmp_path, json.dumps(train))
    logs = lambda: server.kubectl("logs", "train-master-0", check=False).stdout
    assert wait_until(lambda: "checkpoint epoch=2" in logs(), 60), logs()

    apply(server, tmp_path, gpu_job("urgent", marker, "main", 2, cmd="sleep 2",
                                    labels={"kueue.x-k8s.io/priority-class": "high"}))
    assert wait_until(lambda: admitted(server, "default", "urgent"), 30), \
        server.kubectl("get", "workloads", "-o", "yaml").stdout
    victim = workload(server, "default", "train")
    assert condition(victim, "Preempted")["reason"] == "InClusterQueue"
    assert victim["spec"]["priority"] == 100
    assert wait_until(lambda: job_condition(server, "default", "urgent", "Succeeded"), 30)
    # Back in after the high-priority job, from its last checkpoint, and it finishes.
    assert wait_until(lambda: "resumed from epoch=" in logs(), 60), logs()
    assert wait_until(lambda: job_condition(server, "default", "train", "Succeeded"), 90), \
        logs()
    assert "done epochs=8" in logs()
    events = server.kubectl("get", "events").stdout
    assert "Preempted" in events and "QuotaReserved" in events, events


def test_run_queues_jobs_through_the_quota(run_trainyard, manifest, marker):
    """`trainyard run` with the queues in the manifests: two 2-GPU jobs behind a 2-GPU quota
    run one after the other, and a job without the label goes to the namespace's default
    LocalQueue."""
    queues = manifest("\n---\n".join([FLAVOR, cluster_queue("cq", 2),
                                      local_queue("default", "default", "cq")]))
    first = manifest(gpu_job("first", marker, "default", 2, cmd="sleep 1"))
    job = json.loads(gpu_job("second", marker, "default", 2, cmd="sleep 1"))
    del job["metadata"]["labels"]  # the default LocalQueue takes it
    second = manifest(json.dumps(job))
    r = run_trainyard("--nodes", "1x{cpu:4,memory:8Gi,nvidia.com/gpu:4}", "-o", "json",
                      queues, first, second, timeout=60)
    assert r.rc == 0, r
    items = {i["metadata"]["name"]: i for i in json.loads(r.out)["items"]}
    a, b = items["first"], items["second"]
    assert b["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "default"
    # One at a time: whichever started second started after the other completed.
    spans = sorted([(j["status"]["startTime"], j["status"]["completionTime"]) for j in (a, b)])
    assert spans[1][0] >= spans[0][1], spans


def test_fair_sharing_splits_borrowed_capacity_by_weight(tmp_path, marker):
    """--fair-sharing: two queues with no quota of their own borrow a lender's 6 GPUs in
    proportion to their weights (1:2), and report their weighted share. The light queue comes
    first and takes everything; the heavy one then reclaims its share by preemption."""
    server = Server(tmp_path / "data", ["--nodes", "1x{cpu:8,memory:16Gi,nvidia.com/gpu:6}",
                                        "--fair-sharing"]).start()
    try:
        def weighted(name, weight):
            cq = json.loads(cluster_queue(name, 0, cohort="shared",
                                          preemption={"reclaimWithinCohort": "Any"}))
            cq["spec"]["fairSharing"] = {"weight": weight}
            return json.dumps(cq)
        apply(server, tmp_path, FLAVOR, cluster_queue("lender", 6, cohort="shared"),
              weighted("light", "1"), weighted("heavy", "2"),
              local_queue("default", "light", "light"), local_queue("default", "heavy", "heavy"))
        count = lambda q: sum(admitted(server, "default", f"{q}-{i}") for i in range(6))
        apply(server, tmp_path, *[gpu_job(f"light-{i}", marker, "light", 1) for i in range(6)])
        assert wait_until(lambda: count("light") == 6, 30)
        apply(server, tmp_path, *[gpu_job(f"heavy-{i}", marker, "heavy", 1) for i in range(6)])
        assert wait_until(lambda: (count("light"), count("heavy")) == (2, 4), 30), \
            server.kubectl("get", "workloads").stdout
        # And it stays so: the preempted light workloads, once their requeue back-off is over,
        # are decided again by a pass, which leaves them waiting.
        back = "waiting for the requeue back-off"
        assert wait_until(lambda: all(admitted(server, "default", f"light-{i}") or
                                      (waiting(server, "default", f"light-{i}") and
                                       not waiting(server, "default", f"light-{i}", back))
                                      for i in range(6)), 30), \
            server.kubectl("get", "workloads", "-o", "yaml").stdout
        assert (count("light"), count("heavy")) == (2, 4)
        shares = {q: server.json("get", "clusterqueue", q)["status"]["fairSharing"]
                  ["weightedShare"] for q in ("light", "heavy")}
        assert shares["light"] == shares["heavy"] > 0, shares
    finally:
        server.stop()
        server.reap()
        kill_all(marker)


def test_stop_policy_hold_and_drain_evicts_and_resumes(start_server, marker, tmp_path):
    """A ClusterQueue set to HoldAndDrain evicts what it admitted and admits nothing; set back
    to None, its workloads are admitted again."""
    server = start_server("1x{cpu:8,memory:16Gi,nvidia.com/gpu:4}")
    apply(server, tmp_path, FLAVOR, cluster_queue("cq", 4), local_queue("default", "main", "cq"))
    apply(server, tmp_path, gpu_job("held", marker, "main", 2))
    assert wait_until(lambda: running(server, "default", "held", 1), 20)
    server.kubectl("patch", "clusterqueue", "cq", "--type=merge", "-p",
                   '{"spec":{"stopPolicy":"HoldAndDrain"}}')
    assert wait_until(lambda: not pods_of(server, "default", "held"), 20)
    wl = workload(server, "default", "held")
    assert condition(wl, "Evicted")["reason"] == "ClusterQueueStopped", wl["status"]
    cq = server.json("get", "clusterqueue", "cq")
    assert condition(cq, "Active")["status"] == "False"
    assert condition(cq, "Active")["reason"] == "Stopped"
    assert server.json("get", "pytorchjob", "held")["spec"]["runPolicy"]["suspend"] is True
    # Nothing is admitted while it holds.
    apply(server, tmp_path, gpu_job("later", marker, "main", 1))
    held = "ClusterQueue cq is inactive"
    assert wait_until(lambda: waiting(server, "default", "later", held) and
                      waiting(server, "default", "held", held), 20), \
        server.kubectl("get", "workloads", "-o", "yaml").stdout
    assert not admitted(server, "default", "later") and not admitted(server, "default", "held")
    server.kubectl("patch", "clusterqueue", "cq", "--type=merge", "-p",
                   '{"spec":{"stopPolicy":"None"}}')
    assert wait_until(lambda: running(server, "default", "held", 1) and
                      running(server, "default", "later", 1), 30), \
        server.kubectl("get", "workloads").stdout


def test_pods_quota_counts_pods_and_missing_flavors_are_named(start_server, marker, tmp_path):
    server = start_server("2x{cpu:8,memory:16Gi,nvidia.com/gpu:4}")
    # A ClusterQueue naming flavors that do not exist says which, as Kueue does.
    ghost = json.loads(cluster_queue("ghost", 4))
    ghost["spec"]["resourceGroups"][0]["flavors"] = [
        {"name": n, "resources": [{"name": r, "nominalQuota": 1}
                                  for r in ("cpu", "memory", "nvidia.com/gpu")]}
        for n in ("x-one", "x-two")]
    # `pods` in a queue's quota is Kueue's pod count: at most 2 pods admitted here.
    pq = json.loads(cluster_queue("pq", 8))
    pq["spec"]["resourceGroups"][0]["coveredResources"].append("pods")
    pq["spec"]["resourceGroups"][0]["flavors"][0]["resources"].append(
        {"name": "pods", "nominalQuota": 2})
    apply(server, tmp_path, FLAVOR, json.dumps(ghost), json.dumps(pq),
          local_queue("default", "main", "pq"))
    active = lambda name: condition(server.json("get", "clusterqueue", name), "Active") or {}
    assert wait_until(lambda: active("ghost").get("reason") == "FlavorNotFound", 10), \
        active("ghost")
    assert active("ghost")["status"] == "False"
    assert active("ghost")["message"] == \
        "Can't admit new workloads: references missing ResourceFlavor(s): [x-one x-two]."
    assert wait_until(lambda: active("pq").get("status") == "True", 10), active("pq")

    # Three pods do not fit a quota of two, whatever the other resources say.
    apply(server, tmp_path, gpu_job("three", marker, "main", 1, workers=2))
    msg = lambda job: (condition(workload(server, "default", job), "QuotaReserved") or {}) \
        .get("message", "")
    assert wait_until(lambda: "insufficient quota for pods in flavor default-flavor, request > "
                              "maximum capacity (3 > 2)" in msg("three"), 15), msg("three")
    server.kubectl("delete", "pytorchjob", "three")
    # Two pods do: the admission names the flavor of `pods`, and the usage counts them.
    apply(server, tmp_path, gpu_job("two", marker, "main", 1, workers=1))
    assert wait_until(lambda: running(server, "default", "two", 2), 30), msg("two")
    psas = workload(server, "default", "two")["status"]["admission"]["podSetAssignments"]
    assert all(p["flavors"]["pods"] == "default-flavor" for p in psas), psas
    assert sorted(p["resourceUsage"]["pods"] for p in psas) == ["1", "1"], psas

    def reserved_pods():
        st = server.json("get", "clusterqueue", "pq").get("status", {})
        for f in st.get("flavorsReservation", []):
            for r in f["resources"]:
                if r["name"] == "pods":
                    return r["total"]
        return None
    assert wait_until(lambda: reserved_pods() == "2", 10), reserved_pods()


def test_admission_check_gates_admission_until_ready(start_server, marker, tmp_path):
    server = start_server("1x{cpu:8,memory:16Gi,nvidia.com/gpu:4}")
    check = json.dumps({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "AdmissionCheck",
                        "metadata": {"name": "check1"},
                        "spec": {"controllerName": "example.com/approver"}})
    cq = json.loads(cluster_queue("gated", 4))
    cq["spec"]["admissionChecks"] = ["check1"]
    missing = json.loads(cluster_queue("gated-missing", 4))
    missing["spec"]["admissionChecks"] = ["nope"]
    apply(server, tmp_path, FLAVOR, check, json.dumps(cq), json.dumps(missing),
          local_queue("default", "main", "gated"))
    got = server.json("get", "admissioncheck", "check1")
    assert got["spec"]["retryDelayMinutes"] == 15
    active = lambda name: condition(server.json("get", "clusterqueue", name), "Active") or {}
    # The check's controller has not said it is ready: the queue admits nothing.
    assert wait_until(lambda: active("gated").get("reason") == "AdmissionCheckInactive", 10), \
        active("gated")
    assert active("gated")["message"] == \
        "Can't admit new workloads: references inactive AdmissionCheck(s): [check1]."
    assert wait_until(lambda: active("gated-missing").get("reason") == "AdmissionCheckNotFound",
                      10), active("gated-missing")
    assert active("gated-missing")["message"] == \
        "Can't admit new workloads: references missing AdmissionCheck(s): [nope]."
    apply(server, tmp_path, gpu_job("gated-job", marker, "main", 1, cmd="sleep 2"))
    msg = lambda: (condition(workload(server, "default", "gated-job"), "QuotaReserved") or {}) \
        .get("message", "")
    assert wait_until(lambda: "ClusterQueue gated is inactive" in msg(), 10), msg()

    # Its controller marks it Active: the queue becomes active and reserves quota, but the
    # workload is not admitted (its job stays suspended) until the check is Ready.
    cond = {"type": "Active", "status": "True", "reason": "Active", "message": "ready",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}
    server.kubectl("patch", "admissioncheck", "check1", "--subresource=status", "--type=merge",
                   "-p", json.dumps({"status": {"conditions": [cond]}}))
    assert wait_until(lambda: active("gated").get("status") == "True", 10), active("gated")
    wl = lambda: workload(server, "default", "gated-job")
    assert wait_until(lambda: is_true(wl(), "QuotaReserved"), 10), msg()
    checks = wl()["status"]["admissionChecks"]
    assert [(c["name"], c["state"]) for c in checks] == [("check1", "Pending")], checks
    assert not is_true(wl(), "Admitted")
    assert server.json("get", "pytorchjob", "gated-job")["spec"]["runPolicy"]["suspend"] is True
    assert pods_of(server, "default", "gated-job") == []

    # The check's controller says Ready through the status subresource: admitted, it runs.
    ready = dict(checks[0], state="Ready", message="approved")
    server.kubectl("patch", "workload", wl()["metadata"]["name"], "--subresource=status",
                   "--type=merge", "-p", json.dumps({"status": {"admissionChecks": [ready]}}))
    assert wait_until(lambda: is_true(wl(), "Admitted"), 10), wl()["status"]
    assert wait_until(lambda: job_condition(server, "default", "gated-job", "Succeeded"), 30)


def test_admission_check_retry_requeues_and_rejected_deactivates(start_server, marker,
                                                                 tmp_path):
    server = start_server("1x{cpu:8,memory:16Gi,nvidia.com/gpu:4}")
    check = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "AdmissionCheck",
             "metadata": {"name": "check1"}, "spec": {"controllerName": "example.com/a"},
             "status": {"conditions": [{"type": "Active", "status": "True", "reason": "Active",
                                        "message": "ready",
                                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
    cq = json.loads(cluster_queue("gated", 4))
    cq["spec"]["admissionChecks"] = ["check1"]
    apply(server, tmp_path, FLAVOR, json.dumps(check), json.dumps(cq),
          local_queue("default", "main", "gated"))
    # A created object's status is dropped: the controller sets Active through the status.
    server.kubectl("patch", "admissioncheck", "check1", "--subresource=status", "--type=merge",
                   "-p", json.dumps({"status": check["status"]}))
    apply(server, tmp_path, gpu_job("job", marker, "main", 1))
    wl = lambda: workload(server, "default", "job")
    assert wait_until(lambda: is_true(wl(), "QuotaReserved"), 15), wl()
    state = lambda s: json.dumps({"status": {"admissionChecks": [dict(
        wl()["status"]["admissionChecks"][0], state=s, message=s.lower())]}})
    # Retry: evicted, the quota goes back, and it is requeued with its check Pending again.
    server.kubectl("patch", "workload", wl()["metadata"]["name"], "--subresource=status",
                   "--type=merge", "-p", state("Retry"))
    assert wait_until(lambda: (condition(wl(), "Requeued") or {}).get("reason") ==
                      "AdmissionCheck", 15), wl()["status"]
    assert wait_until(lambda: [c["state"] for c in wl()["status"].get("admissionChecks", [])]
                      == ["Pending"], 15), wl()["status"]
    # Requeued after its back-off, it reserves again; Rejected then deactivates it.
    assert wait_until(lambda: is_true(wl(), "QuotaReserved"), 15), wl()["status"]
    server.kubectl("patch", "workload", wl()["metadata"]["name"], "--subresource=status",
                   "--type=merge", "-p", state("Rejected"))
    assert wait_until(lambda: wl()["spec"].get("active") is False, 15), wl()
    ev = condition(wl(), "Evicted")
    assert ev["reason"] == "DeactivatedDueToAdmissionCheck", ev
    assert wait_until(lambda: not is_true(wl(), "QuotaReserved"), 15), wl()["status"]
    assert pods_of(server, "default", "job") == []


ZONE_NODES = """\
apiVersion: v1
kind: Node
metadata:
  name: a-1
  labels: {topology.kubernetes.io/zone: zone-a, tier: "3"}
status:
  capacity: {cpu: 8, memory: 16Gi, nvidia.com/gpu: 4}
---
apiVersion: v1
kind: Node
metadata:
  name: a-2
  labels: {topology.kubernetes.io/zone: zone-a, tier: "1"}
status:
  capacity: {cpu: 8, memory: 16Gi, nvidia.com/gpu: 4}
---
apiVersion: v1
kind: Node
metadata:
  name: b-1
  labels: {topology.kubernetes.io/zone: zone-b, tier: "3"}
status:
  capacity: {cpu: 8, memory: 16Gi, nvidia.com/gpu: 2}
"""


def with_affinity(doc, *terms):
    job = json.loads(doc)
    for rs in job["spec"]["pytorchReplicaSpecs"].values():
        rs["template"]["spec"]["affinity"] = {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": list(t)} for t in terms]}}}
    return json.dumps(job)


def test_required_node_affinity_through_the_queue(tmp_path, marker):
    # The scheduling core places a queued job's pods by the same rules as the binder
    # (sched/nodefit.h): it admits onto matching nodes only, and a job that matches none waits
    # with a reason instead of holding quota for pods no node takes.
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(ZONE_NODES)
    server = Server(tmp_path / "data", ["--nodes-file", str(nodes)]).start()
    try:
        apply(server, tmp_path, FLAVOR, cluster_queue("cq", 16),
              local_queue("default", "main", "cq"))
        # Best fit alone would put 2-GPU pods on b-1 (the fewest free GPUs); the affinity
        # (zone-a, tier > 2) leaves a-1 only.
        zone_a = with_affinity(
            gpu_job("in-a", marker, "main", 2, workers=1),
            [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-a"]},
             {"key": "tier", "operator": "Gt", "values": ["2"]}])
        nowhere = with_affinity(
            gpu_job("nowhere", marker, "main", 1),
            [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-c"]}],
            [{"key": "tier", "operator": "DoesNotExist"}])
        apply(server, tmp_path, zone_a)
        assert wait_until(lambda: running(server, "default", "in-a", 2), 30), \
            workload(server, "default", "in-a")
        assert {p["spec"]["nodeName"] for p in pods_of(server, "default", "in-a")} == {"a-1"}
        adm = workload(server, "default", "in-a")["status"]["admission"]
        assert adm["clusterQueue"] == "cq", adm

        apply(server, tmp_path, nowhere)
        msg = lambda: (condition(workload(server, "default", "nowhere"), "QuotaReserved")
                       or {}).get("message", "")
        assert wait_until(lambda: "node" in msg(), 20), workload(server, "default", "nowhere")
        assert "3 of them do not match its node selector or required node affinity" in msg(), \
            msg()
        wl = workload(server, "default", "nowhere")
        assert condition(wl, "QuotaReserved")["status"] == "False", wl
        assert not is_true(wl, "Admitted") and "admission" not in wl.get("status", {}), wl
        assert pods_of(server, "default", "nowhere") == []
        job = server.json("get", "pytorchjob", "nowhere", "-n", "default")
        assert job["spec"]["runPolicy"]["suspend"] is True, job
        # The quota it would take is free: the cluster queue reserves only in-a's 4 GPUs.
        cq = server.json("get", "clusterqueue", "cq")
        gpus = [r for f in cq["status"]["flavorsReservation"] for r in f["resources"]
                if r["name"] == "nvidia.com/gpu"]
        assert gpus and gpus[0]["total"] == "4", cq["status"]
        server.kubectl("delete", "pytorchjob", "in-a", "nowhere", "--wait=false")
    finally:
        server.stop()
        server.reap()
        kill_all(marker)
