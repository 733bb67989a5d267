"""The Kubernetes client (src/kube) against a real `trainyard server`, through
build/tests/kube_driver: CRUD, conflicts, the status subresource, retries, the client-side rate
limit, and list+watch with resumption.

The fault-injection tests put tests/e2e/faulty_proxy.py between the client and the server: it
stands in for a faulty Kubernetes API server (429 with Retry-After, 5xx, 410 Gone, an ERROR event
with code 410, bookmarks, dropped watches), and the tests check that the client recovers with no
event lost or delivered twice.
"""
import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import REPO, wait_until
from faulty_proxy import FaultyProxy
from server_fixture import Server


def driver_bin():
    asan = "asan" in os.environ.get("TRAINYARD_BIN", "")
    return os.path.join(REPO, "build", "asan" if asan else "", "tests", "kube_driver")


def kubeconfig_for(path, url):
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: t
clusters:
- name: t
  cluster: {{server: "{url}"}}
contexts:
- name: t
  context: {{cluster: t, namespace: default}}
""")
    return path


def run_driver(kubeconfig, *args, timeout=60):
    p = subprocess.run([driver_bin(), "--kubeconfig", kubeconfig, *args], cwd=REPO,
                       capture_output=True, text=True, timeout=timeout)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


@pytest.fixture(autouse=True)
def driver_built():
    assert os.path.exists(driver_bin()), f"{driver_bin()} is missing: make {os.path.relpath(driver_bin(), REPO)}"


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "srv").start()
    yield s
    s.stop()


@pytest.fixture
def proxy(server):
    p = FaultyProxy(server.url)
    yield p
    p.close()


def create_event(server, ns, name, message):
    server.kubectl("-n", ns, "create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "p"}, "message": message}))


def test_crud_against_the_server(server, tmp_path):
    p = run_driver(server.kubeconfig, "crud", "kd")
    assert p.returncode == 0, p.stdout + p.stderr
    steps = [l.split()[1] for l in p.stdout.splitlines() if l.startswith("ok ")]
    assert steps == ["namespace", "create", "create-again", "get", "list", "update", "conflict",
                     "patch-merge", "patch-strategic", "patch-json", "update-retry-on-conflict",
                     "update-retry-nothing-to-do", "cluster-create", "status-subresource",
                     "strategic-on-custom", "cluster-delete", "delete", "get-deleted"]
    # What the driver left is what the server holds.
    assert server.json("-n", "kd", "get", "events")["items"] == []


def test_retry_after_and_5xx_are_retried(server, proxy, tmp_path):
    server.kubectl("create", "namespace", "kd")
    create_event(server, "kd", "e", "m")
    kc = kubeconfig_for(tmp_path / "kc", proxy.url)
    path = "/api/v1/namespaces/kd/events/e"
    proxy.request_faults += [("GET", path, 429, [("Retry-After", "1")]),
                             ("GET", path, 503, []), ("GET", path, 500, [])]
    p = run_driver(kc, "get", "kd", "e")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == 200 and out["tries"] == 4, out
    assert out["ms"] >= 1000, "Retry-After: 1 was not waited for"
    assert out["stats"]["retry_after"] == 1 and out["stats"]["retried"] == 3

    # Bounded: with 2 retries, three 503s give the caller the third.
    proxy.request_faults += [("GET", path, 503, [])] * 3
    out = json.loads(run_driver(kc, "--retries", "2", "get", "kd", "e").stdout)
    assert out["status"] == 503 and out["tries"] == 3, out
    # 404 is an answer, not a failure to retry.
    out = json.loads(run_driver(kc, "get", "kd", "nope").stdout)
    assert out["status"] == 404 and out["tries"] == 1, out


def test_connection_errors_are_retried_then_reported(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = kubeconfig_for(tmp_path / "kc", f"http://127.0.0.1:{port}")
    out = json.loads(run_driver(kc, "--retries", "2", "get", "kd", "e").stdout)
    assert out["status"] == 0 and out["tries"] == 3, out
    assert str(port) in out["error"], out
    assert out["ms"] >= 200, "no back-off between the tries"


def test_expired_token_is_fetched_again_from_the_exec_plugin(server, proxy, tmp_path):
    """The exec plugin's first token is refused (401, as an expired token is): the client runs
    the plugin again and retries once with the new token; tokens are cached in between."""
    server.kubectl("create", "namespace", "kd")
    create_event(server, "kd", "e", "m")
    counter = tmp_path / "runs"
    plugin = tmp_path / "plugin.sh"
    plugin.write_text("#!/bin/sh\n"
                      f"echo run >> {counter}\n"
                      f"n=$(wc -l < {counter})\n"
                      "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",'\n"
                      "printf '\"kind\":\"ExecCredential\",\"status\":{\"token\":\"tok-%s\"}}' $n\n")
    plugin.chmod(0o755)
    kc = tmp_path / "kc"
    kc.write_text(f"""current-context: t
