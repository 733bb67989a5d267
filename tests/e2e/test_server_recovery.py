"""kill -9 of the server while jobs run: objects come back unchanged, running pods are re-adopted
(the same processes), exits that happened while it was down are not lost, nothing runs twice."""
import random
import time

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
        time.sleep(random.uniform(0, 1.5))
        pids = container_pids(marker)
        assert pids
        s.kill9()
        time.sleep(random.uniform(0, 1.0))
        # The pods did not die with the server.
        assert set(container_pids(marker)) & set(pids) or not container_pids(marker)
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
