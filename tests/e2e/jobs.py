"""Manifest builders for the end-to-end tests: small PyTorchJobs/TFJobs around shell commands."""
import json


def container(cmd, marker, name="pytorch", env=None, resources=None, port=None):
    c = {
        "name": name,
        "image": "busybox",
        "command": ["/bin/sh", "-c", cmd],
        "env": [{"name": "TY_MARKER", "value": marker}] + (env or []),
    }
    if resources:
        c["resources"] = resources
    if port:
        c["ports"] = [{"name": "pytorchjob-port", "containerPort": port}]
    return c


def pytorchjob(name, marker, master_cmd=None, worker_cmd=None, workers=1, restart="OnFailure",
               run_policy=None, resources=None, extra_spec=None, grace=None):
    specs = {}
    for rtype, cmd, n in (("Master", master_cmd, 1), ("Worker", worker_cmd, workers)):
        if cmd is None or n == 0:
            continue
        pod_spec = {"containers": [container(cmd, marker, resources=resources)]}
        if grace is not None:
            pod_spec["terminationGracePeriodSeconds"] = grace
        specs[rtype] = {"replicas": n, "restartPolicy": restart,
                        "template": {"spec": pod_spec}}
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": specs},
    }
    if run_policy:
        job["spec"]["runPolicy"] = run_policy
    if extra_spec:
        job["spec"].update(extra_spec)
    return json.dumps(job, indent=2)
