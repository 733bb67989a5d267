"""ServiceAccounts (issue 12, docs/security.md): the kind, a `default` one per namespace, `kubectl
create serviceaccount|token`, the admission check of a pod's service account, tokens mounted by
default, readable by the pod's user, refreshed before 80% of their life, and refused once their
service account is deleted and made again.

One secure server (--tls on loopback, no pod network) for the module, with pods' tokens living
TTL seconds (TRAINYARD_SA_TOKEN_TTL_S) so that a refresh happens while a test watches."""
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest
import yaml

from conftest import REPO, netns_refused, trainyard_bin, wait_until
from server_fixture import KUBECTL, Server
from test_security import Secure

TTL = 6
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def sec(tmp_path_factory):
    old = os.environ.get("TRAINYARD_SA_TOKEN_TTL_S")
    os.environ["TRAINYARD_SA_TOKEN_TTL_S"] = str(TTL)
    try:
        s = Secure(tmp_path_factory.mktemp("sa"))
    finally:
        if old is None:
            del os.environ["TRAINYARD_SA_TOKEN_TTL_S"]
        else:
            os.environ["TRAINYARD_SA_TOKEN_TTL_S"] = old
    yield s
    s.server.stop()
    s.server.reap()


def admin(sec, *args, **kw):
    return sec.kubectl("admin", *args, **kw)


def uid_of(sec, kind, name, ns):
    return admin(sec, "get", kind, name, "-n", ns, "-o", "jsonpath={.metadata.uid}").stdout


def test_a_default_service_account_in_every_namespace(sec):
    for ns in ("default", "kube-system", "team-a", "team-b"):
        assert uid_of(sec, "serviceaccount", "default", ns), ns
    admin(sec, "create", "namespace", "sa-new")
    assert wait_until(lambda: admin(sec, "get", "sa", "default", "-n", "sa-new",
                                    check=False).returncode == 0, 10)
    # deleted, it is made again (a new object)
    old = uid_of(sec, "sa", "default", "sa-new")
    admin(sec, "delete", "sa", "default", "-n", "sa-new")
    assert wait_until(lambda: uid_of(sec, "sa", "default", "sa-new") not in ("", old), 10)
    # the kind is served as kubectl knows it
    out = admin(sec, "get", "sa", "-n", "sa-new").stdout
    assert out.split("\n")[0].split() == ["NAME", "SECRETS", "AGE"], out
    assert out.split("\n")[1].split()[:2] == ["default", "0"], out
    v1 = json.loads(admin(sec, "get", "--raw", "/api/v1").stdout)
    token = next(r for r in v1["resources"] if r["name"] == "serviceaccounts/token")
    assert token["kind"] == "TokenRequest" and token["verbs"] == ["create"]


def test_kubectl_create_serviceaccount_and_token(sec):
    # kubectl sends both as protobuf
    admin(sec, "create", "serviceaccount", "bot", "-n", "team-a")
    sa = json.loads(admin(sec, "get", "sa", "bot", "-n", "team-a", "-o", "json").stdout)
    assert sa["kind"] == "ServiceAccount" and "generateName" not in sa["metadata"]
    token = admin(sec, "create", "token", "bot", "-n", "team-a").stdout.strip()
    code, body = sec.request("GET", "/api/v1/namespaces/team-a/pods", token=token)
    assert code == 403 and 'User \\"system:serviceaccount:team-a:bot\\" cannot list' in body, body
    admin(sec, "create", "rolebinding", "bot-view", "--clusterrole=view",
          "--serviceaccount=team-a:bot", "-n", "team-a")
    assert sec.request("GET", "/api/v1/namespaces/team-a/pods", token=token)[0] == 200
    assert sec.request("GET", "/api/v1/namespaces/team-b/pods", token=token)[0] == 403
    # a field of the wrong type changes nothing
    p = admin(sec, "apply", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "bot", "namespace": "team-a"},
        "automountServiceAccountToken": "yes"}))
    assert p.returncode != 0 and "automountServiceAccountToken: Invalid value" in p.stderr, \
        p.stderr
    # what kube-apiserver refuses
    p = admin(sec, "create", "token", "bot", "-n", "team-a", "--duration", "1m", check=False)
    assert p.returncode != 0 and "may not specify a duration less than 10 minutes" in p.stderr
    p = admin(sec, "create", "token", "ghost", "-n", "team-a", check=False)
    assert p.returncode != 0 and 'serviceaccounts "ghost" not found' in p.stderr, p.stderr
    # a token for another audience is not this server's
    other = admin(sec, "create", "token", "bot", "-n", "team-a", "--audience",
                  "https://elsewhere").stdout.strip()
    assert sec.request("GET", "/api/v1/namespaces/team-a/pods", token=other)[0] == 401
    # alice (admin of team-a, which includes serviceaccounts/token) may; bob may not
    assert sec.kubectl("alice", "create", "token", "bot", "-n", "team-a").stdout.count(".") == 2
    p = sec.kubectl("bob", "create", "token", "bot", "-n", "team-a", check=False)
    assert p.returncode != 0 and 'cannot create resource "serviceaccounts/token"' in p.stderr


