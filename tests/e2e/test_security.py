"""The API locked (issue 12, docs/security.md): TLS, authentication and RBAC through the real
binary, kubectl and the Python client.

One secure server (--tls on loopback) for the module: the admin (DIR/kubeconfig, a client
certificate in system:masters), alice (a minted token, group team-a, admin in namespace team-a),
bob (a minted token, view in team-b), carol (a --token-auth-file user with no role)."""
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml

from conftest import netns_refused, trainyard_bin, wait_until
from server_fixture import KUBECTL, Server

RBAC = """
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-a-admin, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: team-a}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-view, namespace: team-b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"""


def pod(name, ns):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "busybox",
                 "command": ["/bin/sh", "-c", f"echo hello from {name}; sleep 60"]}]}}


class Secure:
    def __init__(self, tmp):
        self.tmp = tmp
        csv = tmp / "tokens.csv"
        csv.write_text('static-carol-token,carol,uid-carol,"team-c,readers"\n')
        self.server = Server(tmp / "data", ["--tls", "--no-pod-network",
                                            "--token-auth-file", str(csv)]).start()
        self.admin = self.server.kubeconfig
        cfg = yaml.safe_load(open(self.admin))
        self.url = cfg["clusters"][0]["cluster"]["server"]
        self.ca = tmp / "ca.crt"
        self.ca.write_bytes(open(os.path.join(self.server.data_dir, "pki", "ca.crt"), "rb").read())
        self.ctx = ssl.create_default_context(cafile=str(self.ca))
        self.kc = {"alice": self.token_kubeconfig("alice", "--group", "team-a"),
                   "bob": self.token_kubeconfig("bob")}
        self.kubectl("admin", "apply", "-f", "-", input=RBAC)

    def token_kubeconfig(self, user, *args):
        p = subprocess.run([trainyard_bin(), "token", "create", "--data-dir",
                            self.server.data_dir, "--user", user, *args],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        path = self.tmp / f"{user}.kubeconfig"
        path.write_text(p.stdout)
        return str(path)

    def token_of(self, user):
        return yaml.safe_load(open(self.kc[user]))["users"][0]["user"]["token"]

    def kubectl(self, who, *args, check=True, input=None):
        kc = self.admin if who == "admin" else self.kc[who]
        p = subprocess.run([KUBECTL, "--kubeconfig", kc, *args], capture_output=True,
                           text=True, timeout=60, input=input)
        if check:
            assert p.returncode == 0, (who, args, p.stdout, p.stderr)
        return p

    def request(self, method, path, token=None, body=None, ctx=None):
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=ctx or self.ctx, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()


@pytest.fixture(scope="module")
def sec(tmp_path_factory):
    s = Secure(tmp_path_factory.mktemp("security"))
    yield s
    s.server.stop()
    s.server.reap()


def forbidden(p, text):
    assert p.returncode != 0, p.stdout
    assert f"Error from server (Forbidden): {text}" in p.stderr, p.stderr


def test_anonymous_gets_401_but_health_and_version(sec):
    st, body = sec.request("GET", "/api/v1/namespaces/default/pods")
    assert st == 401
    assert json.loads(body) == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": "Unauthorized",
                                "reason": "Unauthorized", "code": 401}
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert sec.request("GET", path)[0] == 200, path
    # discovery and /metrics need a credential
    assert sec.request("GET", "/apis")[0] == 401
    assert sec.request("GET", "/metrics")[0] == 401


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TLS 1.1, asked for on purpose
def test_tls_only_1_2_and_up_and_the_ca_verifies(sec):
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(sec.ca))
    old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        sec.request("GET", "/healthz", ctx=old)
    # a client that trusts only the system's CAs does not accept the server
    with pytest.raises(urllib.error.URLError):
        sec.request("GET", "/healthz", ctx=ssl.create_default_context())


