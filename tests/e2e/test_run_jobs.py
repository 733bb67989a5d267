"""trainyard run: job lifecycles with small shell workloads, judged from `--output json`."""
import json
import os
import time

from conftest import expected_master_addr, is_pod_address, start_trainyard, wait_until, processes_with
from jobs import pytorchjob


def final_pods(run):
    return {p["metadata"]["name"]: p for p in json.loads(run.out)["items"] if p["kind"] == "Pod"}


def final_job(run, name=None):
    items = [o for o in json.loads(run.out)["items"] if o["kind"] != "Pod"]
    if name is None:
        assert len(items) == 1, run
        return items[0]
    return next(j for j in items if j["metadata"]["name"] == name)


def condition(job, ctype):
    for c in job.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


def test_success_sets_conditions_and_replica_statuses(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("ok", marker, master_cmd="echo master $RANK/$WORLD_SIZE",
                               worker_cmd="echo worker $RANK", workers=2))
    r = run_trainyard("-o", "json", path)
    assert r.rc == 0, r
    job = final_job(r)
    assert condition(job, "Created")["reason"] == "PyTorchJobCreated"
    succeeded = condition(job, "Succeeded")
    assert succeeded["status"] == "True" and succeeded["reason"] == "PyTorchJobSucceeded", job
    running = condition(job, "Running")
    assert running is None or running["status"] == "False"
    assert job["status"]["replicaStatuses"]["Master"]["succeeded"] == 1
    assert "startTime" in job["status"] and "completionTime" in job["status"]


def test_env_injection_reaches_every_rank(run_trainyard, manifest, marker, tmp_path):
    out = tmp_path / "env"
    out.mkdir()
    cmd = f"env | sort > {out}/$POD_NAME.env"
    # The job succeeds when the master does; the master waits so the workers surely wrote.
    path = manifest(pytorchjob("envjob", marker, master_cmd=cmd + "; sleep 1", worker_cmd=cmd,
                               workers=2))
    r = run_trainyard("-o", "json", path)
    assert r.rc == 0, r
    envs = {}
    for f in out.iterdir():
        envs[f.stem] = dict(line.split("=", 1) for line in f.read_text().splitlines() if "=" in line)
    assert sorted(envs) == ["envjob-master-0", "envjob-worker-0", "envjob-worker-1"]
    master_ip = envs["envjob-master-0"]["POD_IP"]
    assert is_pod_address(master_ip), master_ip
    for name, env in envs.items():
        assert env["MASTER_ADDR"] == expected_master_addr(master_ip, "envjob-master-0"), \
            (name, env)
        assert env["MASTER_PORT"] == "23456"
        assert env["WORLD_SIZE"] == "3"
        assert env["PET_NNODES"] == "3"
    assert envs["envjob-master-0"]["RANK"] == "0"
    assert envs["envjob-worker-0"]["RANK"] == "1"
    assert envs["envjob-worker-1"]["RANK"] == "2"
    # Every pod has its own address.
    assert len({e["POD_IP"] for e in envs.values()}) == 3


def test_backoff_limit_exceeded_fails_with_reason(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("flaky", marker, master_cmd="exit 3", worker_cmd="sleep 30",
                               run_policy={"backoffLimit": 2}))
    t0 = time.monotonic()
    r = run_trainyard("-o", "json", path, env={"TRAINYARD_RESTART_BACKOFF_MS": "50"})
    assert r.rc == 1, r
    job = final_job(r)
    failed = condition(job, "Failed")
    assert failed and failed["status"] == "True", job
    assert "backoff" in failed["message"].lower() or "BackoffLimit" in failed["reason"], failed
    assert int(job["metadata"]["annotations"]["trainyard.dev/restarts"]) >= 2
    assert time.monotonic() - t0 < 60


def test_exit_code_policy_permanent_error_fails_at_once(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("perm", marker, master_cmd="exit 1", restart="ExitCode",
                               run_policy={"backoffLimit": 5}))
    r = run_trainyard("-o", "json", path)
    assert r.rc == 1, r
    job = final_job(r)
    assert condition(job, "Failed")["status"] == "True"
    assert int(job["metadata"].get("annotations", {}).get("trainyard.dev/restarts", "0")) == 0


