"""Failures explain themselves and never spin: start errors in the pod's status, its events,
the job's Failed condition and `trainyard run`'s output; restarts back off as the kubelet's
CrashLoopBackOff (10 s doubling), and nothing is recreated in a tight loop."""
import json
import os
import time
import urllib.request

import pytest

from conftest import kill_all, wait_until
from jobs import container, pytorchjob
from server_fixture import Server

EXEC_NOT_FOUND = "executable file not found in $PATH"


def job_with_command(name, marker, command, backoff_limit=None, workers=0):
    """A PyTorchJob whose containers run `command` (a list) instead of a shell line."""
    job = json.loads(pytorchjob(name, marker, master_cmd="true",
                                worker_cmd="sleep 60" if workers else None, workers=workers,
                                run_policy={"backoffLimit": backoff_limit}
                                if backoff_limit is not None else None))
    job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
        "command"] = command
    return job


def condition(obj, ctype):
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return c
    return None


# ---- trainyard run ---------------------------------------------------------------------------

def test_run_shows_the_exec_error(run_trainyard, manifest, marker):
    cmd = f"no-such-command-{marker}"
    path = manifest(json.dumps(job_with_command("noexec", marker, [cmd], backoff_limit=1)))
    r = run_trainyard(path, env={"TRAINYARD_RESTART_BACKOFF_MS": "200"}, timeout=60)
    assert r.rc == 1, r
    want = f'exec: "{cmd}": {EXEC_NOT_FOUND}'
    # the pod's line while it is failed, and the job's final line (its Failed condition)
    assert f"pod/noexec-master-0: Failed (exit code 128, StartError): " \
           f'failed to start container "pytorch": {want}' in r.out, r
    final = [ln for ln in r.out.splitlines() if ln.startswith("PyTorchJob noexec Failed")]
    assert final and "reached the specified backoff limit" in final[0] and want in final[0], r

    r = run_trainyard("-o", "json", path, env={"TRAINYARD_RESTART_BACKOFF_MS": "200"},
                      timeout=60)
    job = next(o for o in json.loads(r.out)["items"] if o["kind"] == "PyTorchJob")
    failed = condition(job, "Failed")
    assert failed["status"] == "True" and want in failed["message"], failed
    assert "StartError (exit code 128)" in failed["message"], failed


def test_run_job_without_command_fails_at_once(run_trainyard, manifest, marker):
    job = job_with_command("nocmd", marker, None)
    del job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
        "command"]
    t0 = time.monotonic()
    r = run_trainyard(manifest(json.dumps(job)), timeout=60)
    assert r.rc == 1, r
    assert time.monotonic() - t0 < 30, r
    assert "pod/nocmd-master-0: Pending: CreateContainerConfigError: " \
           'container "pytorch" has no command' in r.out, r
    assert "PyTorchJob nocmd Failed: PyTorchJob nocmd has failed because pod nocmd-master-0 " \
           "can never start" in r.out, r
    # created once: no pod is made again
    assert r.out.count("pod/nocmd-master-0: Pending: CreateContainerConfigError") == 1, r


def test_run_in_place_start_errors_reach_the_backoff_limit(run_trainyard, manifest, marker):
    """A TFJob's pods restart in place (OnFailure): CrashLoopBackOff with the start error as
    the last run, restarts counted against backoffLimit, and the cause in Failed."""
    c = container("true", marker, name="tensorflow")
    c["command"] = [f"/no/such/dir-{marker}/prog"]
    job = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "tfbad"},
           "spec": {"runPolicy": {"backoffLimit": 2}, "tfReplicaSpecs": {"Worker": {
               "replicas": 1, "restartPolicy": "OnFailure",
               "template": {"spec": {"containers": [c]}}}}}}
    r = run_trainyard(manifest(json.dumps(job)), env={"TRAINYARD_RESTART_BACKOFF_MS": "200"},
                      timeout=60)
    assert r.rc == 1, r
    want = f'exec: "/no/such/dir-{marker}/prog": no such file or directory'
    assert "pod/tfbad-worker-0: Running (CrashLoopBackOff): last run StartError (exit code " \
           f'128): failed to start container "tensorflow": {want}' in r.out, r
    final = [ln for ln in r.out.splitlines() if ln.startswith("TFJob tfbad Failed")]
    assert final and "reached the specified backoff limit" in final[0], r
    assert f"last failure: pod tfbad-worker-0, container tensorflow: StartError (exit code " \
           f"128): " in final[0] and want in final[0], r


