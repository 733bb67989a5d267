"""kill -9 of the server while jobs run: objects come back unchanged, running pods are re-adopted
(the same processes), exits that happened while it was down are not lost, nothing runs twice."""
import json
import os
import random
import sqlite3
import time
import uuid

import pytest

from conftest import kill_all, processes_with, wait_until
from jobs import pytorchjob
from server_fixture import Server


def state(server, name):
    job = server.json("get", "pytorchjob", name)
    conds = [c for c in job.get("status", {}).get("conditions", []) if c["status"] == "True"]
    return conds[-1]["type"] if conds else ""


def container_pids(marker):
    return sorted(processes_with(marker))


@pytest.mark.parametrize("round_", range(3))
def test_kill9_and_restart_readopts_running_pods(tmp_path, marker, round_):
    """kill -9 of the server at a seeded random moment while a job runs (each line 0.1 s
    apart, 4 s in all; the kill comes at most 2.5 s in): the processes outlive the server and
    are re-adopted, the job finishes with every line logged and no restart."""
    seed = int(os.environ.get("TY_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (TY_TEST_SEED={seed} reruns it)")
    rng = random.Random(seed)
    s = Server(tmp_path / "data").start()
    try:
        cmd = "i=0; while [ $i -lt 40 ]; do echo line $i; i=$((i+1)); sleep 0.1; done"
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("durable", marker, master_cmd=cmd, worker_cmd=cmd, workers=1))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: state(s, "durable") == "Running", 20)
        before = s.json("get", "pytorchjob", "durable")
        pods_before = {p["metadata"]["name"]: p["metadata"]["uid"]
                       for p in s.json("get", "pods")["items"]}
        time.sleep(rng.uniform(0, 1.5))
        pids = container_pids(marker)
        assert pids, seed
        s.kill9()
        time.sleep(rng.uniform(0, 1.0))
        # The pods did not die with the server: their processes still run (the job is not
        # over yet), so a server that took them down with it fails here.
        assert set(container_pids(marker)) & set(pids), (seed, pids, container_pids(marker))
        s.start()
        after = s.json("get", "pytorchjob", "durable")
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert int(after["metadata"]["resourceVersion"]) >= int(before["metadata"]["resourceVersion"])
        pods_after = {p["metadata"]["name"]: p["metadata"]["uid"]
                      for p in s.json("get", "pods")["items"]}
        assert pods_after == pods_before, (pods_before, pods_after)
        assert wait_until(lambda: state(s, "durable") == "Succeeded", 40), s.kubectl(
            "get", "pytorchjob", "durable", "-o", "yaml").stdout
        log = s.kubectl("logs", "durable-master-0").stdout
        assert "line 0" in log and "line 39" in log, log
        assert s.json("get", "pytorchjob", "durable")["metadata"].get(
            "annotations", {}).get("trainyard.dev/restarts", "0") == "0"
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_exit_while_the_server_is_down_is_not_lost(tmp_path, marker):
    s = Server(tmp_path / "data").start()
    try:
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("quick", marker, master_cmd="sleep 2; exit 0",
                                   restart="Never"))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: state(s, "quick") == "Running", 20)
        s.kill9()
        assert wait_until(lambda: not processes_with(marker), 20)
        s.start()
        assert wait_until(lambda: state(s, "quick") == "Succeeded", 20), s.kubectl(
            "get", "pytorchjob", "quick", "-o", "yaml").stdout
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_sigterm_leaves_pods_for_readoption(tmp_path, marker):
    s = Server(tmp_path / "data").start()
    try:
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("kept", marker, master_cmd="sleep 6"))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: state(s, "kept") == "Running", 20)
        pids = container_pids(marker)
        assert s.stop() == 0
        assert container_pids(marker) == pids
        s.start()
        assert wait_until(lambda: state(s, "kept") == "Succeeded", 30)
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_stop_pods_on_exit_flag_stops_them(tmp_path, marker):
    s = Server(tmp_path / "data", ["--stop-pods-on-exit"]).start()
    try:
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("stopped", marker, master_cmd="sleep 60"))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: state(s, "stopped") == "Running", 20)
        assert s.stop() == 0
        assert not processes_with(marker)
    finally:
        s.reap()
        kill_all(marker)


def pod_dirs(data_dir):
    """The pod directories the server's runtime keeps (<data>/node/pods/<ns>_<name>_<uid>)."""
    d = os.path.join(str(data_dir), "node", "pods")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def restarts(job):
    return int(job["metadata"].get("annotations", {}).get("trainyard.dev/restarts", "0"))


def job_states(s):
    out = {}
    for job in s.json("get", "pytorchjobs")["items"]:
        conds = [c for c in job.get("status", {}).get("conditions", []) if c["status"] == "True"]
        out[job["metadata"]["name"]] = conds[-1]["type"] if conds else ""
    return out


def exit_codes(pod):
    return [cs.get("state", {}).get("terminated", {}).get("exitCode")
            for cs in pod.get("status", {}).get("containerStatuses", [])]


