"""Katib Experiments through `trainyard server` and kubectl: trials are short shell commands
that print `name=value` for a known function of their parameters, so the best trial, the goal
and the ending are predictable. The suggester, the collector and early stopping run in the
server (controllers/experiment.c)."""
import json
import os
import time

import pytest
import yaml

from conftest import REPO, kill_all, wait_until
from server_fixture import Server

API = "kubeflow.org/v1beta1"
# accuracy peaks at x = 0.3 (1.0) and falls off quadratically
ACC = "echo accuracy=$(awk 'BEGIN{print 1-(${trialParameters.x}-0.3)^2}')"


@pytest.fixture
def server(tmp_path, marker, monkeypatch):
    monkeypatch.setenv("TRAINYARD_RESTART_BACKOFF_MS", "50")
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def apply(server, tmp_path, docs, check=True):
    path = tmp_path / f"apply-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump_all(docs if isinstance(docs, list) else [docs]))
    return server.kubectl("apply", "-f", str(path), check=check)


def job_template(cmd, marker, labels=None):
    return {"apiVersion": "batch/v1", "kind": "Job",
            **({"metadata": {"labels": labels}} if labels else {}),
            "spec": {"template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "command": ["sh", "-c", cmd],
                                "env": [{"name": "MARKER", "value": marker}]}]}}}}


def experiment(name, cmd, marker, params=None, algorithm="random", settings=(("random_state",
                                                                              "7"),),
               template=None, **spec):
    params = params or [{"name": "x", "parameterType": "double",
                         "feasibleSpace": {"min": "0", "max": "1"}}]
    tt = {"primaryContainerName": "main",
          "trialParameters": [{"name": p["name"], "reference": p["name"]} for p in params]}
    if template is not None:
        tt.update(template)
    else:
        tt["trialSpec"] = job_template(cmd, marker)
    doc = {"apiVersion": API, "kind": "Experiment", "metadata": {"name": name},
           "spec": {"objective": {"type": "maximize", "objectiveMetricName": "accuracy"},
                    "algorithm": {"algorithmName": algorithm, "algorithmSettings": [
                        {"name": k, "value": v} for k, v in settings]},
                    "parallelTrialCount": 2, "maxTrialCount": 4, "parameters": params,
                    "trialTemplate": tt}}
    for k, v in spec.items():
        if k == "goal":
            doc["spec"]["objective"]["goal"] = v
        else:
            doc["spec"][k] = v
    return doc


def cond(obj, ctype):
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == ctype and c["status"] == "True":
            return c
    return None


def wait_done(server, name, timeout=60):
    got = {}

    def done():
        got["e"] = server.json("get", "experiment", name)
        return cond(got["e"], "Succeeded") or cond(got["e"], "Failed")
    assert wait_until(done, timeout), json.dumps(got.get("e", {}).get("status"), indent=1)
    return got["e"]


def trials_of(server, name):
    items = server.json("get", "trials", "-l", f"katib.kubeflow.org/experiment={name}")["items"]
    return sorted(items, key=lambda t: int(t["metadata"]["annotations"][
        "katib.trainyard.dev/trial-index"]))


def value(trial, metric="accuracy", which="latest"):
    for m in trial["status"]["observation"]["metrics"]:
        if m["name"] == metric:
            return float(m[which])
    return None


