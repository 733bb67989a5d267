"""batch/v1 Job through the real binary: `trainyard run` (its exit status is the Job's outcome)
and `trainyard server` with kubectl (columns, suspend/resume, TTL, cascading deletion,
validation) and Kueue admission of a queued Job. Workloads are short shell commands; the
pod-failure back-off is shortened with TRAINYARD_RESTART_BACKOFF_MS."""
import json
import os
import re
import time

import pytest
import yaml

from conftest import kill_all, processes_with, wait_until
from server_fixture import Server

FAST = {"TRAINYARD_RESTART_BACKOFF_MS": "50"}


def job(name, cmd, marker, restart="Never", labels=None, **spec):
    """A batch/v1 Job manifest (YAML text) running `cmd` in container "main"."""
    doc = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, **({"labels": labels} if labels else {})},
        "spec": {**spec, "template": {"spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "command": ["sh", "-c", cmd],
                            "env": [{"name": "MARKER", "value": marker}]}]}}},
    }
    return yaml.safe_dump(doc)


def run_json(run_trainyard, path, **kw):
    r = run_trainyard("--output", "json", path, env=FAST, **kw)
    items = json.loads(r.out)["items"] if r.out.strip() else []
    jobs = {o["metadata"]["name"]: o for o in items if o["kind"] == "Job"}
    pods = [o for o in items if o["kind"] == "Pod"]
    return r, jobs, pods


def conditions(obj):
    return [(c["type"], c["status"], c.get("reason")) for c in
            obj.get("status", {}).get("conditions", [])]


def test_run_completions_and_parallelism(run_trainyard, manifest, marker, tmp_path):
    # Each pod notes its start and end in a shared file: at most `parallelism` overlap.
    log = tmp_path / "events"
    cmd = f"echo start >> {log}; sleep 1.5; echo end >> {log}"
    path = manifest(job("work", cmd, marker, completions=4, parallelism=2))
    r, jobs, pods = run_json(run_trainyard, path)
    assert r.rc == 0, r
    st = jobs["work"]["status"]
    assert st["succeeded"] == 4 and st["active"] == 0 and st["failed"] == 0, st
    assert conditions(jobs["work"]) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached")], conditions(jobs["work"])
    assert st["completionTime"] >= st["startTime"], st
    assert len(pods) == 4, [p["metadata"]["name"] for p in pods]
    uid = jobs["work"]["metadata"]["uid"]
    assert jobs["work"]["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    for p in pods:
        meta = p["metadata"]
        assert meta["generateName"] == "work-" and re.fullmatch(r"work-[a-z0-9]{5}", meta["name"])
        assert meta["labels"]["batch.kubernetes.io/job-name"] == "work"
        assert meta["labels"]["job-name"] == "work"
        assert meta["labels"]["batch.kubernetes.io/controller-uid"] == uid
        assert meta["labels"]["controller-uid"] == uid
        [ref] = meta["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("Job", "work", uid,
                                                                            True)
    depth = peak = 0
    for line in log.read_text().split():
        depth += 1 if line == "start" else -1
        peak = max(peak, depth)
    assert peak == 2 and log.read_text().count("start") == 4, log.read_text()


def test_run_indexed_job(run_trainyard, manifest, marker, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cmd = f'echo "index=$JOB_COMPLETION_INDEX host=$(hostname)" > {out}/$JOB_COMPLETION_INDEX'
    path = manifest(job("idx", cmd, marker, completions=3, parallelism=3,
                        completionMode="Indexed"))
    r, jobs, pods = run_json(run_trainyard, path)
    assert r.rc == 0, r
    assert jobs["idx"]["status"]["completedIndexes"] == "0-2", jobs["idx"]["status"]
    by_index = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]: p
                for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for i, p in by_index.items():
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == i
        assert p["metadata"]["generateName"] == f"idx-{i}-"
        assert p["spec"]["hostname"] == f"idx-{i}"
        assert (out / i).read_text() == f"index={i} host=idx-{i}\n"


def test_run_backoff_limit_fails_the_job(run_trainyard, manifest, marker):
    path = manifest(job("flaky", "echo failing; exit 3", marker, backoffLimit=2))
    r, jobs, pods = run_json(run_trainyard, path)
    assert r.rc == 1, r
    st = jobs["flaky"]["status"]
    assert st["failed"] == 3 and st.get("succeeded", 0) == 0, st
    assert ("FailureTarget", "True", "BackoffLimitExceeded") in conditions(jobs["flaky"])
    failed = [c for c in st["conditions"] if c["type"] == "Failed"][0]
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert "completionTime" not in st, st
    assert len(pods) == 3 and all(p["status"]["phase"] == "Failed" for p in pods)


def test_run_pod_failure_policy_ignore_then_fail_job(run_trainyard, manifest, marker, tmp_path):
    # The first pod exits 7 (Ignore: not counted, so backoffLimit 0 is not reached), the
    # second 42 (FailJob).
    flag = tmp_path / "tried"
    cmd = f"if [ -e {flag} ]; then exit 42; fi; touch {flag}; exit 7"
    text = job("pfp", cmd, marker, backoffLimit=0, podFailurePolicy={"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                              "values": [42]}},
    ]})
    r, jobs, pods = run_json(run_trainyard, manifest(text))
    assert r.rc == 1, r
    st = jobs["pfp"]["status"]
    assert st["failed"] == 1, st  # the ignored pod is not counted
    failed = [c for c in st["conditions"] if c["type"] == "Failed"][0]
    second = [p for p in pods
              if p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 42][0]
    assert failed["reason"] == "PodFailurePolicy", failed
    assert failed["message"] == (f"Container main for pod default/{second['metadata']['name']} "
                                 "failed with exit code 42 matching FailJob rule at index 1")
    assert len(pods) == 2