def test_verbs_as_rbac_says(sec):
    a, b = "alice", "bob"
    sec.kubectl("admin", "apply", "-f", "-", input=json.dumps(pod("b-0", "team-b")))
    # alice is admin in team-a: every verb there
    sec.kubectl(a, "apply", "-n", "team-a", "-f", "-", input=json.dumps(pod("a-0", "team-a")))
    assert "a-0" in sec.kubectl(a, "get", "pods", "-n", "team-a").stdout
    sec.kubectl(a, "label", "pod", "a-0", "-n", "team-a", "x=y")
    sec.kubectl(a, "auth", "can-i", "delete", "pods", "-n", "team-a")
    # ... and nothing in team-b, nor across namespaces
    forbidden(sec.kubectl(a, "get", "pods", "-n", "team-b", check=False),
              'pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
              'in the namespace "team-b"')
    forbidden(sec.kubectl(a, "get", "pod", "b-0", "-n", "team-b", check=False),
              'pods "b-0" is forbidden: User "alice" cannot get resource "pods" in API group "" '
              'in the namespace "team-b"')
    forbidden(sec.kubectl(a, "delete", "pod", "b-0", "-n", "team-b", check=False),
              'pods "b-0" is forbidden: User "alice" cannot delete resource "pods"')
    # (kubectl logs gets the pod first; the log itself is refused too)
    forbidden(sec.kubectl(a, "get", "--raw", "/api/v1/namespaces/team-b/pods/b-0/log",
                          check=False),
              'pods "b-0" is forbidden: User "alice" cannot get resource "pods/log" in API '
              'group "" in the namespace "team-b"')
    forbidden(sec.kubectl(a, "get", "pods", "-A", check=False),
              'pods is forbidden: User "alice" cannot list resource "pods" in API group "" at '
              'the cluster scope')
    forbidden(sec.kubectl(a, "get", "nodes", check=False),
              'nodes is forbidden: User "alice" cannot list resource "nodes"')
    # bob views team-b: read, logs and watch, no write
    assert "b-0" in sec.kubectl(b, "get", "pods", "-n", "team-b").stdout
    assert wait_until(lambda: "hello from b-0" in sec.kubectl(
        b, "logs", "b-0", "-n", "team-b", check=False).stdout, 20)
    forbidden(sec.kubectl(b, "delete", "pod", "b-0", "-n", "team-b", check=False),
              'pods "b-0" is forbidden: User "bob" cannot delete resource "pods" in API group '
              '"" in the namespace "team-b"')
    forbidden(sec.kubectl(b, "apply", "-n", "team-b", "-f", "-", check=False,
                          input=json.dumps(pod("b-1", "team-b"))),
              'error when creating "STDIN": pods is forbidden: User "bob" cannot create resource '
              '"pods" in API group "" in the namespace "team-b"')
    forbidden(sec.kubectl(b, "get", "pytorchjobs", "-n", "team-a", check=False),
              'pytorchjobs.kubeflow.org is forbidden: User "bob" cannot list resource '
              '"pytorchjobs" in API group "kubeflow.org" in the namespace "team-a"')
    assert "No resources found" in sec.kubectl(b, "get", "pytorchjobs", "-n", "team-b").stderr
    # watch: allowed where list is, refused elsewhere
    w = sec.kubectl(b, "get", "--raw",
                    "/api/v1/namespaces/team-b/pods?watch=1&timeoutSeconds=1")
    assert '"type":"ADDED"' in w.stdout.replace(" ", "") and "b-0" in w.stdout
    w = sec.kubectl(b, "get", "--raw", "/api/v1/namespaces/team-a/pods?watch=1&timeoutSeconds=1",
                    check=False)
    forbidden(w, 'pods is forbidden: User "bob" cannot watch resource "pods" in API group "" '
                 'in the namespace "team-a"')
    sec.kubectl(a, "delete", "pod", "a-0", "-n", "team-a", "--wait=false")


def test_kubectl_auth_can_i(sec):
    assert sec.kubectl("alice", "auth", "can-i", "create", "pytorchjobs", "-n", "team-a") \
        .stdout.strip() == "yes"
    p = sec.kubectl("alice", "auth", "can-i", "create", "pytorchjobs", "-n", "team-b",
                    check=False)
    assert p.returncode == 1 and p.stdout.strip() == "no"
    assert sec.kubectl("bob", "auth", "can-i", "get", "pods", "--subresource=log", "-n",
                       "team-b").stdout.strip() == "yes"
    listed = sec.kubectl("alice", "auth", "can-i", "--list", "-n", "team-a").stdout
    assert any(l.startswith("pytorchjobs.kubeflow.org ") and "create" in l
               for l in listed.splitlines()), listed
    listed = sec.kubectl("bob", "auth", "can-i", "--list", "-n", "team-a").stdout
    assert "pytorchjobs" not in listed and "selfsubjectaccessreviews" in listed
    # a SubjectAccessReview (about someone else) is for those who may create one: the admin
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": "bob", "resourceAttributes": {
               "namespace": "team-b", "verb": "list", "resource": "pods"}}}
    p = sec.kubectl("admin", "create", "-o", "json", "-f", "-", input=json.dumps(sar))
    assert json.loads(p.stdout)["status"]["allowed"] is True
    forbidden(sec.kubectl("bob", "create", "-f", "-", input=json.dumps(sar), check=False),
              'error when creating "STDIN": subjectaccessreviews.authorization.k8s.io is forbidden: User "bob" cannot create')