clusters: [{{name: t, cluster: {{server: "{proxy.url}"}}}}]
users:
- name: u
  user:
    exec: {{apiVersion: client.authentication.k8s.io/v1, command: ./plugin.sh}}
contexts: [{{name: t, context: {{cluster: t, user: u}}}}]
""")
    proxy.require_token = "tok-2"
    out = json.loads(run_driver(str(kc), "burst", "3", "kd", "e").stdout)
    assert out["ok"] == 3, out
    assert counter.read_text().count("run") == 2, "the plugin ran once more after the 401 only"
    assert proxy.auth_seen[0] == "Bearer tok-1" and proxy.auth_seen[-1] == "Bearer tok-2"
    # A token refused even when fresh is the answer: 401, after one refresh.
    proxy.require_token = "never"
    out = json.loads(run_driver(str(kc), "get", "kd", "e").stdout)
    assert out["status"] == 401 and out["tries"] == 2, out


def make_pki(d):
    """A CA, a serving certificate for kube.test (not for 127.0.0.1) and a client certificate,
    with the openssl command line."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca")
    for name, ext in (("server", "subjectAltName=DNS:kube.test\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(ext + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext")


def test_tls_ca_client_certificate_and_server_name(server, tmp_path):
    """HTTPS with a client certificate required, as a cluster's API server asks: the CA and the
    client's certificate and key as -data fields, tls-server-name for a certificate that does
    not name the address; each one missing makes the connection fail."""
    server.kubectl("create", "namespace", "kd")
    create_event(server, "kd", "e", "m")
    make_pki(tmp_path)
    proxy = FaultyProxy(server.url, tls=(str(tmp_path / "server.crt"), str(tmp_path / "server.key"),
                                         str(tmp_path / "ca.crt")))
    b64 = lambda f: base64.b64encode((tmp_path / f).read_bytes()).decode()

    def get(cluster_fields, user_fields):
        kc = tmp_path / "kc"
        kc.write_text(json.dumps({
            "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": proxy.url, **cluster_fields}}],
            "users": [{"name": "u", "user": user_fields}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "u"}}]}))
        p = run_driver(str(kc), "--retries", "-1", "get", "kd", "e")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    try:
        ca = {"certificate-authority-data": b64("ca.crt"), "tls-server-name": "kube.test"}
        user = {"client-certificate-data": b64("client.crt"), "client-key-data": b64("client.key")}
        assert get(ca, user)["status"] == 200
        # Files work as the data does.
        ca_file = {"certificate-authority": str(tmp_path / "ca.crt"), "tls-server-name": "kube.test"}
        user_files = {"client-certificate": str(tmp_path / "client.crt"),
                      "client-key": str(tmp_path / "client.key")}
        assert get(ca_file, user_files)["status"] == 200
        # No tls-server-name: the certificate does not name 127.0.0.1.
        out = get({"certificate-authority-data": b64("ca.crt")}, user)
        assert out["status"] == 0 and out["tries"] == 1, out
        # No CA: the server is not trusted, unless verification is skipped.
        assert get({"tls-server-name": "kube.test"}, user)["status"] == 0
        assert get({"insecure-skip-tls-verify": True}, user)["status"] == 200
        # No client certificate: the server refuses the handshake.
        assert get(ca, {})["status"] == 0
    finally:
        proxy.close()