def test_grid_reaches_goal_with_katib_status(server, marker, tmp_path):
    params = [{"name": "x", "parameterType": "double",
               "feasibleSpace": {"min": "0.1", "max": "0.5", "step": "0.1"}}]
    apply(server, tmp_path, experiment("grid", ACC, marker, params, algorithm="grid", settings=(),
                                       parallelTrialCount=1, maxTrialCount=5, goal=0.999))
    e = wait_done(server, "grid")
    c = cond(e, "Succeeded")
    assert c["reason"] == "ExperimentGoalReached", e["status"]
    assert c["message"] == "Experiment has succeeded because Objective goal has reached"
    st = e["status"]
    best = st["currentOptimalTrial"]
    [a] = best["parameterAssignments"]
    assert a["name"] == "x" and abs(float(a["value"]) - 0.3) < 1e-9, best
    assert best["observation"]["metrics"] == [
        {"name": "accuracy", "min": "1", "max": "1", "latest": "1"}], best
    # the grid's order is seeded random: the goal ends it at the point x = 0.3
    trials = trials_of(server, "grid")
    xs = [round(float(t["spec"]["parameterAssignments"][0]["value"]), 9) for t in trials]
    assert xs[-1] == 0.3 and len(set(xs)) == len(xs) and set(xs) <= {0.1, 0.2, 0.3, 0.4, 0.5}
    assert st["trialsSucceeded"] == st["trials"] == len(xs), st
    assert st["succeededTrialList"] and "runningTrialList" not in st
    running = [x for x in st["conditions"] if x["type"] == "Running"]
    assert running and running[0]["status"] == "False"
    # defaults from Katib's webhook
    spec = e["spec"]
    assert spec["resumePolicy"] == "Never"
    assert spec["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
    assert spec["objective"]["metricStrategies"] == [{"name": "accuracy", "value": "max"}]
    assert spec["trialTemplate"]["successCondition"] == \
        'status.conditions.#(type=="Complete")#|#(status=="True")#'
    # trials: owned by the experiment, their jobs deleted when done (retain false)
    for t in trials:
        [ref] = t["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("Experiment", "grid", True)
        assert cond(t, "Succeeded")["reason"] == "TrialSucceeded"
    assert wait_until(lambda: not server.json("get", "jobs")["items"], 10)
    sug = server.json("get", "suggestion", "grid")
    assert sug["status"]["suggestionCount"] == sug["spec"]["requests"] == len(xs), sug
    # printer columns as Katib's CRDs
    out = server.kubectl("get", "experiments").stdout.split("\n")
    assert out[0].split() == ["NAME", "TYPE", "STATUS", "AGE"], out
    assert out[1].split()[:3] == ["grid", "Succeeded", "True"], out
    out = server.kubectl("get", "trials").stdout.split("\n")
    assert out[0].split() == ["NAME", "TYPE", "STATUS", "AGE"], out


def test_random_is_deterministic_by_random_state_and_stops_at_max_trials(server, marker,
                                                                         tmp_path):
    apply(server, tmp_path, [experiment("ra", ACC, marker), experiment("rb", ACC, marker)])
    a, b = wait_done(server, "ra"), wait_done(server, "rb")
    for e in (a, b):
        assert cond(e, "Succeeded")["reason"] == "ExperimentMaxTrialsReached", e["status"]
        assert e["status"]["trialsSucceeded"] == 4
    pa = [t["spec"]["parameterAssignments"] for t in trials_of(server, "ra")]
    pb = [t["spec"]["parameterAssignments"] for t in trials_of(server, "rb")]
    assert pa == pb and len({json.dumps(p) for p in pa}) == 4, (pa, pb)
    # the best is the one nearest 0.3, and its value is the function's
    best = a["status"]["currentOptimalTrial"]
    xs = [float(p[0]["value"]) for p in pa]
    x = min(xs, key=lambda v: abs(v - 0.3))
    assert float(best["parameterAssignments"][0]["value"]) == x
    assert abs(float(best["observation"]["metrics"][0]["latest"]) - (1 - (x - 0.3) ** 2)) < 1e-5


def test_max_failed_trial_count_fails_the_experiment(server, marker, tmp_path):
    apply(server, tmp_path, experiment("bad", "echo x=${trialParameters.x} accuracy=0.5; exit 3", marker,
                                       maxTrialCount=6, maxFailedTrialCount=2,
                                       parallelTrialCount=1))
    e = wait_done(server, "bad")
    c = cond(e, "Failed")
    assert c and c["reason"] == "ExperimentFailed", e["status"]
    assert c["message"] == "Experiment has failed because max failed count has reached"
    assert e["status"]["trialsFailed"] == 2 and e["status"]["trials"] == 2, e["status"]
    for t in trials_of(server, "bad"):
        assert cond(t, "Failed")["reason"] == "TrialFailed"


def test_metrics_unavailable_when_the_trial_prints_none(server, marker, tmp_path):
    apply(server, tmp_path, experiment("quiet", "echo nothing for ${trialParameters.x}", marker, maxTrialCount=1,
                                       parallelTrialCount=1))
    e = wait_done(server, "quiet")
    assert e["status"]["trialMetricsUnavailable"] == 1, e["status"]
    [t] = trials_of(server, "quiet")
    assert cond(t, "MetricsUnavailable")["reason"] == "TrialMetricsUnavailable"
    assert t["status"]["observation"]["metrics"][0]["latest"] == "unavailable"


def test_validation_with_katib_messages(server, marker, tmp_path):
    doc = experiment("invalid", ACC, marker, maxTrialCount=2, maxFailedTrialCount=5,
                     parallelTrialCount=3)
    doc["spec"]["objective"]["type"] = "sideways"
    doc["spec"]["trialTemplate"]["trialParameters"].append({"name": "other", "reference": "nope"})
    p = apply(server, tmp_path, doc, check=False)
    assert p.returncode != 0
    for msg in ['spec.objective.type: Invalid value: "sideways": must be minimize or maximize',
                "spec.maxFailedTrialCount: Invalid value: 5: should be less than or equal to "
                "spec.maxTrialCount",
                "spec.parallelTrialCount: Invalid value: 3: should be less than or equal to "
                "spec.maxTrialCount",
                'spec.trialTemplate.trialParameters[1].reference: Invalid value: "nope": '
                "parameter reference nope does not exist in spec.parameters",
                'spec.trialTemplate.trialParameters[1].name: Invalid value: "other": parameter '
                "name: other in spec.trialParameters not found in spec.trialTemplate"]:
        assert msg in p.stderr, p.stderr
    doc = experiment("badalgo", ACC, marker, algorithm="annealing")
    p = apply(server, tmp_path, doc, check=False)
    assert p.returncode != 0 and "spec.algorithm.algorithmName" in p.stderr, p.stderr
    assert "annealing" in p.stderr, p.stderr
    doc = experiment("noname", ACC.replace("trialParameters.x", "trialParameters.z"), marker)
    del doc["spec"]["trialTemplate"]["primaryContainerName"]
    p = apply(server, tmp_path, doc, check=False)
    assert "spec.trialTemplate.primaryContainerName: Required value: must be specified" in \
        p.stderr, p.stderr
    assert ("spec.trialTemplate: Invalid value: \"\": parameters: [${trialParameters.z}] in "
            "spec.trialTemplate not found in spec.trialParameters") in p.stderr, p.stderr
    assert server.json("get", "experiments")["items"] == []


def test_configmap_template_and_retain(server, marker, tmp_path):
    tmpl = yaml.safe_dump(job_template(ACC, marker))
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tmpl"},
          "data": {"job.yaml": tmpl}}
    apply(server, tmp_path, [cm, experiment(
        "cm", ACC, marker, maxTrialCount=2,
        template={"configMap": {"configMapName": "tmpl", "templatePath": "job.yaml"},
                  "retain": True})])
    e = wait_done(server, "cm")
    assert e["status"]["trialsSucceeded"] == 2, e["status"]
    jobs = server.json("get", "jobs")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(
        t["metadata"]["name"] for t in trials_of(server, "cm"))
    for j in jobs:
        [ref] = j["metadata"]["ownerReferences"]
        assert ref["kind"] == "Trial" and ref["apiVersion"] == API


def test_medianstop_stops_trials_worse_than_the_rule(server, marker, tmp_path):
    # minimize loss = the number of trials before this one (one at a time), reported 8 times
    # 0.3 s apart: the rule after two trials is the mean of their first 2 reports (0.5), and
    # every later trial is worse
    seen = tmp_path / "seen"
    seen.mkdir()
    cmd = (f": ${{trialParameters.x}}; n=$(ls {seen} | wc -l); touch {seen}/$KATIB_TRIAL_NAME; "
           "for i in 1 2 3 4 5 6 7 8; do echo loss=$n; sleep 0.3; done")
    doc = experiment("ms", cmd, marker, parallelTrialCount=1, maxTrialCount=4,
                     earlyStopping={"algorithmName": "medianstop", "algorithmSettings": [
                         {"name": "min_trials_required", "value": "2"},
                         {"name": "start_step", "value": "2"}]})
    doc["spec"]["objective"] = {"type": "minimize", "objectiveMetricName": "loss"}
    apply(server, tmp_path, doc)
    e = wait_done(server, "ms", timeout=90)
    st = e["status"]
    assert st["trialsSucceeded"] == 2 and st["trialsEarlyStopped"] == 2, st
    trials = trials_of(server, "ms")
    assert [bool(cond(t, "EarlyStopped")) for t in trials] == [False, False, True, True]
    for t in trials[2:]:
        assert cond(t, "EarlyStopped")["reason"] == "TrialEarlyStopped"
        # stopped after start_step reports, not run to its end
        assert len([x for x in t["status"]["observationLog"] if x["name"] == "loss"]) < 8
    assert st["currentOptimalTrial"]["bestTrialName"] == trials[0]["metadata"]["name"]


def test_trials_queue_in_a_local_queue(server, marker, tmp_path):
    queues = [
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ResourceFlavor",
         "metadata": {"name": "default-flavor"}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
         "metadata": {"name": "cq"},
         "spec": {"namespaceSelector": {}, "resourceGroups": [{
             "coveredResources": ["cpu"],
             "flavors": [{"name": "default-flavor",
                          "resources": [{"name": "cpu", "nominalQuota": 1}]}]}]}},
        {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
         "metadata": {"name": "main", "namespace": "default"}, "spec": {"clusterQueue": "cq"}},
    ]
    apply(server, tmp_path, queues)
    log = tmp_path / "overlap"
    tmpl = job_template(f"echo start >> {log}; sleep 0.5; echo end >> {log}; {ACC}", marker,
                        labels={"kueue.x-k8s.io/queue-name": "main"})
    tmpl["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    apply(server, tmp_path, experiment("queued", ACC, marker, maxTrialCount=3,
                                       parallelTrialCount=3, template={"trialSpec": tmpl}))
    # every trial's job goes through Kueue: a Workload each, one admitted at a time
    assert wait_until(lambda: len(server.json("get", "workloads")["items"]) >= 1, 20)
    e = wait_done(server, "queued")
    assert e["status"]["trialsSucceeded"] == 3, e["status"]
    depth = peak = 0
    for line in log.read_text().split():
        depth += 1 if line == "start" else -1
        peak = max(peak, depth)
    assert peak == 1 and log.read_text().count("start") == 3, log.read_text()