def test_exit_code_policy_retryable_error_restarts(run_trainyard, manifest, marker, tmp_path):
    flag = tmp_path / "second-try"
    # First run exits 137 (retryable), the second succeeds.
    cmd = f"if [ -e {flag} ]; then exit 0; else touch {flag}; exit 137; fi"
    path = manifest(pytorchjob("retry", marker, master_cmd=cmd, restart="ExitCode"))
    r = run_trainyard("-o", "json", path)
    assert r.rc == 0, r
    job = final_job(r)
    assert condition(job, "Succeeded")["status"] == "True"
    # Restarting was replaced by Running again, as the operator does; the count stays.
    assert job["metadata"]["annotations"]["trainyard.dev/restarts"] == "1"


def test_never_policy_failure_fails_job(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("never", marker, master_cmd="exit 2", restart="Never"))
    r = run_trainyard("-o", "json", path)
    assert r.rc == 1, r
    assert condition(final_job(r), "Failed")["status"] == "True"


def test_active_deadline_stops_the_job(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("slow", marker, master_cmd="sleep 60", worker_cmd="sleep 60",
                               run_policy={"activeDeadlineSeconds": 2}))
    t0 = time.monotonic()
    r = run_trainyard("-o", "json", path)
    elapsed = time.monotonic() - t0
    assert r.rc == 1, r
    failed = condition(final_job(r), "Failed")
    assert failed["status"] == "True"
    assert "deadline" in (failed["reason"] + failed["message"]).lower(), failed
    assert elapsed < 30, elapsed


def test_graceful_stop_then_kill_after_grace(run_trainyard, manifest, marker):
    # The master ignores SIGTERM; the deadline stops it, the grace period (1 s) ends it.
    path = manifest(pytorchjob("stubborn", marker, master_cmd="trap '' TERM; sleep 60",
                               run_policy={"activeDeadlineSeconds": 1}, grace=1))
    t0 = time.monotonic()
    r = run_trainyard("-o", "json", path)
    assert r.rc == 1, r
    assert time.monotonic() - t0 < 20


def test_job_that_can_never_fit_fails_at_once(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("huge", marker, master_cmd="true", worker_cmd="true", workers=3,
                               resources={"limits": {"nvidia.com/gpu": 2}}))
    t0 = time.monotonic()
    r = run_trainyard("-o", "json", "--gpus", "4", path)
    assert r.rc == 1, r
    failed = condition(final_job(r), "Failed")
    assert failed["status"] == "True"
    assert "nvidia.com/gpu" in failed["message"] and "8" in failed["message"], failed
    assert time.monotonic() - t0 < 5
    assert not processes_with(marker)


def test_gpus_are_handed_out_without_sharing(run_trainyard, manifest, marker, tmp_path):
    out = tmp_path / "gpus"
    out.mkdir()
    # Each pod waits for the other's file: the job succeeds with its master, and a worker that
    # had not started by then would never write (and would prove nothing about sharing).
    cmd = (f"echo $CUDA_VISIBLE_DEVICES > {out}/$POD_NAME; "
           f"while [ $(ls {out} | wc -l) -lt 2 ]; do sleep 0.05; done")
    path = manifest(pytorchjob("gpujob", marker, master_cmd=cmd, worker_cmd=cmd, workers=1,
                               resources={"limits": {"nvidia.com/gpu": 2}}))
    r = run_trainyard("-o", "json", "--gpus", "4", path)
    assert r.rc == 0, r
    seen = [set(f.read_text().strip().split(",")) for f in out.iterdir()]
    assert len(seen) == 2 and all(len(s) == 2 for s in seen), seen
    assert not (seen[0] & seen[1]), seen


def test_job_waiting_for_gpus_says_why_then_runs(run_trainyard, manifest, marker):
    first = pytorchjob("first", marker, master_cmd="sleep 2",
                       resources={"limits": {"nvidia.com/gpu": 2}})
    second = pytorchjob("second", marker, master_cmd="true",
                        resources={"limits": {"nvidia.com/gpu": 2}})
    path = manifest(first + "\n---\n" + second)
    r = run_trainyard(path, "--gpus", "2")
    assert r.rc == 0, r
    assert "waiting for resources" in r.out and "nvidia.com/gpu" in r.out, r