# ---- trainyard server ------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path, marker):
    s = Server(tmp_path / "data", ["--gpus", "2"]).start()
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def post(server, path, obj):
    req = urllib.request.Request(server.url + path, data=json.dumps(obj).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def get(server, path):
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def events_of(server, name):
    return get(server, "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name="
               + name)["items"]


def pod_dirs(server):
    d = os.path.join(server.data_dir, "node", "pods")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def container_status(pod):
    st = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
    return st[0]


def bare_pod(name, marker, cmd, restart="Never"):
    c = container(cmd, marker, name="c") if cmd is not None else \
        {"name": "c", "image": "busybox", "env": [{"name": "TY_MARKER", "value": marker}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": restart, "containers": [c]}}


def test_server_start_error_in_status_events_and_condition(tmp_path, marker, monkeypatch):
    # a second of back-off: long enough to see the failed pod, short for the test
    monkeypatch.setenv("TRAINYARD_RESTART_BACKOFF_MS", "1000")
    s = Server(tmp_path / "data", ["--gpus", "2"]).start()
    try:
        cmd = f"no-such-command-{marker}"
        want = f'exec: "{cmd}": {EXEC_NOT_FOUND}'
        post(s, "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs",
             job_with_command("noexec", marker, [cmd], backoff_limit=1))
        pod_path = "/api/v1/namespaces/default/pods/noexec-master-0"

        def start_error():
            t = container_status(get(s, pod_path)).get("state", {}).get("terminated", {})
            return t.get("reason") == "StartError" and t
        assert wait_until(start_error, 30), get(s, pod_path)
        term = start_error()
        assert term["exitCode"] == 128 and want in term["message"], term

        job_path = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/noexec"
        assert wait_until(lambda: (condition(get(s, job_path), "Failed") or {})
                          .get("status") == "True", 30), get(s, job_path)
        msg = condition(get(s, job_path), "Failed")["message"]
        assert "reached the specified backoff limit" in msg and want in msg, msg
        ev = [e for e in events_of(s, "noexec-master-0") if e["reason"] == "Failed"]
        assert ev and want in ev[0]["message"] and ev[0]["type"] == "Warning", ev
        # two pods in all (the first and its one restart), whatever the timing
        created = [e for e in events_of(s, "noexec") if e["reason"] == "SuccessfulCreatePod"]
        assert sum(e.get("count", 1) for e in created) == 2, created
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_server_gang_recreation_backs_off(server, marker):
    """Default back-off (10 s): a job whose pod fails at start is recreated once per back-off
    period, not in a loop; the failed pod stays meanwhile, saying why."""
    cmd = f"no-such-command-{marker}"
    post(server, "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs",
         job_with_command("spin", marker, [cmd], workers=1))
    pod_path = "/api/v1/namespaces/default/pods/spin-master-0"
    assert wait_until(lambda: container_status(get(server, pod_path)).get("state", {})
                      .get("terminated", {}).get("reason") == "StartError", 30)
    first = get(server, pod_path)
    job = get(server, "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/spin")
    assert (condition(job, "Restarting") or {}).get("status") == "True", job
    # the next master is a new pod, made only when the back-off has passed
    assert wait_until(lambda: (get(server, pod_path) or first)["metadata"]["uid"]
                      != first["metadata"]["uid"], 40)
    second = get(server, pod_path)
    finished = container_status(first)["state"]["terminated"]["finishedAt"]
    t_fail = time.mktime(time.strptime(finished, "%Y-%m-%dT%H:%M:%SZ"))
    t_new = time.mktime(time.strptime(second["metadata"]["creationTimestamp"],
                                      "%Y-%m-%dT%H:%M:%SZ"))
    assert t_new - t_fail >= 9, (finished, second["metadata"]["creationTimestamp"])
    created = [e for e in events_of(server, "spin") if e["reason"] == "SuccessfulCreatePod"]
    # master and worker, then the master again (the worker's second may be on its way)
    assert sum(e.get("count", 1) for e in created) <= 4, created
    assert len(pod_dirs(server)) <= 4, pod_dirs(server)


def test_server_pod_without_command_waits_and_does_not_spin(server, marker):
    """Applied without validation (a typo'd `comand`), a pod has no command: it waits with
    CreateContainerConfigError, and nothing recreates or restarts it."""
    p = server.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "typo"},
         "spec": {"containers": [{"name": "c", "image": "busybox", "comand": ["true"]}]}}),
        check=False)
    assert p.returncode == 0, (p.stdout, p.stderr)
    path = "/api/v1/namespaces/default/pods/typo"

    def config_error():
        w = container_status(get(server, path)).get("state", {}).get("waiting", {})
        return w.get("reason") == "CreateContainerConfigError" and w
    assert wait_until(config_error, 30), get(server, path)
    assert "has no command" in config_error()["message"]
    out = server.kubectl("get", "pod", "typo").stdout
    assert "CreateContainerConfigError" in out, out
    pod = get(server, path)
    assert pod["status"]["phase"] == "Pending", pod

    # A later pod that runs to its end proves the node went on; the first is untouched.
    post(server, "/api/v1/namespaces/default/pods", bare_pod("later", marker, "true"))
    assert wait_until(lambda: (get(server, "/api/v1/namespaces/default/pods/later") or {})
                      .get("status", {}).get("phase") == "Succeeded", 30)
    again = get(server, path)
    assert again["metadata"]["uid"] == pod["metadata"]["uid"]
    assert container_status(again)["restartCount"] == 0, again
    assert len(pod_dirs(server)) == 2, pod_dirs(server)
    ev = events_of(server, "typo")
    failed = [e for e in ev if e["reason"] == "Failed"]
    assert len(failed) == 1 and failed[0].get("count", 1) == 1, ev
    assert "has no command" in failed[0]["message"], failed