def test_run_active_deadline_stops_the_pod(run_trainyard, manifest, marker):
    path = manifest(job("slow", "sleep 60", marker, activeDeadlineSeconds=1))
    start = time.monotonic()
    r, jobs, pods = run_json(run_trainyard, path, timeout=60)
    assert r.rc == 1, r
    assert time.monotonic() - start < 20
    failed = [c for c in jobs["slow"]["status"]["conditions"] if c["type"] == "Failed"][0]
    assert (failed["reason"], failed["message"]) == (
        "DeadlineExceeded", "Job was active longer than specified deadline")
    assert jobs["slow"]["status"]["failed"] == 1, jobs["slow"]["status"]  # the pod it stopped
    assert not processes_with(marker)


def test_run_on_failure_counts_container_restarts(run_trainyard, manifest, marker):
    path = manifest(job("crash", "exit 1", marker, restart="OnFailure", backoffLimit=2))
    r, jobs, pods = run_json(run_trainyard, path, timeout=60)
    assert r.rc == 1, r
    failed = [c for c in jobs["crash"]["status"]["conditions"] if c["type"] == "Failed"][0]
    assert failed["reason"] == "BackoffLimitExceeded"
    # restarted in place (never replaced) until the restarts reached the limit; then the
    # controller deleted the still active pod
    assert all(p["metadata"].get("deletionTimestamp") for p in pods), pods
    assert len(pods) <= 1


def test_run_rejects_a_bad_job_naming_file_line_and_field(run_trainyard, manifest, marker):
    text = job("bad", "true", marker, restart="Always", parallelism=-1,
               completionMode="Sometimes")
    path = manifest(text)
    r = run_trainyard(path)
    assert r.rc == 2, r
    lines = {line.split(": ", 1)[1] for line in r.err.splitlines() if line.startswith(path)}
    assert "spec.parallelism: Invalid value: -1: must be greater than or equal to 0" in lines, \
        r.err
    assert ('spec.completionMode: Unsupported value: "Sometimes": supported values: '
            '"NonIndexed", "Indexed"') in lines, r.err
    assert ('spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
            '"OnFailure", "Never"') in lines, r.err
    assert re.search(re.escape(path) + r":\d+:\d+: spec.parallelism", r.err), r.err


# ---- trainyard server and kubectl ----

@pytest.fixture
def server(tmp_path, marker, monkeypatch):
    monkeypatch.setenv("TRAINYARD_RESTART_BACKOFF_MS", "50")
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def apply(server, tmp_path, text):
    path = tmp_path / f"apply-{time.monotonic_ns()}.yaml"
    path.write_text(text)
    return server.kubectl("apply", "-f", str(path))