def test_pytorchjob_trials(server, marker, tmp_path):
    tmpl = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
            "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "restartPolicy": "Never",
                     "template": {"spec": {"containers": [{
                         "name": "pytorch", "image": "trainyard.local/shell:latest",
                         "command": ["sh", "-c", ACC],
                         "env": [{"name": "MARKER", "value": marker}]}]}}}}}}
    doc = experiment("pt", ACC, marker, maxTrialCount=2, template={"trialSpec": tmpl})
    doc["spec"]["trialTemplate"]["primaryContainerName"] = "pytorch"
    apply(server, tmp_path, doc)
    e = wait_done(server, "pt")
    assert e["status"]["trialsSucceeded"] == 2, [t["status"] for t in trials_of(server, "pt")]
    assert e["spec"]["trialTemplate"]["successCondition"] == \
        'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
    assert e["spec"]["trialTemplate"]["primaryPodLabels"] == {
        "training.kubeflow.org/job-role": "master"}
    for t in trials_of(server, "pt"):
        x = float(t["spec"]["parameterAssignments"][0]["value"])
        assert abs(value(t) - (1 - (x - 0.3) ** 2)) < 1e-5


def test_push_collector(server, marker, tmp_path):
    helper = os.path.join(REPO, "examples", "katib", "report_metrics.py")
    cmd = (f"/usr/bin/python3 {helper} accuracy=0.5 && "
           f"/usr/bin/python3 {helper} accuracy=${{trialParameters.x}}")
    tmpl = job_template(cmd, marker)
    # the server listens on loopback: the trial reaches it on the host's network
    tmpl["spec"]["template"]["spec"]["hostNetwork"] = True
    doc = experiment("push", cmd, marker, maxTrialCount=2, template={"trialSpec": tmpl},
                     metricsCollectorSpec={"collector": {"kind": "Push"}})
    apply(server, tmp_path, doc)
    e = wait_done(server, "push")
    assert e["status"]["trialsSucceeded"] == 2, [t["status"] for t in trials_of(server, "push")]
    for t in trials_of(server, "push"):
        x = t["spec"]["parameterAssignments"][0]["value"]
        log = [r["value"] for r in t["status"]["observationLog"]]
        assert [float(v) for v in log] == [0.5, float(x)], log
        assert value(t, which="max") == max(0.5, float(x))
    # a trial's endpoint refuses what is not Push's
    import urllib.error
    import urllib.request
    for trial, code in (("nosuch", 404), (trials_of(server, "push")[0]["metadata"]["name"], 409)):
        url = server.url + f"/apis/{API}/namespaces/default/trials/{trial}/metrics"
        req = urllib.request.Request(url, data=b'{"metrics": {"accuracy": 1}}', method="POST",
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=10)
        assert ei.value.code == code