def test_kill9_loop_every_job_finishes(tmp_path, marker):
    """kill -9 of the server at seeded random moments while jobs are created, run, end and are
    deleted: after the last restart every job finishes as if nothing happened (no restart, the
    exit codes its processes returned), no pod stays Pending, Running or Terminating, nothing
    runs twice or is left running, and the directories of deleted pods go."""
    seed = int(os.environ.get("TY_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (TY_TEST_SEED={seed} reruns it)")
    rng = random.Random(seed)
    data = tmp_path / "data"
    s = Server(data).start()
    deleted = set()  # jobs deleted during the loop
    created = []
    try:
        n = 0
        for round_ in range(5):
            for _ in range(2):
                name = f"j{n}"
                n += 1
                # every fourth job fails with a code of its own
                fails = n % 4 == 0
                cmd = f"sleep {rng.uniform(0.1, 1.5):.2f}; exit {7 if fails else 0}"
                path = tmp_path / f"{name}.json"
                path.write_text(pytorchjob(name, marker, master_cmd=cmd, worker_cmd=cmd,
                                           workers=rng.randint(1, 2), restart="Never"))
                s.kubectl("apply", "-f", str(path))
                created.append((name, fails))
            # jobs that finished earlier are deleted, perhaps cut short by the kill
            states = job_states(s)
            for name, _ in created[:-4]:
                if name not in deleted and states.get(name) in ("Succeeded", "Failed") \
                        and rng.random() < 0.5:
                    s.kubectl("delete", "pytorchjob", name, "--wait=false")
                    deleted.add(name)
            # at once (the new jobs not yet reconciled) or while pods start, run and end
            time.sleep(0 if rng.random() < 0.4 else rng.uniform(0.05, 1.2))
            s.kill9()
            time.sleep(rng.uniform(0, 0.5))
            s.start()

        def settled():
            st = job_states(s)
            return all(st.get(name) == ("Failed" if fails else "Succeeded")
                       for name, fails in created if name not in deleted) \
                and not any(name in st for name in deleted)

        assert wait_until(settled, 40), (seed, job_states(s))
        for name, fails in created:
            if name in deleted:
                continue
            job = s.json("get", "pytorchjob", name)
            assert restarts(job) == 0, (seed, name, job["metadata"])
        # No pod waits, runs or terminates forever.
        def pods_settled():
            pods = s.json("get", "pods")["items"]
            return all(p.get("status", {}).get("phase") in ("Succeeded", "Failed")
                       and not p["metadata"].get("deletionTimestamp") for p in pods)

        assert wait_until(pods_settled, 20), (seed, s.kubectl("get", "pods").stdout)
        pods = s.json("get", "pods")["items"]
        fails_of = dict(created)
        for p in pods:
            job = p["metadata"]["labels"]["training.kubeflow.org/job-name"]
            want = 7 if fails_of[job] else 0
            codes = exit_codes(p)
            # A pod that ran with the job's failing master may have been stopped by the job's
            # end (cleanPodPolicy); every other one keeps the code its process returned.
            if fails_of[job] and p["status"]["phase"] == "Failed" and codes != [want]:
                assert p["metadata"]["name"].endswith("-worker-0") or \
                    p["metadata"]["name"].endswith("-worker-1"), (seed, p["status"])
                continue
            assert codes == [want], (seed, p["metadata"]["name"], p["status"])
        # Nothing runs once every pod has ended; no pod ran twice (one dir per pod object).
        assert wait_until(lambda: not processes_with(marker), 10), (seed, processes_with(marker))
        uids = {p["metadata"]["uid"] for p in pods}
        assert wait_until(lambda: {d.rsplit("_", 1)[1] for d in pod_dirs(data)} == uids, 10), \
            (seed, pod_dirs(data), uids)
        # Deleting the rest removes every pod directory.
        s.kubectl("delete", "pytorchjobs", "--all")
        assert wait_until(lambda: not s.json("get", "pods")["items"], 20), seed
        assert wait_until(lambda: not pod_dirs(data), 10), (seed, pod_dirs(data))
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_deleted_pods_lose_their_directories(tmp_path, marker):
    """A pod's directory (its logs and state) goes with the pod object once its processes are
    gone; one whose pod was deleted while the server was down goes at the next start."""
    data = tmp_path / "data"
    s = Server(data).start()
    try:
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("tidy", marker, master_cmd="echo hi; exit 0",
                                   worker_cmd="exit 0", restart="Never"))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: state(s, "tidy") == "Succeeded", 30)
        assert len(pod_dirs(data)) == 2, pod_dirs(data)
        # the finished pod's logs stay while it exists
        assert "hi" in s.kubectl("logs", "tidy-master-0").stdout
        s.kubectl("delete", "pytorchjob", "tidy")
        assert wait_until(lambda: not s.json("get", "pods")["items"], 20)
        assert wait_until(lambda: not pod_dirs(data), 10), pod_dirs(data)

        # A dir left by a pod deleted while the server was down goes at the next start.
        s.stop()
        ghost = os.path.join(str(data), "node", "pods", "default_ghost-0_0f0e0d0c")
        os.makedirs(os.path.join(ghost, "pytorch"))
        open(os.path.join(ghost, "pytorch", "0.log"), "w").write("old\n")
        s.start()
        assert wait_until(lambda: not os.path.exists(ghost), 10), pod_dirs(data)
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_pod_stopping_at_the_kill_is_stopped_and_removed(tmp_path, marker):
    """A job deleted just before a kill -9: after the restart its pods are stopped and removed
    (none stays Terminating), and so are their directories."""
    data = tmp_path / "data"
    s = Server(data).start()
    try:
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("doomed", marker, master_cmd="sleep 60",
                                   worker_cmd="sleep 60", grace=2))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: state(s, "doomed") == "Running", 20)
        assert wait_until(lambda: len(processes_with(marker)) >= 2, 10)
        s.kubectl("delete", "pytorchjob", "doomed", "--wait=false")
        s.kill9()
        s.start()
        assert wait_until(lambda: not s.json("get", "pods")["items"], 20), \
            s.kubectl("get", "pods", "-o", "yaml").stdout
        assert wait_until(lambda: not processes_with(marker), 10)
        assert wait_until(lambda: not pod_dirs(data), 10), pod_dirs(data)
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_resync_of_converged_objects_writes_nothing(tmp_path, marker, monkeypatch):
    """Every controller looks at every object again periodically (as informers resync); once
    everything has converged that writes nothing: the store's revision stays."""
    monkeypatch.setenv("TRAINYARD_RESYNC_MS", "100")
    monkeypatch.setenv("TRAINYARD_LOG", "debug")
    data = tmp_path / "data"
    s = Server(data).start()
    try:
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("calm", marker, master_cmd="exit 0", worker_cmd="exit 0",
                                   restart="Never"))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: state(s, "calm") == "Succeeded", 30)

        def revision():
            raw = s.kubectl("get", "--raw", "/api/v1/namespaces/default/pods").stdout
            return int(json.loads(raw)["metadata"]["resourceVersion"])

        def resyncs():
            return open(s.stderr_path).read().count("node: resync")

        # settled: the revision held across a resync
        def quiet():
            rv, n = revision(), resyncs()
            assert wait_until(lambda: resyncs() >= n + 2, 10)
            return revision() == rv

        assert wait_until(quiet, 20), s.kubectl("get", "pods,pytorchjobs", "-o", "yaml").stdout
        rv, n = revision(), resyncs()
        assert wait_until(lambda: resyncs() >= n + 5, 10)
        assert revision() == rv
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_states_a_crash_leaves_are_finished_at_start(tmp_path, marker):
    """The states a kill -9 can leave between a write and what follows it, made in the database
    while the server is down: a job stored but never reconciled (no status, no pods) runs; a
    bound pod that never started starts; a pod marked for deletion whose processes are gone is
    removed, not left Terminating."""
    data = tmp_path / "data"
    s = Server(data).start()
    try:
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("first", marker, master_cmd="exit 0", worker_cmd="exit 0",
                                   restart="Never"))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: state(s, "first") == "Succeeded", 30)
        assert s.stop() == 0

        db = sqlite3.connect(str(data / "store.db"))
        rv = db.execute("SELECT max(rv) FROM objects").fetchone()[0] + 10

        def row(resource, name):
            return json.loads(db.execute(
                "SELECT json FROM objects WHERE resource = ? AND name = ?",
                (resource, name)).fetchone()[0])

        def put(resource, obj):
            nonlocal rv
            rv += 1
            obj["metadata"]["resourceVersion"] = str(rv)
            db.execute("INSERT OR REPLACE INTO objects (resource, namespace, name, rv, json) "
                       "VALUES (?, 'default', ?, ?, ?)",
                       (resource, obj["metadata"]["name"], rv, json.dumps(obj)))

        job = row("pytorchjobs", "first")
        job["metadata"].update(name="second", uid=str(uuid.uuid4()))
        job.pop("status", None)
        put("pytorchjobs", job)
        lone = row("pods", "first-worker-0")
        lone["metadata"] = {"name": "lone-0", "namespace": "default", "uid": str(uuid.uuid4()),
                            "creationTimestamp": lone["metadata"]["creationTimestamp"]}
        lone.pop("status", None)
        assert lone["spec"]["nodeName"]
        put("pods", lone)
        doomed = row("pods", "first-master-0")
        doomed["metadata"]["deletionTimestamp"] = doomed["metadata"]["creationTimestamp"]
        doomed["metadata"]["deletionGracePeriodSeconds"] = 0
        put("pods", doomed)
        db.commit()
        db.close()

        s.start()
        assert wait_until(lambda: state(s, "second") == "Succeeded", 30), \
            s.kubectl("get", "pytorchjob", "second", "-o", "yaml").stdout
        assert wait_until(lambda: s.json("get", "pod", "lone-0")["status"].get("phase")
                          == "Succeeded", 30), s.kubectl("get", "pod", "lone-0", "-o", "yaml").stdout
        assert wait_until(lambda: s.kubectl("get", "pod", "first-master-0", check=False)
                          .returncode != 0, 20), s.kubectl("get", "pods", "-o", "yaml").stdout
    finally:
        s.stop()
        s.reap()
        kill_all(marker)