def test_client_side_rate_limit(server, tmp_path):
    server.kubectl("create", "namespace", "kd")
    create_event(server, "kd", "e", "m")
    # 30 requests at once, 20 QPS with a burst of 5: the last waits (30 - 5) / 20 s.
    out = json.loads(run_driver(server.kubeconfig, "--qps", "20", "--burst", "5",
                                "burst", "30", "kd", "e").stdout)
    # 25 wait (fewer if a loaded machine let a token come in between the 30 calls).
    assert out["ok"] == 30 and 20 <= out["stats"]["throttled"] <= 25, out
    assert 1200 <= out["ms"] < 5000, out
    out = json.loads(run_driver(server.kubeconfig, "--qps", "-1", "burst", "30", "kd", "e").stdout)
    assert out["ok"] == 30 and out["stats"]["throttled"] == 0, out
    assert out["ms"] < 1200, out


class Watcher:
    """The driver's reflector on a namespace's Events, its lines collected as they come."""

    def __init__(self, kubeconfig, ns, *opts):
        self.proc = subprocess.Popen([*os.environ.get("KD_WRAP", "").split(), driver_bin(), "--kubeconfig", kubeconfig, *opts, "watch", ns],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"raw": line})

    def events(self):
        return [l for l in list(self.lines) if "type" in l]

    def notes(self):
        return [l["note"] for l in list(self.lines) if "note" in l]

    def saw(self, typ, name, message=None):
        return any(e["type"] == typ and e["name"] == name and
                   (message is None or e["message"] == message) for e in self.events())

    def wait(self, typ, name, message=None, timeout=20):
        if not wait_until(lambda: self.saw(typ, name, message), timeout):
            print("\n".join(map(json.dumps, self.lines)), self.proc.poll())
            pytest.fail(f"the watcher did not see {typ} {name} {message or ''}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        self.t.join(timeout=5)
        err = self.proc.stderr.read()
        assert "Sanitizer" not in err and "runtime error" not in err, err
        assert self.proc.returncode == 0, err
        return self.lines[-1]


def check_no_lost_or_duplicated(events, server_items):
    """Each (name, resourceVersion) once, versions rising per name, and the state the events
    build is the server's."""
    seen = set()
    state = {}
    for e in events:
        key = (e["name"], e["rv"], e["type"] == "DELETED")
        assert key not in seen, f"duplicated event {e}"
        seen.add(key)
        if e["name"] in state and e["type"] != "DELETED":
            assert int(e["rv"]) > int(state[e["name"]]), f"went back in time: {e}"
        if e["type"] == "DELETED":
            assert e["name"] in state, f"deleted before added: {e}"
            del state[e["name"]]
        else:
            state[e["name"]] = e["rv"]
    want = {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in server_items}
    assert state == want


def test_list_watch(server, proxy, tmp_path):
    """A list in pages, then a watch from its resourceVersion; every change seen once. (The
    proxy injects nothing here: it only records the requests.)"""
    server.kubectl("create", "namespace", "kd")
    for i in range(5):
        create_event(server, "kd", f"pre-{i}", "m")
    w = Watcher(kubeconfig_for(tmp_path / "kc", proxy.url), "kd", "--page-size", "2")
    for i in range(5):
        w.wait("ADDED", f"pre-{i}")
    create_event(server, "kd", "live", "m")
    server.kubectl("-n", "kd", "patch", "event", "pre-0", "--type=merge", "-p", '{"message":"x"}')
    server.kubectl("-n", "kd", "delete", "event", "pre-1")
    w.wait("ADDED", "live")
    w.wait("MODIFIED", "pre-0", "x")
    w.wait("DELETED", "pre-1")
    final = w.stop()
    check_no_lost_or_duplicated(w.events(), server.json("-n", "kd", "get", "events")["items"])
    assert final["count"] == 5 and final["stats"]["lists"] == 1 and final["stats"]["reconnects"] == 0
    # Paged: 5 objects, 2 a page: three LISTs, the last two with a continue token; then one
    # watch from the list's resourceVersion with bookmarks.
    lists = [p for m, p in proxy.log if "watch=" not in p]
    assert len(lists) == 3 and all("limit=2" in p for p in lists), lists
    assert "continue=" in lists[1] and "continue=" in lists[2], lists
    synced = next(l["synced"] for l in w.lines if "synced" in l)
    assert proxy.watch_requests() == [
        f"/api/v1/namespaces/kd/events?watch=1&resourceVersion={synced}&allowWatchBookmarks=true"
        f"&timeoutSeconds={proxy.watch_requests()[0].rsplit('=', 1)[1]}"]


def test_watch_ended_by_the_server_is_reopened_at_once(server, tmp_path):
    """A watch the server ends (its timeoutSeconds, here 1 s) is opened again from the last
    resourceVersion, without back-off, and changes made around the reopening arrive once."""
    server.kubectl("create", "namespace", "kd")
    w = Watcher(server.kubeconfig, "kd", "--watch-timeout", "1")
    assert wait_until(lambda: any("synced" in l for l in w.lines), 20), w.lines
    for i in range(6):
        create_event(server, "kd", f"t-{i}", "m")
        time.sleep(0.4)
    for i in range(6):
        w.wait("ADDED", f"t-{i}")
    final = w.stop()
    check_no_lost_or_duplicated(w.events(), server.json("-n", "kd", "get", "events")["items"])
    st = final["stats"]
    assert st["watches"] >= 3 and st["reconnects"] == 0 and st["lists"] == 1, final


def test_watch_faults_recover(server, proxy, tmp_path):
    """Through the faulty proxy: a dropped watch, a 5xx on a watch, a bookmark, 410 Gone (HTTP
    and as an ERROR event) and a 503 on the relist; no event lost or duplicated."""
    server.kubectl("create", "namespace", "kd")
    server.kubectl("create", "namespace", "other")
    kc = kubeconfig_for(tmp_path / "kc", proxy.url)
    w3, w5 = threading.Event(), threading.Event()
    proxy.watch_faults += [
        {"drop_after": 2},                              # W1: e1, e2, then cut
        {"status": 500},                                # W2: a 5xx on the watch request
        {"hold": w3, "bookmark_then_drop": True},       # W3: (the test writes elsewhere) bookmark
        {"status": 429, "retry_after": 1},              # W4: throttled
        {"hold": w5, "gone": True},                     # W5: (changes meanwhile) 410 Gone: relist
        {"error_410_after": 1},                         # W6: one event, then ERROR 410: relist
    ]
    w = Watcher(kc, "kd")
    assert wait_until(lambda: any("synced" in l for l in w.lines), 20), w.lines
    create_event(server, "kd", "e1", "m")
    create_event(server, "kd", "e2", "m")
    w.wait("ADDED", "e1")
    w.wait("ADDED", "e2")
    # While W3 is held: a write in another namespace moves the server's resourceVersion on, so
    # the bookmark carries a version newer than any event of this watch.
    create_event(server, "other", "o1", "m")
    w3.set()
    assert wait_until(lambda: proxy.bookmarks, 20), w.lines
    bookmark = proxy.bookmarks[0]
    e2_rv = next(e["rv"] for e in w.events() if e["name"] == "e2")
    assert int(bookmark) > int(e2_rv), (bookmark, e2_rv)
    # The next watch resumes from the bookmark.
    assert wait_until(lambda: any(f"resourceVersion={bookmark}&" in p
                                  for p in proxy.watch_requests()), 20), proxy.watch_requests()
    # W5 is held: changes made now are only seen through the relist after its 410. The relist's
    # first LIST answers 503 once (retried by the client).
    assert wait_until(lambda: len(proxy.watch_requests()) >= 5, 20)
    proxy.request_faults.append(("GET", "/api/v1/namespaces/kd/events?", 503, []))
    server.kubectl("-n", "kd", "delete", "event", "e1")
    server.kubectl("-n", "kd", "patch", "event", "e2", "--type=merge", "-p", '{"message":"x"}')
    create_event(server, "kd", "e3", "m")
    w5.set()
    w.wait("DELETED", "e1")
    w.wait("MODIFIED", "e2", "x")
    w.wait("ADDED", "e3")
    # W6: e4 comes, then the ERROR event; the relist must not deliver e4 again.
    create_event(server, "kd", "e4", "m")
    w.wait("ADDED", "e4")
    assert wait_until(lambda: len(proxy.watch_requests()) >= 7, 20), proxy.watch_requests()
    create_event(server, "kd", "e5", "m")
    w.wait("ADDED", "e5")
    final = w.stop()
    check_no_lost_or_duplicated(w.events(), server.json("-n", "kd", "get", "events")["items"])
    st = final["stats"]
    assert st["lists"] == 3 and st["relists_gone"] == 2, final
    assert st["bookmarks"] == 1 and st["reconnects"] >= 3, final
    assert final["count"] == 4
    notes = "\n".join(w.notes())
    assert "410" in notes and "reconnecting" in notes, notes