def test_discovery_lists_both_kubeflow_versions(server):
    g = json.loads(server.kubectl("get", "--raw", "/apis/kubeflow.org").stdout)
    assert [v["version"] for v in g["versions"]] == ["v1", "v1beta1"]
    assert g["preferredVersion"]["version"] == "v1"
    res = server.kubectl("api-resources", "--api-group=kubeflow.org").stdout
    for kind in ("Experiment", "Trial", "Suggestion", "PyTorchJob"):
        assert kind in res, res
    versions = server.kubectl("api-versions").stdout.split()
    assert "kubeflow.org/v1" in versions and "kubeflow.org/v1beta1" in versions, versions
    out = server.kubectl("explain", "experiment.spec.trialTemplate").stdout
    assert "VERSION:    v1beta1" in out and "primaryContainerName" in out, out


def test_next_trial_starts_as_soon_as_one_ends(server, marker, tmp_path):
    # one trial at a time; each notes when its process starts and ends: the gap between one's
    # end and the next one's start is the controller's reaction (job watch event -> trial ->
    # job -> pod -> process), with no poll in between
    log = tmp_path / "times"
    cmd = f"echo start $(date +%s.%N) >> {log}; {ACC}; echo end $(date +%s.%N) >> {log}"
    apply(server, tmp_path, experiment("gap", cmd, marker, parallelTrialCount=1,
                                       maxTrialCount=6))
    e = wait_done(server, "gap")
    assert e["status"]["trialsSucceeded"] == 6, e["status"]
    rows = [line.split() for line in log.read_text().splitlines()]
    starts = [float(t) for k, t in rows if k == "start"]
    ends = [float(t) for k, t in rows if k == "end"]
    gaps = [s - e for s, e in zip(starts[1:], ends[:-1])]
    print(f"trial start gaps (s): {['%.3f' % g for g in gaps]}, max {max(gaps):.3f}")
    # on an idle machine ~30-60 ms (docs/hpo.md); generous here, the suite runs on shared CPUs
    assert max(gaps) < 1.0, gaps