def test_server_job_without_command_fails_once(server, marker):
    job = json.loads(pytorchjob("typojob", marker, master_cmd="true"))
    c = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    c["comand"] = c.pop("command")
    p = server.kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(job),
                       check=False)
    assert p.returncode == 0, (p.stdout, p.stderr)
    path = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/typojob"
    assert wait_until(lambda: (condition(get(server, path), "Failed") or {})
                      .get("status") == "True", 30), get(server, path)
    msg = condition(get(server, path), "Failed")["message"]
    assert "can never start" in msg and "has no command" in msg, msg
    # the pod stays (cleanPodPolicy None), waiting, with its reason
    pod = get(server, "/api/v1/namespaces/default/pods/typojob-master-0")
    assert container_status(pod)["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    created = [e for e in events_of(server, "typojob") if e["reason"] == "SuccessfulCreatePod"]
    assert sum(e.get("count", 1) for e in created) == 1, created
    assert len(pod_dirs(server)) == 1, pod_dirs(server)


def test_server_crash_loop_backs_off_from_10s(server, marker):
    """restartPolicy OnFailure restarts in place: CrashLoopBackOff between runs, the first
    restart 10 s after the crash (the kubelet's default), RESTARTS counted, a BackOff event."""
    post(server, "/api/v1/namespaces/default/pods",
         bare_pod("crashy", marker, "echo crashing; exit 3", restart="OnFailure"))
    path = "/api/v1/namespaces/default/pods/crashy"

    def waiting_reason():
        return container_status(get(server, path)).get("state", {}).get("waiting", {}) \
            .get("reason")
    assert wait_until(lambda: waiting_reason() == "CrashLoopBackOff", 30), get(server, path)
    t_backoff = time.monotonic()
    cs = container_status(get(server, path))
    assert cs["restartCount"] == 0 and cs["lastState"]["terminated"]["exitCode"] == 3, cs
    out = server.kubectl("get", "pod", "crashy").stdout
    assert "CrashLoopBackOff" in out, out
    assert wait_until(lambda: container_status(get(server, path))["restartCount"] >= 1, 30)
    waited = time.monotonic() - t_backoff
    assert waited >= 9.5, f"restarted {waited:.1f} s after the crash"
    # and it crashes again into a longer back-off, counted in RESTARTS
    assert wait_until(lambda: waiting_reason() == "CrashLoopBackOff", 30)
    rows = server.kubectl("get", "pod", "crashy", "--no-headers").stdout.split()
    assert rows[2] == "CrashLoopBackOff" and rows[3].startswith("1"), rows
    ev = [e for e in events_of(server, "crashy") if e["reason"] == "BackOff"]
    assert ev and "Back-off restarting failed container c in pod crashy" in ev[0]["message"], ev
    assert ev[0]["type"] == "Warning"


def test_server_start_error_restarts_in_place_with_events(server, marker):
    """Under OnFailure a start error restarts in place: CrashLoopBackOff, the error as the last
    state, and both the Failed and the BackOff event."""
    pod = bare_pod("badexec", marker, None, restart="OnFailure")
    pod["spec"]["containers"][0]["command"] = [f"/no/such/dir-{marker}/prog"]
    post(server, "/api/v1/namespaces/default/pods", pod)
    path = "/api/v1/namespaces/default/pods/badexec"
    assert wait_until(lambda: container_status(get(server, path)).get("state", {})
                      .get("waiting", {}).get("reason") == "CrashLoopBackOff", 30)
    last = container_status(get(server, path))["lastState"]["terminated"]
    want = f'exec: "/no/such/dir-{marker}/prog": no such file or directory'
    assert last["reason"] == "StartError" and last["exitCode"] == 128, last
    assert want in last["message"], last
    assert get(server, path)["status"]["phase"] == "Running"  # as the kubelet computes it
    assert wait_until(lambda: {"Failed", "BackOff"} <= {e["reason"] for e in
                                                       events_of(server, "badexec")}, 10)
    failed = [e for e in events_of(server, "badexec") if e["reason"] == "Failed"]
    assert want in failed[0]["message"], failed