def test_escalation_and_validation(sec):
    bind = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "grab", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                          "name": "alice"}]}
    p = sec.kubectl("alice", "create", "-f", "-", input=json.dumps(bind), check=False)
    forbidden(p, 'error when creating "STDIN": rolebindings.rbac.authorization.k8s.io "grab" is forbidden: user "alice" '
                 '(groups=["team-a" "system:authenticated"]) is attempting to grant RBAC '
                 'permissions not currently held:\n{APIGroups:["*"], Resources:["*"], '
                 'Verbs:["*"]}\n{NonResourceURLs:["*"], Verbs:["*"]}')
    # what alice holds in team-a she may grant there
    bind["roleRef"]["name"] = "view"
    bind["subjects"][0]["name"] = "bob"
    sec.kubectl("alice", "create", "-f", "-", input=json.dumps(bind))
    assert sec.kubectl("bob", "auth", "can-i", "list", "pods", "-n", "team-a") \
        .stdout.strip() == "yes"
    sec.kubectl("alice", "delete", "rolebinding", "grab", "-n", "team-a")
    assert sec.kubectl("bob", "auth", "can-i", "list", "pods", "-n", "team-a",
                       check=False).stdout.strip() == "no"
    bad = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": "bad", "namespace": "team-a"},
           "rules": [{"apiGroups": [""], "resources": ["pods"]}]}
    p = sec.kubectl("admin", "create", "-f", "-", input=json.dumps(bad), check=False)
    assert p.returncode != 0
    assert ('The Role "bad" is invalid: rules[0].verbs: Required value: verbs must contain at '
            'least one value') in p.stderr, p.stderr
    assert sec.kubectl("admin", "get", "role", "bad", "-n", "team-a", check=False).returncode != 0


def test_bad_credentials_rejected(sec, tmp_path):
    path = "/api/v1/namespaces/team-a/pods"
    assert sec.request("GET", path, token=sec.token_of("alice"))[0] == 200
    for bad in ("ty_unknownunknownunknownunknownunknownunkn", "", "not a token",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "a.b.c",
                sec.token_of("alice")[:-1] + "A"):
        st, body = sec.request("GET", path, token=bad)
        assert st == 401 and json.loads(body)["reason"] == "Unauthorized", bad
    # an expired token
    kc = sec.token_kubeconfig("dave", "--ttl", "1s")
    token = yaml.safe_load(open(kc))["users"][0]["user"]["token"]
    time.sleep(2.1)
    assert sec.request("GET", "/api", token=token)[0] == 401
    # the token file's user authenticates, and has no role: 403, not 401
    st, body = sec.request("GET", path, token="static-carol-token")
    assert st == 403 and 'User "carol" cannot list' in json.loads(body)["message"]
    # a client certificate of another CA
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/O=system:masters/CN=mallory"], check=True,
                   capture_output=True)
    ctx = ssl.create_default_context(cafile=str(sec.ca))
    ctx.load_cert_chain(str(crt), str(key))
    st, _ = sec.request("GET", path, ctx=ctx)
    assert st == 401


def test_python_client_with_a_bearer_token(sec):
    from kubernetes import client
    cfg = client.Configuration()
    cfg.host = sec.url
    cfg.ssl_ca_cert = str(sec.ca)
    cfg.verify_ssl = True
    cfg.api_key = {"authorization": "Bearer " + sec.token_of("bob")}
    with client.ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        names = [p.metadata.name for p in core.list_namespaced_pod("team-b").items]
        assert "b-0" in names
        with pytest.raises(client.ApiException) as e:
            core.list_namespaced_pod("team-a")
        assert e.value.status == 403
        with pytest.raises(client.ApiException) as e:
            core.delete_namespaced_pod("b-0", "team-b")
        assert e.value.status == 403


def test_audit_log(sec):
    sec.kubectl("bob", "delete", "pod", "nothing", "-n", "team-b", check=False)
    sec.kubectl("alice", "apply", "-n", "team-a", "-f", "-", input=json.dumps(pod("a-9", "team-a")))
    sec.kubectl("alice", "delete", "pod", "a-9", "-n", "team-a", "--wait=false")
    lines = [json.loads(l) for l in open(os.path.join(sec.server.data_dir, "audit.log"))]
    assert all(l["method"] not in ("GET",) for l in lines)
    refused = [l for l in lines if l["user"] == "bob" and l["verb"] == "delete"]
    assert refused and refused[0]["code"] == 403 and refused[0]["namespace"] == "team-b"
    assert any(l["user"] == "alice" and l["resource"] == "pods" and l["verb"] in ("create", "patch")
               and l["code"] in (200, 201) for l in lines)


