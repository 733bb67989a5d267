"""What `trainyard run` reads: the files `kubectl apply -f` takes (Namespaces and Kueue's
objects beside the jobs, directories), and how queued jobs that wait say why, or fail when
nothing in the run can ever admit them."""
import json
import os
import re

from jobs import pytorchjob
from test_kueue import FLAVOR, cluster_queue, gpu_job, local_queue

NODES = ["--nodes", "2x{cpu:8,memory:32Gi,nvidia.com/gpu:4}"]


def namespace(name, labels=None):
    return json.dumps({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": name, "labels": labels or {}}})


def test_namespace_documents_are_created_first(run_trainyard, manifest, marker):
    job = json.loads(pytorchjob("j", marker, master_cmd="true"))
    job["metadata"]["namespace"] = "team-a"
    # The job comes before its namespace in the file; the namespace still exists first, and
    # its labels decide the ClusterQueue's namespaceSelector.
    cq = json.loads(cluster_queue("cq", 4))
    cq["spec"]["namespaceSelector"] = {"matchLabels": {"team": "a"}}
    qjob = json.loads(gpu_job("q", marker, "lq", 1, cmd="true", ns="team-a"))
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "team-a"},
           "spec": {"ports": [{"port": 80}]}}
    docs = [json.dumps(job), json.dumps(qjob), namespace("team-a", {"team": "a"}), FLAVOR,
            json.dumps(cq), local_queue("team-a", "lq", "cq"), json.dumps(svc),
            namespace("default", {"x": "y"})]
    path = manifest("\n---\n".join(docs))
    r = run_trainyard(*NODES, "-o", "json", path)
    assert r.rc == 0, r
    items = json.loads(r.out)["items"]
    assert {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items
            if o["kind"] == "PyTorchJob"} == {("team-a", "j"), ("team-a", "q")}


def test_bad_namespace_name_is_a_manifest_error(run_trainyard, manifest):
    path = manifest(namespace("Team_A"))
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert re.search(r"job\d+\.yaml:\d+:\d+: metadata.name: Invalid value: \"Team_A\"", r.err), r
    path = manifest('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}')
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert re.search(r"job\d+\.yaml:1:\d+: kind: trainyard run runs PyTorchJobs and TFJobs, "
                     r"not bare Pods", r.err), r


def test_a_directory_runs_its_manifests_in_name_order(run_trainyard, tmp_path, marker):
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "b-job.yaml").write_text(gpu_job("b", marker, "lq", 1, cmd="true"))
    (d / "a-queues.yml").write_text("\n---\n".join([FLAVOR, cluster_queue("cq", 4),
                                                    local_queue("default", "lq", "cq")]))
    (d / "notes.txt").write_text("not a manifest")
    (d / "sub" / "c-job.json").write_text(pytorchjob("c", marker, master_cmd="true"))
    r = run_trainyard(*NODES, "-o", "json", str(d) + "/")
    assert r.rc == 0, r
    jobs = [o["metadata"]["name"] for o in json.loads(r.out)["items"] if o["kind"] == "PyTorchJob"]
    assert jobs == ["b"], r
    r = run_trainyard(*NODES, "-o", "json", "-R", str(d))
    assert r.rc == 0, r
    jobs = [o["metadata"]["name"] for o in json.loads(r.out)["items"] if o["kind"] == "PyTorchJob"]
    assert jobs == ["b", "c"], r
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "x.yaml").write_text(pytorchjob("x", marker, master_cmd="true"))
    r = run_trainyard(str(empty))
    assert r.rc == 2, r
    assert f"trainyard run: {empty}: no .yaml, .yml or .json files" in r.err, r


QUEUES = "\n---\n".join([FLAVOR, cluster_queue("cq", 4), local_queue("default", "main", "cq")])


def test_queued_job_that_can_never_be_admitted_fails_with_why(run_trainyard, manifest, marker):
    cases = [
        ("mian", 1, QUEUES, "LocalQueue mian doesn't exist"),
        ("main", 8, QUEUES, "request > maximum capacity (8 > 4)"),
        ("main", 1, "\n---\n".join([FLAVOR, local_queue("default", "main", "nope")]),
         "ClusterQueue nope doesn't exist"),
    ]
    for queue, gpus, queues, why in cases:
        path = manifest(queues + "\n---\n" + gpu_job("big", marker, queue, gpus, cmd="true"))
        r = run_trainyard("--nodes", "4x{cpu:8,memory:32Gi,nvidia.com/gpu:8}", path, timeout=60)
        assert r.rc == 1, r
        # While it waits the view says why; then it fails, saying why.
        assert re.search(rf"^pytorchjob/big: Queued: .*{re.escape(why)}", r.out, re.M), r
        assert re.search(rf"^PyTorchJob big Failed: PyTorchJob big can never be admitted by its "
                         rf"queue {queue}: .*{re.escape(why)}", r.out, re.M), r


def test_queued_job_waits_for_the_quota_another_job_frees(run_trainyard, manifest, marker):
    # b waits for a's 4 GPUs longer than the run waits on a settled queue: a's running pod
    # keeps it waiting, not failing.
    path = manifest("\n---\n".join([QUEUES, gpu_job("a", marker, "main", 4, cmd="sleep 5"),
                                    gpu_job("b", marker, "main", 4, cmd="true")]))
    r = run_trainyard(*NODES, path, timeout=90)
    assert r.rc == 0, r
    assert re.search(r"^pytorchjob/b: Queued: .*insufficient unused quota", r.out, re.M), r
    assert "PyTorchJob a Succeeded" in r.out and "PyTorchJob b Succeeded" in r.out, r