def test_suspended_job_does_not_run(run_trainyard, manifest, marker, tmp_path):
    flag = tmp_path / "ran"
    path = manifest(pytorchjob("sleepy", marker, master_cmd=f"touch {flag}",
                               run_policy={"suspend": True}))
    r = run_trainyard("-o", "json", path, timeout=30)
    assert r.rc == 1, r
    assert condition(final_job(r), "Suspended")["status"] == "True"
    assert not flag.exists()


def test_limits_are_enforced_and_reported(run_trainyard, manifest, marker):
    # 64Mi limit; the workload tries to hold 200 MB and is OOM-killed (cgroups) or fails (rlimit).
    hog = "/usr/bin/python3 -c 'x = bytearray(200 * 1024 * 1024); print(len(x))'"
    path = manifest(pytorchjob("hog", marker, master_cmd=hog, restart="Never",
                               resources={"limits": {"memory": "64Mi", "cpu": "500m"}}))
    r = run_trainyard("-o", "json", path)
    assert r.rc == 1, r
    pod = final_pods(r)["hog-master-0"]
    message = pod["status"].get("message", "") + json.dumps(pod["status"].get("conditions", []))
    assert "memory" in message and "64Mi" in message, pod["status"]
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] != 0, term


def test_pod_status_says_image_is_not_pulled(run_trainyard, manifest, marker):
    path = manifest(pytorchjob("img", marker, master_cmd="true"))
    r = run_trainyard("-o", "json", path)
    assert r.rc == 0, r
    pod = final_pods(r)["img-master-0"]
    assert is_pod_address(pod["status"]["podIP"]), pod["status"]
    assert "image" in json.dumps(pod["status"]), pod["status"]


def test_bad_command_fails_the_pod_with_a_message(run_trainyard, manifest, marker):
    job = pytorchjob("badcmd", marker, master_cmd="true", restart="Never")
    job = job.replace('"/bin/sh"', '"/nonexistent/program"')
    path = manifest(job)
    r = run_trainyard("-o", "json", path)
    assert r.rc == 1, r
    pod = final_pods(r)["badcmd-master-0"]
    assert "/nonexistent/program" in json.dumps(pod["status"]), pod["status"]


def test_job_in_its_own_namespace(run_trainyard, manifest, marker):
    job = json.loads(pytorchjob("nsjob", marker, master_cmd="echo $POD_NAMESPACE"))
    job["metadata"]["namespace"] = "team-a"
    r = run_trainyard("-o", "json", manifest(json.dumps(job)))
    assert r.rc == 0, r
    pod = final_pods(r)["nsjob-master-0"]
    assert pod["metadata"]["namespace"] == "team-a"


def test_a_claim_is_shared_by_the_pods_that_mount_it(run_trainyard, manifest, tmp_path):
    """A PersistentVolumeClaim in the manifest is provisioned under the run's state directory;
    one pod writes to it, another reads what it wrote."""
    mount = {"volumeMounts": [{"name": "d", "mountPath": str(tmp_path / "mnt")}]}
    vols = [{"name": "d", "persistentVolumeClaim": {"claimName": "shared"}}]

    def replica(cmd):
        return {"replicas": 1, "restartPolicy": "Never", "template": {"spec": {
            "containers": [{"name": "pytorch", "image": "x", "command": ["sh", "-c", cmd],
                            **mount}], "volumes": vols}}}
    path = manifest(json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "shared"},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}})
        + "\n---\n" + json.dumps({
            "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "share"},
            "spec": {"pytorchReplicaSpecs": {
                "Worker": replica(f"echo from-worker > {tmp_path}/mnt/msg"),
                "Master": replica(f"while [ ! -s {tmp_path}/mnt/msg ]; do sleep 0.05; done; "
                                  f"cat {tmp_path}/mnt/msg")}}}))
    r = run_trainyard(path)
    assert r.rc == 0, r
    volumes = os.listdir(tmp_path / "state" / "volumes")
    assert len(volumes) == 1 and volumes[0].startswith("pvc-"), volumes
    assert (tmp_path / "state" / "volumes" / volumes[0] / "msg").read_text() == "from-worker\n"
    logs = [p for p in (tmp_path / "state" / "pods").glob("*share-master-0*/pytorch/0.log")]
    assert logs and logs[0].read_text().rstrip().endswith("from-worker"), logs