def test_trainyard_run_runs_an_experiment_to_its_end(run_trainyard, manifest, marker):
    ok = experiment("fg", ACC, marker, maxTrialCount=3, parallelTrialCount=2)
    r = run_trainyard(manifest(yaml.safe_dump(ok)))
    assert r.rc == 0, r
    assert ("Experiment fg Succeeded: Experiment has succeeded because max trial count has "
            "reached") in r.err + r.out, r
    # the view: each trial with its parameters and metric, and the best
    text = r.err + r.out
    # (a line each time a trial changes: its last one says how it ended)
    last = {line.split(":")[0]: line for line in text.splitlines()
            if line.startswith("trial/fg-")}
    assert len(last) == 3 and all("Succeeded x=" in t and "accuracy=" in t
                                  for t in last.values()), r
    assert "best/fg: best fg-" in text, r
    bad = experiment("fgbad", "echo x=${trialParameters.x}; exit 1", marker, maxTrialCount=3,
                     maxFailedTrialCount=1, parallelTrialCount=1)
    bad["spec"]["trialTemplate"]["trialSpec"]["spec"]["backoffLimit"] = 0
    r = run_trainyard(manifest(yaml.safe_dump(bad)), timeout=60)
    assert r.rc == 1, r
    assert "Experiment fgbad Failed: Experiment has failed because max failed count has " \
           "reached" in r.err + r.out, r


