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

from conftest import REPO, assert_no_sanitizer_report, kill_all, trainyard_bin, wait_until
from jobs import pytorchjob
from server_fixture import Server


def start_second(data_dir, listen="127.0.0.1:0", *args):
    """Runs a server that is expected to refuse to start."""
    r = subprocess.run([trainyard_bin(), "server", "--data-dir", str(data_dir), "--listen",
                        listen, *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert_no_sanitizer_report(r.stderr)
    return r


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
                if stat.S_ISSOCK(st.st_mode) or f == "server.stderr" or kubelet_file(p):
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


# ---------- hostile HTTP clients ----------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("hostile") / "data").start()
    s.port = int(s.url.rsplit(":", 1)[1])
    yield s
    s.stop()
    s.reap()


def request(srv, method, path, body=None, headers=None, host=None):
    """(status, decoded body) over http.client, which sends exactly the headers given."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        c.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None and host != "":
            c.putheader("Host", host)
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if data is not None:
            c.putheader("Content-Length", str(len(data)))
        c.endheaders(data)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw.decode()
    finally:
        c.close()


JOBS = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs"


def small_job(name):
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name},
            "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "restartPolicy": "Never",
                     "template": {"spec": {"containers": [
                         {"name": "pytorch", "image": "busybox", "command": ["true"]}]}}}}}}


@pytest.mark.parametrize("ctype", [
    "text/plain; charset=json", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=json", "application/jsonx", "text/yaml", "application/json, x/y",
    "json", "application/ json", None])
def test_post_with_a_body_type_not_read_is_415_and_creates_nothing(srv, ctype):
    name = "ct-" + str(abs(hash(str(ctype))) % 100000)
    st, body = request(srv, "POST", JOBS, small_job(name),
                       {"Content-Type": ctype} if ctype else {})
    assert st == 415, (st, body)
    assert body["kind"] == "Status" and body["reason"] == "UnsupportedMediaType", body
    assert request(srv, "GET", f"{JOBS}/{name}")[0] == 404


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON;charset=UTF-8", "application/yaml"])
def test_exact_media_types_with_parameters_are_read(srv, ctype):
    name = "ok-" + str(abs(hash(ctype)) % 100000)
    body = json.dumps(small_job(name)).encode()  # JSON is YAML too
    st, got = request(srv, "POST", JOBS + "?dryRun=All", body, {"Content-Type": ctype})
    assert st == 201, (st, got)


def test_patch_and_delete_bodies_are_typed_exactly(srv):
    st, _ = request(srv, "POST", JOBS, small_job("typed"), {"Content-Type": "application/json"})
    assert st == 201
    patch = {"metadata": {"labels": {"a": "b"}}}
    for ctype in ("text/plain; charset=merge-patch+json", "application/json", None,
                  "application/merge-patch+jsonx"):
        st, body = request(srv, "PATCH", JOBS + "/typed", patch,
                           {"Content-Type": ctype} if ctype else {})
        assert st == 415, (ctype, st, body)
    st, body = request(srv, "PATCH", JOBS + "/typed", patch,
                       {"Content-Type": "application/merge-patch+json; charset=utf-8"})
    assert st == 200 and body["metadata"]["labels"] == {"a": "b"}, body
    st, body = request(srv, "DELETE", JOBS + "/typed", {"kind": "DeleteOptions"},
                       {"Content-Type": "text/plain"})
    assert st == 415, body
    assert request(srv, "GET", JOBS + "/typed")[0] == 200
    st, body = request(srv, "DELETE", JOBS + "/typed", {"kind": "DeleteOptions"},
                       {"Content-Type": "application/json"})
    assert st == 200, body


@pytest.mark.parametrize("host", ["evil.example", "evil.example:6443", "127.0.0.1.nip.io",
                                  "10.0.0.1", "[::2]:80", "localhost.evil", "127.0.0.1:x"])
def test_a_foreign_host_is_refused(srv, host):
    st, body = request(srv, "POST", JOBS, small_job("rebound"),
                       {"Content-Type": "application/json"}, host=host)
    assert st == 403, (host, st, body)
    assert body["reason"] == "Forbidden" and "loopback" in body["message"], body
    assert request(srv, "GET", "/version", host=host)[0] == 403
    assert request(srv, "GET", f"{JOBS}/rebound")[0] == 404


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:1", "127.0.0.1", "127.1.2.3:99",
                                  "[::1]", "[::1]:6443", ""])
def test_loopback_hosts_are_served(srv, host):
    st, body = request(srv, "GET", "/version", host=host)
    assert st == 200, (host, st, body)


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "https://evil.example:443",
                                    "file://"])
def test_a_web_page_origin_is_refused(srv, origin):
    st, body = request(srv, "POST", JOBS, small_job("csrf"),
                       {"Content-Type": "application/json", "Origin": origin})
    assert st == 403, (origin, st, body)
    assert request(srv, "GET", f"{JOBS}/csrf")[0] == 404
    assert request(srv, "GET", "/version", headers={"Origin": "http://localhost:8080"})[0] == 200


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "10.1.2.3:0", ":x", "evil:0"])
def test_a_listen_address_off_loopback_is_refused(tmp_path, listen):
    # Off loopback the server speaks TLS with authentication (test_security.py); plain HTTP
    # there is refused.
    r = start_second(tmp_path / "data", listen, "--no-tls")
    assert r.returncode == 2, r
    assert "listen address" in r.stderr, r.stderr
    if listen.startswith(("0.", "10.")):
        assert "not a loopback address and TLS is off" in r.stderr and "--no-tls" in r.stderr
    assert not (tmp_path / "data").exists()


def test_a_loopback_listen_address_is_the_one_printed(tmp_path):
    s = Server(tmp_path / "data").start(listen="127.0.0.7:0")
    try:
        assert s.url.startswith("http://127.0.0.7:"), s.url
        assert "serving on 127.0.0.7:" in open(s.stderr_path).read()
    finally:
        s.stop()


# ---------- slow, many and abandoned connections ----------

def limited_nofile():
    """A server whose descriptor limit is 1024, soft and hard, as on many machines: it takes
    512 connections, fewer than the attacks below open."""
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def start_server(tmp_path, limited):
    s = Server(tmp_path / "data")
    if limited:
        real = subprocess.Popen

        def popen(*a, **kw):
            return real(*a, preexec_fn=limited_nofile, **kw)
        subprocess.Popen = popen
        try:
            s.start()
        finally:
            subprocess.Popen = real
    else:
        s.start()
    s.port = int(s.url.rsplit(":", 1)[1])
    return s


def timed_version(s):
    t = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5)
    try:
        c.request("GET", "/version")
        r = c.getresponse()
        assert r.status == 200 and b"gitVersion" in r.read()
    finally:
        c.close()
    return time.monotonic() - t


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


HALF_SENT = {
    "headers": b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
    "body": b"POST /api/v1/namespaces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"kind\": ",
}


@pytest.mark.parametrize("half", ["headers", "body"])
@pytest.mark.parametrize("limited", [False, True], ids=["default", "nofile-1024"])
def test_half_sent_requests_do_not_lock_others_out(tmp_path, limited, half):
    s = start_server(tmp_path, limited)
    socks = []
    try:
        for _ in range(1100):
            k = socket.create_connection(("127.0.0.1", s.port))
            k.sendall(HALF_SENT[half])
            socks.append(k)
        for _ in range(3):
            assert timed_version(s) < 1.0
        if limited:
            # room was made by shutting the oldest waiting connections
            socks[0].settimeout(5)
            assert socks[0].recv(100) == b""
        # a client that sends its request after all is still served when there is room
        if half == "headers":
            socks[-1].sendall(b"1\r\n\r\n")
            socks[-1].settimeout(5)
            assert socks[-1].recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for k in socks:
            k.close()
        s.stop()


def open_watch(port):
    k = socket.create_connection(("127.0.0.1", port))
    k.sendall(b"GET /api/v1/namespaces?watch=1 HTTP/1.1\r\n"
              b"Host: 127.0.0.1\r\n\r\n")
    k.settimeout(10)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = k.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return k


def test_closed_watches_are_released_at_once(tmp_path):
    s = start_server(tmp_path, limited=True)
    try:
        base = open_fds(s.proc.pid)
        # 1,250 watches in all, more than the 512 connections (and 256 watches) this server
        # takes: each batch must be gone before the next one fits
        for _ in range(5):
            batch = [open_watch(s.port) for _ in range(250)]
            assert open_fds(s.proc.pid) >= base + 240
            for k in batch:
                k.close()
            assert wait_until(lambda: open_fds(s.proc.pid) < base + 20, 5), \
                (base, open_fds(s.proc.pid))
        assert timed_version(s) < 1.0
        # and a new watch still works: it sees a namespace created now
        k = open_watch(s.port)
        try:
            st, body = request(s, "POST", "/api/v1/namespaces",
                               {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": "seen"}},
                               {"Content-Type": "application/json"})
            assert st == 201, body
            got = b""
            deadline = time.monotonic() + 10
            while b'"seen"' not in got and time.monotonic() < deadline:
                got += k.recv(65536)
            assert b'"seen"' in got
        finally:
            k.close()
    finally:
        s.stop()
        s.reap()


# ---------- what a pod may ask for ----------

def job_with(name, marker, cmd, ctr_extra=None, pod_extra=None, mounts=None, kind="PyTorchJob"):
    rtype, key, cname = (("Master", "pytorchReplicaSpecs", "pytorch") if kind == "PyTorchJob"
                         else ("Worker", "tfReplicaSpecs", "tensorflow"))
    ct = {"name": cname, "image": "busybox", "command": ["/bin/sh", "-c", cmd],
          "env": [{"name": "TY_MARKER", "value": marker}]}
    ct.update(ctr_extra or {})
    spec = {"containers": [ct]}
    if mounts:
        ct["volumeMounts"] = mounts
        spec["volumes"] = [{"name": "v", "emptyDir": {}}]
    spec.update(pod_extra or {})
    return {"apiVersion": "kubeflow.org/v1", "kind": kind, "metadata": {"name": name},
            "spec": {key: {rtype: {"replicas": 1, "restartPolicy": "Never",
                                   "template": {"spec": spec}}}}}


@pytest.mark.parametrize("sub,why", [("../etc", "must not contain '..'"),
                                     ("a/../../b", "must not contain '..'"),
                                     ("..", "must not contain '..'"),
                                     ("/etc", "must be a relative path")])
@pytest.mark.parametrize("kind", ["PyTorchJob", "TFJob"])
def test_a_subpath_out_of_its_volume_is_422(srv, sub, why, kind):
    plural = kind.lower() + "s"
    for key in ("subPath", "subPathExpr"):
        job = job_with("climb", "m", "true", mounts=[{"name": "v", "mountPath": "/data", key: sub}],
                       kind=kind)
        st, body = request(srv, "POST", f"/apis/kubeflow.org/v1/namespaces/default/{plural}",
                           job, {"Content-Type": "application/json"})
        assert st == 422, (st, body)
        assert why in body["message"] and f"volumeMounts[0].{key}" in body["message"], body
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "climb"},
           "spec": {"volumes": [{"name": "v", "emptyDir": {}}],
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"],
                                    "volumeMounts": [{"name": "v", "mountPath": "/d",
                                                      "subPath": sub}]}]}}
    st, body = request(srv, "POST", "/api/v1/namespaces/default/pods", pod,
                       {"Content-Type": "application/json"})
    assert st == 422, (st, body)
    assert why in body["message"] and "spec.containers[0].volumeMounts[0].subPath" in \
        body["message"], body
    assert request(srv, "GET", "/api/v1/namespaces/default/pods/climb")[0] == 404


def test_a_subpath_inside_its_volume_is_fine(srv):
    job = job_with("inside", "m", "true",
                   mounts=[{"name": "v", "mountPath": "/data", "subPath": "a/b..c/.d"}])
    st, body = request(srv, "POST", JOBS + "?dryRun=All", job,
                       {"Content-Type": "application/json"})
    assert st == 201, body


def test_run_as_user_and_groups_are_honoured(tmp_path, marker):
    if os.geteuid() != 0:
        pytest.skip("changing the user of a pod needs trainyard to run as root")
    s = Server(tmp_path / "data").start()
    try:
        job = job_with("who", marker, 'echo "ids $(id -u) $(id -g) $(id -G)"',
                       ctr_extra={"securityContext": {"runAsUser": 1234, "runAsGroup": 2345}},
                       pod_extra={"securityContext": {"runAsUser": 1, "fsGroup": 3456,
                                                      "supplementalGroups": [4567]}})
        path = tmp_path / "who.json"
        path.write_text(json.dumps(job))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: "ids " in s.kubectl("logs", "who-master-0",
                                                      check=False).stdout, 30)
        line = s.kubectl("logs", "who-master-0").stdout.strip()
        uid, gid, *groups = line.split()[1:]
        assert (uid, gid) == ("1234", "2345"), line
        assert sorted(groups) == ["2345", "3456", "4567"], line
        # the pod's own runAsUser applies when the container sets none; runAsNonRoot with
        # root is refused
        job = job_with("rootless", marker, 'echo "ids $(id -u)"',
                       pod_extra={"securityContext": {"runAsNonRoot": True}})
        path.write_text(json.dumps(job))
        s.kubectl("apply", "-f", str(path))
        assert wait_until(lambda: "runAsNonRoot" in s.kubectl(
            "get", "pod", "rootless-master-0", "-o", "json", check=False).stdout, 30)
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def kubelet_file(path):
    """A pod's /etc/hosts, resolv.conf or hostname (with a pod network): 0644 by design, read by
    every container of the pod whoever it runs as, behind the pod directory's 0700."""
    return os.path.basename(os.path.dirname(path)) == "etc" and \
        os.path.basename(path) in ("hosts", "resolv.conf", "hostname")


def test_run_keeps_its_pod_files_private(run_trainyard, manifest, tmp_path, marker):
    r = run_trainyard(manifest(pytorchjob("priv", marker, master_cmd="echo hi",
                                          restart="Never")))
    assert r.rc == 0, r
    pods = tmp_path / "state" / "pods"
    assert os.stat(pods).st_mode & 0o777 == 0o700
    seen = 0
    for root, dirs, fs in os.walk(pods):
        for name in dirs + fs:
            st = os.lstat(os.path.join(root, name))
            if not stat.S_ISSOCK(st.st_mode) and not kubelet_file(os.path.join(root, name)):
                seen += 1
                assert st.st_mode & 0o077 == 0, (os.path.join(root, name), oct(st.st_mode))
    assert seen >= 4


def test_open_watches_leave_room_for_requests(tmp_path):
    """Watches hold their connections for good: they get at most half of them (256 of this
    server's 512), later ones are 429, and plain requests are still served."""
    s = start_server(tmp_path, limited=True)
    watches = []
    try:
        for _ in range(256):
            watches.append(open_watch(s.port))
        k = socket.create_connection(("127.0.0.1", s.port))
        k.sendall(b"GET /api/v1/namespaces?watch=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        k.settimeout(10)
        assert k.recv(100).startswith(b"HTTP/1.1 429"), "the 257th watch was not refused"
        k.close()
        assert timed_version(s) < 1.0
        watches.pop().close()
        # the slot is free again at once
        assert wait_until(lambda: request(s, "GET", "/api/v1/namespaces?watch=1&timeoutSeconds=1")
                          [0] == 200, 5)
    finally:
        for w in watches:
            w.close()
        s.stop()


def test_files_an_earlier_version_left_open_are_made_private(tmp_path, marker):
    s = Server(tmp_path / "data").start()
    job = job_with("old", marker, "echo old-log; exit 0",
                   mounts=[{"name": "v", "mountPath": "/scratch-" + marker}])
    path = tmp_path / "old.json"
    path.write_text(json.dumps(job))
    s.kubectl("apply", "-f", str(path))
    assert wait_until(lambda: "old-log" in s.kubectl("logs", "old-master-0",
                                                     check=False).stdout, 30)
    s.stop()
    data = tmp_path / "data"
    volumes = []
    for root, dirs, fs in os.walk(data):
        for name in dirs + fs:
            p = os.path.join(root, name)
            if "/volumes" in p:
                volumes.append(p)
            elif not os.path.islink(p) and not stat.S_ISSOCK(os.lstat(p).st_mode):
                os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)  # as an earlier version did
    os.chmod(data, 0o755)
    assert volumes, "the emptyDir is in the pod dir"
    vmodes = {p: os.stat(p).st_mode for p in volumes}
    s.start()
    try:
        for root, dirs, fs in os.walk(data):
            for name in dirs + fs:
                p = os.path.join(root, name)
                st = os.lstat(p)
                if ("/volumes" in p or stat.S_ISSOCK(st.st_mode) or name == "server.stderr"
                        or kubelet_file(p)):
                    continue
                assert st.st_mode & 0o077 == 0, (p, oct(st.st_mode))
        # a volume is the pod's: its modes stay
        assert {p: os.stat(p).st_mode for p in volumes} == vmodes
    finally:
        s.stop()
        s.reap()
        kill_all(marker)
        if os.path.isdir("/scratch-" + marker):
            os.rmdir("/scratch-" + marker)