def test_a_recreated_service_accounts_old_token_is_refused(sec):
    admin(sec, "create", "serviceaccount", "phoenix", "-n", "team-a")
    admin(sec, "create", "rolebinding", "phoenix-view", "--clusterrole=view",
          "--serviceaccount=team-a:phoenix", "-n", "team-a")
    old = admin(sec, "create", "token", "phoenix", "-n", "team-a").stdout.strip()
    assert sec.request("GET", "/api/v1/namespaces/team-a/pods", token=old)[0] == 200
    admin(sec, "delete", "sa", "phoenix", "-n", "team-a")
    assert sec.request("GET", "/api/v1/namespaces/team-a/pods", token=old)[0] == 401
    admin(sec, "create", "serviceaccount", "phoenix", "-n", "team-a")
    assert sec.request("GET", "/api/v1/namespaces/team-a/pods", token=old)[0] == 401
    new = admin(sec, "create", "token", "phoenix", "-n", "team-a").stdout.strip()
    assert sec.request("GET", "/api/v1/namespaces/team-a/pods", token=new)[0] == 200


def pod(name, ns, script, **spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"restartPolicy": "Never", **spec, "containers": [
                {"name": "c", "image": "python",
                 "command": ["/usr/bin/python3", "-c", script]}]}}


def test_a_pod_naming_a_missing_service_account_is_refused(sec):
    p = admin(sec, "apply", "-f", "-", check=False, input=json.dumps(
        pod("lost", "team-a", "print(1)", serviceAccountName="ghost")))
    assert p.returncode != 0
    assert ('pods "lost" is forbidden: error looking up service account team-a/ghost: '
            'serviceaccount "ghost" not found') in p.stderr, p.stderr
    assert admin(sec, "get", "pod", "lost", "-n", "team-a", check=False).returncode != 0
    # server-side apply creates it with a PATCH: checked alike
    p = admin(sec, "apply", "--server-side", "-f", "-", check=False, input=json.dumps(
        pod("lost", "team-a", "print(1)", serviceAccountName="ghost")))
    assert p.returncode != 0 and 'serviceaccount "ghost" not found' in p.stderr, p.stderr
    assert admin(sec, "get", "pod", "lost", "-n", "team-a", check=False).returncode != 0


# Reads its token, lists pods in its namespace and in team-a with it, waits for the kubelet's
# refresh (a new token in the file) and lists again with the new one.
CLIENT = r'''
import os, ssl, stat, time, urllib.error, urllib.request
d = "/var/run/secrets/kubernetes.io/serviceaccount"
ns = open(d + "/namespace").read()
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
base = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"],
                          os.environ["KUBERNETES_SERVICE_PORT"])
def call(token, path):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
first = open(d + "/token").read()
print("uid=%d mode=%o host=%s" % (os.getuid(), stat.S_IMODE(os.stat(d + "/token").st_mode),
                                  base), flush=True)
print("list-own=%d list-other=%d" % (call(first, "/api/v1/namespaces/%s/pods" % ns),
                                      call(first, "/api/v1/namespaces/team-a/pods")), flush=True)
deadline = time.time() + 30
while time.time() < deadline and open(d + "/token").read() == first:
    time.sleep(0.2)
second = open(d + "/token").read()
print("refreshed=%s list-own=%d" % (second != first and second.count(".") == 2,
                                    call(second, "/api/v1/namespaces/%s/pods" % ns)), flush=True)
'''