@pytest.mark.parametrize("algorithm", ["sobol", "random"])
def test_experiment_resumes_after_a_server_restart(tmp_path, marker, monkeypatch, algorithm):
    # the suggester lives in the server: a new one is rebuilt from the Trials, and the budget
    # counts the trials made before the restart
    monkeypatch.setenv("TRAINYARD_RESTART_BACKOFF_MS", "50")
    s = Server(tmp_path / "data").start()
    try:
        apply(s, tmp_path, experiment("resume", f"sleep 1; {ACC}", marker,
                                      algorithm=algorithm, parallelTrialCount=1,
                                      maxTrialCount=3))
        assert wait_until(lambda: len(trials_of(s, "resume")) >= 1, 20)
        assert s.stop() == 0
        s.start()
        e = wait_done(s, "resume")
        assert cond(e, "Succeeded")["reason"] == "ExperimentMaxTrialsReached", e["status"]
        trials = trials_of(s, "resume")
        assert len(trials) == 3 and e["status"]["trialsSucceeded"] == 3, e["status"]
        # sobol continues its sequence, random its stream: three different points
        assert len({t["spec"]["parameterAssignments"][0]["value"] for t in trials}) == 3
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_tfjob_trials(server, marker, tmp_path):
    # a TFJob of one Worker: no pod has the master role, so worker 0 reports
    tmpl = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob",
            "spec": {"tfReplicaSpecs": {"Worker": {"replicas": 1, "restartPolicy": "Never",
                     "template": {"spec": {"containers": [{
                         "name": "tensorflow", "image": "trainyard.local/shell:latest",
                         "command": ["sh", "-c", ACC],
                         "env": [{"name": "MARKER", "value": marker}]}]}}}}}}
    doc = experiment("tf", ACC, marker, maxTrialCount=2, template={"trialSpec": tmpl})
    doc["spec"]["trialTemplate"]["primaryContainerName"] = "tensorflow"
    apply(server, tmp_path, doc)
    e = wait_done(server, "tf")
    assert e["status"]["trialsSucceeded"] == 2, [t["status"] for t in trials_of(server, "tf")]
    for t in trials_of(server, "tf"):
        x = float(t["spec"]["parameterAssignments"][0]["value"])
        assert abs(value(t) - (1 - (x - 0.3) ** 2)) < 1e-5