def get_job(server, name):
    p = server.kubectl("get", "job", name, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def has(obj, ctype, status="True"):
    return any(c["type"] == ctype and c["status"] == status
               for c in (obj or {}).get("status", {}).get("conditions", []))


def job_pods(server, name):
    return [p for p in server.json("get", "pods")["items"]
            if p["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name") == name]


def test_kubectl_columns_suspend_resume_and_ttl(server, marker, tmp_path):
    flag = tmp_path / "ran"
    # The first pod runs until the job is suspended; the one after the resume ends at once.
    cmd = f"if [ -e {flag} ]; then exit 0; fi; touch {flag}; sleep 60"
    out = apply(server, tmp_path, job("sus", cmd, marker, completions=1)).stdout
    assert "job.batch/sus created" in out, out
    assert wait_until(lambda: get_job(server, "sus")["status"].get("active") == 1, 20)
    table = server.kubectl("get", "jobs").stdout
    assert re.search(r"^NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE\s*$", table, re.M), table
    assert re.search(r"^sus\s+Running\s+0/1\s+\S+\s+\S+", table, re.M), table
    [first] = job_pods(server, "sus")
    server.kubectl("patch", "job", "sus", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    assert wait_until(lambda: has(get_job(server, "sus"), "Suspended"), 20)
    assert wait_until(lambda: not job_pods(server, "sus") or
                      all(p["metadata"]["name"] != first["metadata"]["name"]
                          for p in job_pods(server, "sus")), 30)
    suspended = get_job(server, "sus")
    cond = [c for c in suspended["status"]["conditions"] if c["type"] == "Suspended"][0]
    assert (cond["reason"], cond["message"]) == ("JobSuspended", "Job suspended")
    assert suspended["status"]["active"] == 0
    assert re.search(r"^sus\s+Suspended\s+0/1", server.kubectl("get", "jobs").stdout, re.M)
    server.kubectl("patch", "job", "sus", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    assert wait_until(lambda: has(get_job(server, "sus"), "Complete"), 30), get_job(server, "sus")
    done = get_job(server, "sus")
    assert has(done, "Suspended", "False")
    assert [c["reason"] for c in done["status"]["conditions"] if c["type"] == "Suspended"] == \
        ["JobResumed"]
    table = server.kubectl("get", "jobs", "-o", "wide").stdout
    assert re.search(r"^sus\s+Complete\s+1/1\s+\S+\s+\S+\s+main\s+.*"
                     r"batch.kubernetes.io/controller-uid=", table, re.M), table
    # TTL (set now: a TTL from the start could delete the job before the checks above read
    # it): the job goes one second after it finished, and its pods with it.
    assert job_pods(server, "sus")
    server.kubectl("patch", "job", "sus", "--type=merge", "-p",
                   '{"spec":{"ttlSecondsAfterFinished":1}}')
    assert wait_until(lambda: get_job(server, "sus") is None, 20)
    assert wait_until(lambda: not job_pods(server, "sus"), 20)
    events = server.kubectl("get", "events").stdout
    assert "SuccessfulCreate" in events and "Suspended" in events, events


def test_kubectl_delete_cascades_and_validation_errors(server, marker, tmp_path):
    apply(server, tmp_path, job("long", "sleep 60", marker, parallelism=2, completions=4))
    assert wait_until(lambda: len(job_pods(server, "long")) == 2 and all(
        p.get("status", {}).get("phase") == "Running" for p in job_pods(server, "long")), 20)
    assert re.search(r"^long\s+Running\s+0/4", server.kubectl("get", "jobs").stdout, re.M)
    server.kubectl("delete", "job", "long")
    assert wait_until(lambda: not job_pods(server, "long"), 30)
    assert wait_until(lambda: not processes_with(marker), 30)

    path = tmp_path / "bad.yaml"
    path.write_text(job("bad", "true", marker, completionMode="Indexed", parallelism=2,
                        backoffLimit=-2))
    p = server.kubectl("apply", "-f", str(path), check=False)
    assert p.returncode != 0
    assert "spec.completions: Required value: when completion mode is Indexed" in p.stderr, \
        p.stderr
    assert "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0" in p.stderr
    assert get_job(server, "bad") is None


def test_kueue_queued_job_waits_then_runs_with_flavor_node_selector(server, marker, tmp_path):
    node = server.json("get", "nodes")["items"][0]
    host = node["metadata"]["labels"]["kubernetes.io/hostname"]
    queues = [
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ResourceFlavor",
         "metadata": {"name": "here"}, "spec": {"nodeLabels": {"kubernetes.io/hostname": host}}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
         "metadata": {"name": "cq"},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["cpu"],
             "flavors": [{"name": "here", "resources": [{"name": "cpu", "nominalQuota": 1}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
         "metadata": {"name": "main", "namespace": "default"}, "spec": {"clusterQueue": "cq"}},
    ]
    apply(server, tmp_path, yaml.safe_dump_all(queues))

    def queued(name, cmd):
        doc = yaml.safe_load(job(name, cmd, marker, labels={"kueue.x-k8s.io/queue-name": "main"},
                                 parallelism=2, completions=2))
        doc["spec"]["template"]["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "500m"}}
        return yaml.safe_dump(doc)

    apply(server, tmp_path, queued("first", "sleep 60"))
    assert wait_until(lambda: len([p for p in job_pods(server, "first")
                                   if p.get("status", {}).get("phase") == "Running"]) == 2, 30)
    apply(server, tmp_path, queued("second", "true"))
    # No room: the second is suspended by Kueue and its workload waits, with no pod.
    wl_of = lambda name: next((w for w in server.json("get", "workloads")["items"]
                               if w["metadata"]["ownerReferences"][0]["name"] == name), None)
    assert wait_until(lambda: "insufficient unused quota" in next(
        (c.get("message", "") for c in (wl_of("second") or {}).get("status", {})
         .get("conditions", []) if c["type"] == "QuotaReserved"), ""), 20), wl_of("second")
    second = get_job(server, "second")
    assert second["spec"]["suspend"] is True and has(second, "Suspended")
    assert not job_pods(server, "second")
    wl = wl_of("second")
    assert re.fullmatch(r"job-second-[0-9a-f]{5}", wl["metadata"]["name"]), wl["metadata"]
    [ps] = wl["spec"]["podSets"]
    assert (ps["name"], ps["count"]) == ("main", 2), ps
    assert wl["spec"]["queueName"] == "main"
    # The first finishes (deleted): the second is admitted, resumed and placed by the flavor.
    server.kubectl("delete", "job", "first")
    assert wait_until(lambda: has(get_job(server, "second"), "Complete"), 40), \
        get_job(server, "second")
    for p in job_pods(server, "second"):
        assert p["spec"]["nodeSelector"] == {"kubernetes.io/hostname": host}, p["spec"]
    assert wait_until(lambda: has(wl_of("second"), "Finished"), 20), wl_of("second")


def test_run_queued_job_ends_with_its_outcome(run_trainyard, manifest, marker):
    queues = """
apiVersion: kueue.x-k8s.io/v1beta1
kind: ResourceFlavor
metadata: {name: default-flavor}
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: ClusterQueue
metadata: {name: cq}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: default-flavor
      resources: [{name: cpu, nominalQuota: 1}]
---
apiVersion: kueue.x-k8s.io/v1beta1
kind: LocalQueue
metadata: {name: main, namespace: default}
spec: {clusterQueue: cq}
"""
    docs = [queues]
    for name, code in (("ok", 0), ("bad", 5)):
        d = yaml.safe_load(job(name, f"exit {code}", marker, backoffLimit=0,
                               labels={"kueue.x-k8s.io/queue-name": "main"}))
        d["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
        docs.append(yaml.safe_dump(d))
    r, jobs, pods = run_json(run_trainyard, manifest("---\n".join(docs)))
    assert r.rc == 1, r  # one job failed
    assert has(jobs["ok"], "Complete") and has(jobs["bad"], "Failed"), jobs
    # each was suspended until admitted, then resumed
    assert all(has(j, "Suspended", "False") for j in jobs.values()), jobs


def test_server_kill9_mid_job_adopts_pods_and_finishes_once(tmp_path, marker, monkeypatch):
    """The server dies (SIGKILL) while a Job's pod runs and restarts: the pod is re-adopted,
    not duplicated, and the Job counts each completion once."""
    monkeypatch.setenv("TRAINYARD_RESTART_BACKOFF_MS", "50")
    s = Server(tmp_path / "data").start()
    try:
        apply(s, tmp_path, job("durable", "sleep 1.5", marker, completions=2, parallelism=1))
        assert wait_until(lambda: (get_job(s, "durable") or {}).get("status", {})
                          .get("active") == 1, 20)
        before = {p["metadata"]["name"] for p in job_pods(s, "durable")}
        s.kill9()
        s.start()
        # the pod is still there (re-adopted, or recorded as ended), not replaced
        assert before <= {p["metadata"]["name"] for p in job_pods(s, "durable")}
        assert wait_until(lambda: has(get_job(s, "durable"), "Complete"), 40), \
            get_job(s, "durable")
        pods = job_pods(s, "durable")
        assert len(pods) == 2 and before <= {p["metadata"]["name"] for p in pods}, pods
        assert get_job(s, "durable")["status"]["succeeded"] == 2
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_kubectl_create_job_logs_and_wait(server, marker):
    """`kubectl create job` sends the Job as protobuf; `kubectl logs job/x` and `kubectl wait`
    find its pod and condition."""
    out = server.kubectl("create", "job", "hello", "--image=busybox", "--",
                         "sh", "-c", f"echo hello from {marker}").stdout
    assert "job.batch/hello created" in out, out
    server.kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=30s")
    assert server.kubectl("logs", "job/hello").stdout == f"hello from {marker}\n"
    spec = get_job(server, "hello")["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["command"] == ["sh", "-c", f"echo hello from {marker}"]


def test_kueue_preempts_a_batch_job_which_then_resumes(server, marker, tmp_path):
    """A high-priority Job evicts a running low-priority one: Kueue suspends it (its pod is
    deleted, its template restored), and it is admitted again and completes once the
    high-priority Job is done."""
    docs = [
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ResourceFlavor",
         "metadata": {"name": "default-flavor"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
         "metadata": {"name": "cq"},
         "spec": {"namespaceSelector": {},
                  "preemption": {"withinClusterQueue": "LowerPriority"},
                  "resourceGroups": [{"coveredResources": ["cpu"], "flavors": [{
                      "name": "default-flavor",
                      "resources": [{"name": "cpu", "nominalQuota": 1}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
         "metadata": {"name": "main", "namespace": "default"}, "spec": {"clusterQueue": "cq"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "WorkloadPriorityClass",
         "metadata": {"name": "low"}, "value": 100},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "WorkloadPriorityClass",
         "metadata": {"name": "high"}, "value": 1000},
    ]
    apply(server, tmp_path, yaml.safe_dump_all(docs))

    def queued(name, cmd, prio):
        doc = yaml.safe_load(job(name, cmd, marker, labels={
            "kueue.x-k8s.io/queue-name": "main", "kueue.x-k8s.io/priority-class": prio}))
        doc["spec"]["template"]["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "1"}}
        return yaml.safe_dump(doc)

    flag = tmp_path / "evicted-once"
    apply(server, tmp_path, queued("low", f"if [ -e {flag} ]; then exit 0; fi; sleep 60", "low"))
    assert wait_until(lambda: get_job(server, "low").get("status", {}).get("active") == 1, 30)
    [first] = job_pods(server, "low")
    flag.touch()
    apply(server, tmp_path, queued("high", "true", "high"))
    assert wait_until(lambda: has(get_job(server, "high"), "Complete"), 40), get_job(server, "high")
    assert wait_until(lambda: has(get_job(server, "low"), "Complete"), 40), get_job(server, "low")
    wl = next(w for w in server.json("get", "workloads")["items"]
              if w["metadata"]["ownerReferences"][0]["name"] == "low")
    preempted = [c for c in wl["status"]["conditions"] if c["type"] == "Preempted"]
    assert preempted and "Preempted to accommodate a workload" in preempted[0]["message"], \
        wl["status"]
    assert wl["status"]["requeueState"]["count"] == 1, wl["status"]
    # its first pod was deleted when Kueue suspended it; a new one ran to the end
    assert wait_until(lambda: len(job_pods(server, "low")) == 1, 30), job_pods(server, "low")
    [second] = job_pods(server, "low")
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert second["status"]["phase"] == "Succeeded"
    assert get_job(server, "low")["status"]["succeeded"] == 1
    assert "nodeSelector" not in get_job(server, "low")["spec"]["template"]["spec"] or \
        get_job(server, "low")["spec"]["template"]["spec"]["nodeSelector"] == {}


def test_run_fails_a_job_its_queue_can_never_admit(run_trainyard, manifest, marker):
    queues = yaml.safe_dump_all([
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ResourceFlavor",
         "metadata": {"name": "default-flavor"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue", "metadata": {"name": "cq"},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["cpu"], "flavors": [{
                 "name": "default-flavor", "resources": [{"name": "cpu", "nominalQuota": 1}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
         "metadata": {"name": "main", "namespace": "default"}, "spec": {"clusterQueue": "cq"}},
    ])
    d = yaml.safe_load(job("big", "true", marker, labels={"kueue.x-k8s.io/queue-name": "main"}))
    d["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2"}}
    r, jobs, pods = run_json(run_trainyard, manifest(queues + "---\n" + yaml.safe_dump(d)))
    assert r.rc == 1, r
    failed = [c for c in jobs["big"]["status"]["conditions"] if c["type"] == "Failed"][0]
    assert failed["reason"] == "NeverAdmitted", failed
    assert "can never be admitted by its queue main" in failed["message"], failed
    assert pods == []


def test_run_success_policy_ends_leader_follower_job(run_trainyard, manifest, marker):
    # The leader (index 0) finishes; the followers would run for a minute: the success
    # policy completes the job and stops them.
    cmd = 'if [ "$JOB_COMPLETION_INDEX" = 0 ]; then exit 0; fi; sleep 60'
    path = manifest(job("lead", cmd, marker, completions=3, parallelism=3,
                        completionMode="Indexed",
                        successPolicy={"rules": [{"succeededIndexes": "0"}]}))
    start = time.monotonic()
    r, jobs, pods = run_json(run_trainyard, path, timeout=60)
    assert r.rc == 0, r
    assert time.monotonic() - start < 30
    st = jobs["lead"]["status"]
    assert conditions(jobs["lead"]) == [
        ("SuccessCriteriaMet", "True", "SuccessPolicy"), ("Complete", "True", "SuccessPolicy")]
    assert st["completedIndexes"] == "0" and st["succeeded"] == 1 and st["failed"] == 0, st
    assert not processes_with(marker)


def test_python_client_creates_watches_and_reads_a_job(server, marker):
    """The Python Kubernetes client's BatchV1Api: create, watch to Complete, and the typed
    status (conditions, counts, times) deserialized."""
    from kubernetes import client, config, watch
    api = client.BatchV1Api(config.new_client_from_config(server.kubeconfig))
    body = client.V1Job(
        metadata=client.V1ObjectMeta(name="typed"),
        spec=client.V1JobSpec(completions=2, parallelism=2, template=client.V1PodTemplateSpec(
            spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
                name="main", command=["sh", "-c", "true"],
                env=[client.V1EnvVar(name="MARKER", value=marker)])]))))
    created = api.create_namespaced_job("default", body)
    assert created.spec.backoff_limit == 6 and created.spec.completion_mode == "NonIndexed"
    done = None
    for ev in watch.Watch().stream(api.list_namespaced_job, "default", timeout_seconds=30):
        st = ev["object"].status  # None in the ADDED event, before the controller wrote it
        conds = (st.conditions if st else None) or []
        if any(c.type == "Complete" and c.status == "True" for c in conds):
            done = ev["object"]
            break
    assert done is not None
    assert done.status.succeeded == 2 and done.status.active == 0
    assert done.status.completion_time >= done.status.start_time
    assert [c.type for c in done.status.conditions] == ["SuccessCriteriaMet", "Complete"]
    api.delete_namespaced_job("typed", "default", propagation_policy="Foreground")
    assert wait_until(lambda: get_job(server, "typed") is None and
                      not job_pods(server, "typed"), 30)
