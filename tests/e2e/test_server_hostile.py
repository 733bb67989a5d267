"""`trainyard server` against what it must not let happen: a second server on the same state,
files others can read, hostile HTTP clients (web pages, DNS rebinding, slow or abandoned
connections), pods that ask for another user, volume paths that climb out."""
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import REPO, kill_all, trainyard_bin, wait_until
from jobs import pytorchjob
from server_fixture import Server


def start_second(data_dir, listen="127.0.0.1:0"):
    return subprocess.run([trainyard_bin(), "server", "--data-dir", str(data_dir), "--listen",
                           listen], cwd=REPO, capture_output=True, text=True, timeout=30)


# ---------- one owner per data directory ----------

def test_a_second_server_on_the_same_data_dir_refuses_and_names_the_first(tmp_path):
    s = Server(tmp_path / "data").start()
    try:
        kubeconfig = open(s.kubeconfig).read()
        mtime = os.stat(s.kubeconfig).st_mtime_ns
        r = start_second(s.data_dir)
        assert r.returncode != 0, r
        assert f"in use by another trainyard server (pid {s.proc.pid})" in r.stderr, r.stderr
        # It touched nothing: the kubeconfig still points at the first one, which still serves.
        assert open(s.kubeconfig).read() == kubeconfig
        assert os.stat(s.kubeconfig).st_mtime_ns == mtime
        assert s.kubectl("get", "--raw", "/version").returncode == 0
    finally:
        s.stop()
    # Once the first is gone (a SIGTERM here, a kill -9 below) the lock goes with it.
    s.start()
    s.kill9()
    s.start()
    s.stop()


# ---------- private files ----------

def test_state_files_are_private(tmp_path, marker):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    # what an earlier version left: a world-readable store
    (data / "store.db").touch()
    os.chmod(data / "store.db", 0o644)
    s = Server(data).start()
    try:
        assert "was mode 0755, now 0700" in open(s.stderr_path).read()
        path = tmp_path / "job.json"
        path.write_text(pytorchjob("private", marker, master_cmd="echo secret-ish; exit 0",
                                   restart="Never"))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: "secret-ish" in s.kubectl(
            "logs", "private-master-0", check=False).stdout, 30)
        pod_dirs = [os.path.join(data, "node", "pods", d)
                    for d in os.listdir(data / "node" / "pods")]
        assert pod_dirs
        files = {os.path.relpath(os.path.join(root, f), data)
                 for root, _, fs in os.walk(data) for f in fs}
        for need in ("store.db", "store.db-wal", "store.db-shm", "lock", "kubeconfig"):
            assert need in files, files
        assert any(f.endswith("pod.json") for f in files), files
        assert any(f.endswith("state.json") for f in files), files
        assert any(f.endswith(".log") for f in files), files
        for root, dirs, fs in os.walk(data):
            for d in dirs:
                mode = os.stat(os.path.join(root, d)).st_mode
                assert mode & 0o077 == 0, (os.path.join(root, d), oct(mode))
            for f in fs:
                p = os.path.join(root, f)
                st = os.lstat(p)
                if stat.S_ISSOCK(st.st_mode) or f == "server.stderr":
                    continue  # a socket's mode means nothing here; the test's own file
                assert st.st_mode & 0o077 == 0, (p, oct(st.st_mode))
        assert os.stat(data).st_mode & 0o777 == 0o700
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_a_data_dir_of_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the directory to another user")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chown(data, 65534, 65534)
    r = start_second(data)
    assert r.returncode != 0
    assert "belongs to uid 65534" in r.stderr, r.stderr
    assert not (data / "store.db").exists()