def test_plain_http_refused_off_loopback(tmp_path):
    p = subprocess.run([trainyard_bin(), "server", "--data-dir", str(tmp_path / "d"),
                        "--listen", "0.0.0.0:0", "--no-tls"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2
    assert "not a loopback address and TLS is off" in p.stderr and "--no-tls" in p.stderr
    p = subprocess.run([trainyard_bin(), "token", "create", "--data-dir", str(tmp_path / "none"),
                        "--user", "x"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "not the data directory of a secure server" in p.stderr


POD_CLIENT = r'''
import os, ssl, urllib.error, urllib.request
d = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(d + "/token").read()
ns = open(d + "/namespace").read()
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
base = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"],
                          os.environ["KUBERNETES_SERVICE_PORT"])
def call(method, path):
    req = urllib.request.Request(base + path, method=method,
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
print("ns=%s list-own=%d list-other=%d delete-own=%d" % (
    ns, call("GET", "/api/v1/namespaces/%s/pods" % ns),
    call("GET", "/api/v1/namespaces/team-a/pods"),
    call("DELETE", "/api/v1/namespaces/%s/pods/sa-client" % ns)), flush=True)
'''


SA_ROLE = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-lister, namespace: team-b}
rules: [{apiGroups: [""], resources: [pods], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: default-lists-pods, namespace: team-b}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-lister}
subjects: [{kind: ServiceAccount, name: default}]
"""
SA_POD = {"apiVersion": "v1", "kind": "Pod",
          "metadata": {"name": "sa-client", "namespace": "team-b"},
          "spec": {"restartPolicy": "Never", "automountServiceAccountToken": True,
                   "containers": [{"name": "c", "image": "python",
                                   "command": ["/usr/bin/python3", "-c", POD_CLIENT]}]}}


def run_sa_client(kubectl):
    """Runs the pod that calls the API with its token in team-b; returns its output."""
    kubectl("apply", "-f", "-", input=SA_ROLE)
    kubectl("apply", "-f", "-", input=json.dumps(SA_POD))
    out = lambda: kubectl("logs", "sa-client", "-n", "team-b", check=False).stdout
    assert wait_until(lambda: "list-own" in out(), 30), kubectl(
        "get", "pod", "sa-client", "-n", "team-b", "-o", "yaml").stdout
    return out()


def test_a_pod_uses_its_service_account_token(sec):
    out = run_sa_client(lambda *a, **k: sec.kubectl("admin", *a, **k))
    assert "ns=team-b list-own=200 list-other=403 delete-own=403" in out, out
    uid = sec.kubectl("admin", "get", "pod", "sa-client", "-n", "team-b", "-o",
                      "jsonpath={.metadata.uid}").stdout
    pods = os.path.join(sec.server.data_dir, "node", "pods")
    pod_dir = next(os.path.join(pods, d) for d in os.listdir(pods) if d.endswith("_" + uid))
    token = open(os.path.join(pod_dir, "serviceaccount", "token")).read()
    assert os.stat(os.path.join(pod_dir, "serviceaccount", "token")).st_mode & 0o777 == 0o644
    assert sec.request("GET", "/api/v1/namespaces/team-b/pods", token=token)[0] == 200
    # the token dies with its pod
    sec.kubectl("admin", "delete", "pod", "sa-client", "-n", "team-b", "--wait=true")
    assert sec.request("GET", "/api/v1/namespaces/team-b/pods", token=token)[0] == 401


def test_kubectl_create_rbac_objects_and_whoami(sec):
    # kubectl sends these as protobuf
    sec.kubectl("admin", "create", "rolebinding", "carol-view", "--clusterrole=view",
                "--user=carol", "-n", "team-b")
    sec.kubectl("admin", "create", "role", "log-reader", "--verb=get", "--resource=pods/log",
                "-n", "team-a")
    rb = json.loads(sec.kubectl("admin", "get", "rolebinding", "carol-view", "-n", "team-b",
                                "-o", "json").stdout)
    assert rb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                               "name": "carol"}]
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "view"}
    assert sec.request("GET", "/api/v1/namespaces/team-b/pods", token="static-carol-token")[0] \
        == 200
    who = sec.kubectl("alice", "auth", "whoami", "-o", "json").stdout
    info = json.loads(who)["status"]["userInfo"]
    assert info["username"] == "alice" and info["groups"] == ["team-a", "system:authenticated"]
    who = json.loads(sec.kubectl("admin", "auth", "whoami", "-o", "json").stdout)
    assert "system:masters" in who["status"]["userInfo"]["groups"]
    sec.kubectl("admin", "delete", "rolebinding", "carol-view", "-n", "team-b")


def test_audit_log_rotates_by_size(tmp_path):
    # the trusting loopback mode audits too (as the local admin)
    s = Server(tmp_path / "data", ["--no-pod-network", "--audit-log-max-size", "2Ki"]).start()
    try:
        for i in range(12):
            s.kubectl("create", "namespace", f"audit-{i}")
        log = os.path.join(s.data_dir, "audit.log")
        old = log + ".1"
        assert os.path.exists(old)
        assert os.path.getsize(log) <= 2048 and os.path.getsize(old) <= 2048
        assert os.stat(log).st_mode & 0o777 == 0o600
        lines = [json.loads(l) for f in (old, log) for l in open(f)]
        created = [l["uri"] for l in lines if l["verb"] == "create"]
        assert "/api/v1/namespaces" in created and lines[-1]["user"] == "system:admin"
        assert lines[-1]["code"] == 201 and "system:masters" in lines[-1]["groups"]
    finally:
        s.stop()
    p = subprocess.run([trainyard_bin(), "server", "--data-dir", str(tmp_path / "d2"),
                        "--audit-log-max-size", "10"], capture_output=True, text=True)
    assert p.returncode == 2 and "--audit-log-max-size 10: at least 1Ki" in p.stderr


@pytest.mark.skipif(netns_refused() is not None, reason=str(netns_refused()))
def test_a_pod_in_its_own_network_reaches_the_api(tmp_path):
    # Off loopback (TLS by default), with a pod network: the pod reaches the server at its
    # gateway, which the serving certificate names.
    s = Server(tmp_path / "data").start(listen="0.0.0.0:0")
    try:
        assert s.url.startswith("https://127.0.0.1:"), s.url
        s.kubectl("create", "namespace", "team-a")
        s.kubectl("create", "namespace", "team-b")
        out = run_sa_client(s.kubectl)
        assert "ns=team-b list-own=200 list-other=403 delete-own=403" in out, out
        env = s.kubectl("get", "pod", "sa-client", "-n", "team-b", "-o",
                        "jsonpath={.status.hostIP}").stdout
        assert env and not env.startswith("127."), env
    finally:
        s.stop()
        s.reap()


def test_a_certificate_of_ones_own(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=own", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    s = Server(tmp_path / "data", ["--no-pod-network", "--tls-cert-file", str(crt),
                                   "--tls-private-key-file", str(key)]).start()
    try:
        assert s.url.startswith("https://")
        assert "default" in s.kubectl("get", "ns").stdout  # the kubeconfig trusts that cert
        ctx = ssl.create_default_context(cafile=str(crt))
        with urllib.request.urlopen(s.url + "/healthz", context=ctx, timeout=10) as r:
            assert r.status == 200
    finally:
        s.stop()
    p = subprocess.run([trainyard_bin(), "server", "--data-dir", str(tmp_path / "d2"),
                        "--no-pod-network", "--tls-cert-file", str(tmp_path / "missing.pem"),
                        "--tls-private-key-file", str(key)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 1 and "missing.pem" in p.stderr, p.stderr
    p = subprocess.run([trainyard_bin(), "server", "--data-dir", str(tmp_path / "d3"),
                        "--tls-cert-file", str(crt)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "go together" in p.stderr


def test_a_client_certificate_kubeconfig(sec):
    path = sec.token_kubeconfig("erin", "--group", "team-a", "--client-cert", "--ttl", "1h")
    user = yaml.safe_load(open(path))["users"][0]["user"]
    assert "client-certificate-data" in user and "token" not in user
    p = subprocess.run([KUBECTL, "--kubeconfig", path, "auth", "whoami", "-o", "json"],
                       capture_output=True, text=True, timeout=60)
    info = json.loads(p.stdout)["status"]["userInfo"]
    assert info["username"] == "erin" and "team-a" in info["groups"]
    p = subprocess.run([KUBECTL, "--kubeconfig", path, "auth", "can-i", "create", "pods", "-n",
                        "team-a"], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "yes"
    p = subprocess.run([KUBECTL, "--kubeconfig", path, "get", "pods", "-n", "team-b"],
                       capture_output=True, text=True, timeout=60)
    assert 'User "erin" cannot list resource "pods"' in p.stderr
