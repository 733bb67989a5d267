"""trainyard run with bad manifests: a clear error naming file, line, column and field, and
nothing started."""
import os

from jobs import pytorchjob

GOOD = """\
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata:
  name: fine
spec:
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      template:
        spec:
          containers:
            - name: pytorch
              image: x
              command: ["/bin/sh", "-c", "touch {flag}"]
"""


def test_negative_replicas_error_names_line_column_and_field(run_trainyard, manifest, tmp_path):
    flag = tmp_path / "ran"
    text = GOOD.format(flag=flag) + """\
    Worker:
      replicas: -1
      template:
        spec:
          containers:
            - name: pytorch
              image: x
              command: ["/bin/sh", "-c", "touch {flag}"]
""".format(flag=flag)
    path = manifest(text, "job.yaml")
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert f"{path}:16:17: spec.pytorchReplicaSpecs.Worker.replicas: " in r.err, r
    assert not flag.exists()
    assert not (tmp_path / "state").exists() or not os.listdir(tmp_path / "state")


def test_unknown_field_gets_did_you_mean(run_trainyard, manifest, tmp_path):
    flag = tmp_path / "ran"
    text = GOOD.format(flag=flag).replace("command:", "comand:")
    path = manifest(text, "typo.yaml")
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert f"{path}:14:15:" in r.err, r
    assert 'unknown field' in r.err and 'did you mean "command"' in r.err, r
    assert not flag.exists()


def test_yaml_syntax_error_has_position(run_trainyard, manifest, tmp_path):
    path = manifest("apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata:\n  name: [x\n",
                    "broken.yaml")
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert f"{path}:" in r.err, r


def test_one_bad_document_stops_the_good_ones(run_trainyard, manifest, tmp_path, marker):
    flag = tmp_path / "ran"
    good = GOOD.format(flag=flag)
    bad = good.replace("name: fine", "name: Not_A_Valid_Name")
    path = manifest(good + "---\n" + bad, "two.yaml")
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert "metadata.name" in r.err, r
    assert not flag.exists()


def test_unknown_kind_is_an_error(run_trainyard, manifest):
    path = manifest("apiVersion: kubeflow.org/v1\nkind: MPIJob\nmetadata:\n  name: x\n")
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert "MPIJob" in r.err, r


def test_bad_quantity_is_an_error(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("q", marker, master_cmd="true",
                               resources={"limits": {"memory": "1Gb"}}))
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert "resources.limits" in r.err and "quantities must match" in r.err, r


def test_missing_file(run_trainyard, tmp_path):
    r = run_trainyard(str(tmp_path / "nope.yaml"))
    assert r.rc == 2, r
    assert "nope.yaml" in r.err and "no such file" in r.err.lower(), r


def test_json_manifest_runs(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("jsonjob", marker, master_cmd="true"), "job.json")
    r = run_trainyard(path)
    assert r.rc == 0, r


def test_webhook_rules_see_the_job_as_written(run_trainyard, manifest, tmp_path):
    """The operator's webhook runs before defaults: a Master without replicas and a lower-case
    key are refused with upstream's paths; a job another controller manages is refused (it
    would never run); the deprecated nProcPerNode is a warning."""
    flag = tmp_path / "ran"
    good = GOOD.format(flag=flag)
    path = manifest(good.replace("      replicas: 1\n", "").replace("Master:", "master:"),
                    "lower.yaml")
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert f'{path}:7:5: spec.pytorchReplicaSpecs[master]: Unsupported value: "master": ' \
        'supported values: "Master", "Worker"' in r.err, r
    path = manifest(good.replace("      replicas: 1\n", ""), "unset.yaml")
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert "spec.pytorchReplicaSpecs[Master].replicas: Forbidden: must be 1" in r.err, r
    path = manifest(good.replace("spec:\n  pytorch", "spec:\n  runPolicy: {managedBy: "
                                 "kueue.x-k8s.io/multikueue}\n  pytorch"), "mk.yaml")
    r = run_trainyard(path)
    assert r.rc == 2 and f'{path}:6:26: spec.runPolicy.managedBy: "kueue.x-k8s.io/multikueue" ' \
        'runs this job, not the training operator' in r.err, r
    assert not flag.exists()
    path = manifest(good.replace("Master:", "Worker:").replace(
        "spec:\n  pytorch", "spec:\n  elasticPolicy: {nProcPerNode: 1}\n  pytorch"), "dep.yaml")
    r = run_trainyard(path)
    assert r.rc == 0, r
    assert f"trainyard run: {path}: warning: spec.elasticPolicy.nProcPerNode is deprecated, use " \
        "spec.nprocPerNode instead" in r.err, r
    assert flag.exists()