def test_file_collector_text_and_json(server, marker, tmp_path):
    out = tmp_path / "metrics"
    out.mkdir()
    # TEXT: Katib's name=value lines, in a file per trial (${trialSpec.Name} in the path)
    cmd = (f"echo noise; f={out}/$KATIB_TRIAL_NAME.txt; echo 'accuracy=0.1' > $f; "
           f"echo accuracy=${{trialParameters.x}} >> $f")
    apply(server, tmp_path, experiment(
        "filetext", cmd, marker, maxTrialCount=2, metricsCollectorSpec={
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": f"{out}/${{trialSpec.Name}}.txt"}}}))
    e = wait_done(server, "filetext")
    assert e["status"]["trialsSucceeded"] == 2, [t["status"] for t in trials_of(server,
                                                                                "filetext")]
    assert e["spec"]["metricsCollectorSpec"]["source"]["fileSystemPath"]["format"] == "TEXT"
    for t in trials_of(server, "filetext"):
        x = float(t["spec"]["parameterAssignments"][0]["value"])
        assert [float(r["value"]) for r in t["status"]["observationLog"]] == [0.1, x]
    # JSON lines
    cmd = (f"echo '{{\"accuracy\": \"${{trialParameters.x}}\", \"timestamp\": 1700000000}}' "
           f"> {out}/$KATIB_TRIAL_NAME.json")
    apply(server, tmp_path, experiment(
        "filejson", cmd, marker, maxTrialCount=1, parallelTrialCount=1, metricsCollectorSpec={
            "collector": {"kind": "File"},
            "source": {"fileSystemPath": {"path": f"{out}/${{trialSpec.Name}}.json",
                                          "format": "JSON"}}}))
    e = wait_done(server, "filejson")
    [t] = trials_of(server, "filejson")
    assert e["status"]["trialsSucceeded"] == 1, t["status"]
    [r] = t["status"]["observationLog"]
    assert r["name"] == "accuracy" and r["timeStamp"].startswith("2023-11-14T22:13:20"), r


def test_deleting_an_experiment_takes_its_trials_jobs_and_pods(server, marker, tmp_path):
    apply(server, tmp_path, experiment("gone", f"sleep 30; {ACC}", marker, maxTrialCount=2))
    assert wait_until(lambda: len(server.json("get", "pods")["items"]) == 2, 20)
    server.kubectl("delete", "experiment", "gone", "--wait=false")
    assert wait_until(lambda: not server.json("get", "trials")["items"] and
                      not server.json("get", "jobs")["items"] and
                      not server.json("get", "suggestions")["items"] and
                      not server.json("get", "pods")["items"], 30)


def test_grid_order_is_deterministic_by_random_state(server, marker, tmp_path):
    params = [{"name": "x", "parameterType": "double",
               "feasibleSpace": {"min": "0.1", "max": "0.5", "step": "0.1"}},
              {"name": "k", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}}]
    cmd = f"echo ${{trialParameters.k}}; {ACC}"
    docs = [experiment(n, cmd, marker, params, algorithm="grid",
                       settings=(("random_state", "5"),), parallelTrialCount=2, maxTrialCount=10)
            for n in ("ga", "gb")]
    apply(server, tmp_path, docs)
    a, b = wait_done(server, "ga"), wait_done(server, "gb")
    pa = [t["spec"]["parameterAssignments"] for t in trials_of(server, "ga")]
    pb = [t["spec"]["parameterAssignments"] for t in trials_of(server, "gb")]
    # every combination once, in the same seeded order
    assert pa == pb and len({json.dumps(p) for p in pa}) == 10, (pa, pb)
    assert cond(a, "Succeeded")["reason"] == "ExperimentMaxTrialsReached", a["status"]