ROLE = """
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


def logs(kubectl, name, ns):
    return kubectl("logs", name, "-n", ns, check=False).stdout


def run_client(kubectl, name, **spec):
    kubectl("apply", "-f", "-", input=ROLE)
    kubectl("apply", "-f", "-", input=json.dumps(pod(name, "team-b", CLIENT, **spec)))
    assert wait_until(lambda: "refreshed=" in logs(kubectl, name, "team-b"), 45), (
        logs(kubectl, name, "team-b"),
        kubectl("get", "pod", name, "-n", "team-b", "-o", "yaml").stdout)
    return logs(kubectl, name, "team-b")


def test_a_pods_token_by_default_readable_by_its_user_and_refreshed(sec):
    # no automountServiceAccountToken: mounted by default; run as another user (the file is
    # 0644, as the kubelet's projected volume makes it)
    out = run_client(lambda *a, **k: admin(sec, *a, **k), "auto",
                     securityContext={"runAsUser": 65534, "fsGroup": 2345})
    assert "uid=65534 mode=644 host=https://127.0.0.1:" in out, out
    assert "list-own=200 list-other=403" in out, out
    assert "refreshed=True list-own=200" in out, out
    p = json.loads(admin(sec, "get", "pod", "auto", "-n", "team-b", "-o", "json").stdout)
    assert p["spec"]["serviceAccountName"] == "default"
    pods = os.path.join(sec.server.data_dir, "node", "pods")
    d = next(os.path.join(pods, x) for x in os.listdir(pods)
             if x.endswith("_" + p["metadata"]["uid"]))
    assert os.stat(os.path.join(d, "serviceaccount", "token")).st_gid == 2345
    # a token bound to the pod (kubectl create token --bound-object-*) dies with it
    bound = admin(sec, "create", "token", "default", "-n", "team-b", "--bound-object-kind",
                  "Pod", "--bound-object-name", "auto").stdout.strip()
    assert sec.request("GET", "/api/v1/namespaces/team-b/pods", token=bound)[0] == 200
    admin(sec, "create", "serviceaccount", "other", "-n", "team-b")
    p = admin(sec, "create", "token", "other", "-n", "team-b", "--bound-object-kind", "Pod",
              "--bound-object-name", "auto", check=False)
    assert "cannot bind token for serviceaccount \"other\" to pod running with different" \
        in p.stderr, p.stderr
    admin(sec, "delete", "pod", "auto", "-n", "team-b", "--wait=true")
    assert sec.request("GET", "/api/v1/namespaces/team-b/pods", token=bound)[0] == 401


NO_TOKEN = f'import os; print("token" if os.path.exists("{MOUNT}/token") else "none")'


def test_automount_false_on_the_pod_or_its_service_account(sec):
    admin(sec, "apply", "-f", "-", input=json.dumps(
        pod("no-mount", "team-b", NO_TOKEN, automountServiceAccountToken=False)))
    admin(sec, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "quiet", "namespace": "team-b"},
        "automountServiceAccountToken": False}))
    admin(sec, "apply", "-f", "-", input=json.dumps(
        pod("quiet-sa", "team-b", NO_TOKEN, serviceAccountName="quiet")))
    # the pod's own field wins over its service account's
    admin(sec, "apply", "-f", "-", input=json.dumps(
        pod("loud", "team-b", NO_TOKEN, serviceAccountName="quiet",
            automountServiceAccountToken=True)))
    kubectl = lambda *a, **k: admin(sec, *a, **k)
    for name, want in (("no-mount", "none"), ("quiet-sa", "none"), ("loud", "token")):
        assert wait_until(lambda: logs(kubectl, name, "team-b").strip() != "", 30), name
        assert logs(kubectl, name, "team-b").strip() == want, name


def test_token_ttl_env_checked(tmp_path):
    env = dict(os.environ, TRAINYARD_SA_TOKEN_TTL_S="soon")
    p = subprocess.run([trainyard_bin(), "server", "--data-dir", str(tmp_path / "d"), "--tls"],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 2 and "TRAINYARD_SA_TOKEN_TTL_S=soon" in p.stderr, p.stderr


@pytest.mark.skipif(netns_refused() is not None, reason=str(netns_refused()))
def test_a_pod_in_its_own_network_reaches_the_api_through_the_service(tmp_path):
    old = os.environ.get("TRAINYARD_SA_TOKEN_TTL_S")
    os.environ["TRAINYARD_SA_TOKEN_TTL_S"] = str(TTL)
    try:
        s = Server(tmp_path / "data").start(listen="0.0.0.0:0")
    finally:
        if old is None:
            del os.environ["TRAINYARD_SA_TOKEN_TTL_S"]
        else:
            os.environ["TRAINYARD_SA_TOKEN_TTL_S"] = old
    try:
        s.kubectl("create", "namespace", "team-a")
        s.kubectl("create", "namespace", "team-b")
        out = run_client(s.kubectl, "netns")
        assert "list-own=200 list-other=403" in out and "refreshed=True" in out, out
        assert "host=https://10.96.0.1:443" in out, out
        env = json.loads(s.kubectl("get", "endpointslice", "kubernetes", "-o", "json").stdout)
        gateway = env["endpoints"][0]["addresses"][0]
        assert gateway != "0.0.0.0" and not gateway.startswith("127."), env
        # the pod was told the Service's address, and the certificate names it
        crt = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                              os.path.join(s.data_dir, "pki", "apiserver.crt")],
                             capture_output=True, text=True).stdout
        assert "IP Address:10.96.0.1" in crt and "DNS:kubernetes.default.svc" in crt, crt
    finally:
        s.stop()
        s.reap()


def test_without_root_only_pods_that_ask_get_a_token(tmp_path):
    """Not root: no private mount namespace for pods, so no token by default (said at start);
    a pod that asks for one explicitly fails to start, saying why."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to run trainyard as another user")
    home = tempfile.mkdtemp(prefix="ty-sa-nobody-")
    proc = None
    try:
        os.chmod(home, 0o755)
        os.chown(home, 65534, 65534)
        data = os.path.join(home, "data")
        err = open(os.path.join(home, "server.stderr"), "w")
        proc = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                 trainyard_bin(), "server", "--data-dir", data, "--tls",
                                 "--no-pod-network", "--listen", "127.0.0.1:0"],
                                cwd=REPO, stdout=err, stderr=err, start_new_session=True,
                                env={**os.environ, "HOME": home})
        kc = os.path.join(data, "kubeconfig")
        stderr = lambda: open(os.path.join(home, "server.stderr")).read()
        assert wait_until(lambda: os.path.exists(kc) or proc.poll() is not None, 20), stderr()
        assert proc.poll() is None, stderr()

        def kubectl(*args, check=True, input=None):
            p = subprocess.run([KUBECTL, "--kubeconfig", kc, *args], capture_output=True,
                               text=True, timeout=60, input=input)
            assert not check or p.returncode == 0, (args, p.stderr)
            return p
        assert wait_until(lambda: kubectl("get", "--raw", "/version", check=False)
                          .returncode == 0, 20), stderr()
        assert "automountServiceAccountToken: true" in stderr(), stderr()
        kubectl("apply", "-f", "-", input=json.dumps(pod("plain", "default", NO_TOKEN)))
        kubectl("apply", "-f", "-", input=json.dumps(
            pod("asks", "default", NO_TOKEN, automountServiceAccountToken=True)))
        assert wait_until(lambda: logs(kubectl, "plain", "default").strip() == "none", 30), \
            kubectl("get", "pod", "plain", "-o", "yaml").stdout
        assert wait_until(lambda: "needs root" in kubectl("get", "pod", "asks", "-o",
                                                          "json").stdout, 30), \
            kubectl("get", "pod", "asks", "-o", "yaml").stdout
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(home, ignore_errors=True)
