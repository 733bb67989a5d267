"""Cluster mode (issue 13): trainyard's operator, Kueue and gang binder against a Kubernetes
API, end to end.

No Kubernetes cluster can run on these machines, so a second trainyard STANDS IN FOR THE
CLUSTER: `trainyard server --no-controllers --nodes ...` serves pods, nodes, services,
pods/binding, leases and events over HTTPS (TLS, RBAC) and runs the pods bound to its virtual
nodes, as kubelets would, with none of its own job, queue or binding controllers. The trainyard
under test runs `trainyard server --kubeconfig FILE`, authenticated by a bearer token minted
for trainyard's service account and authorized only by the RBAC objects `trainyard install`
prints (so the least privilege it declares is what it actually needs). Everything it does
goes through the stand-in's API (its audit log shows each request), with nothing a real
kube-apiserver does not offer.
"""
import json
import os
import signal
import subprocess
import time

import pytest
import yaml

from conftest import REPO, assert_no_sanitizer_report, kill_all, trainyard_bin, wait_until
from jobs import pytorchjob
from server_fixture import Server

SA_USER = "system:serviceaccount:trainyard-system:trainyard"
NODES = "2x{cpu:8,memory:16Gi}"


class Operator:
    """A cluster-mode trainyard (`server --kubeconfig`)."""

    def __init__(self, tmp_path, kubeconfig, name):
        self.kubeconfig = kubeconfig
        self.stderr_path = str(tmp_path / f"{name}.stderr")
        self.proc = None

    def start(self):
        self.err = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(
            [trainyard_bin(), "server", "--kubeconfig", self.kubeconfig, "--kube-qps", "0", "-v",
             "--listen", "127.0.0.1:0"],
            cwd=REPO, stdout=self.err, stderr=self.err, start_new_session=True)
        return self

    def log(self):
        return open(self.stderr_path).read()

    def probe(self, path):
        """The status of GET path on the probes' port (the Deployment's httpGet probes)."""
        import re
        import urllib.error
        import urllib.request
        m = re.search(r"probes \(/livez, /readyz\) on port (\d+)", self.log())
        assert m, self.log()
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}{path}", timeout=5).status
        except urllib.error.HTTPError as e:
            return e.code

    def identity(self):
        return f"{os.uname().nodename}_{self.proc.pid}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.err.close()
            assert_no_sanitizer_report(self.log())
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.err.close()


def apply(server, tmp_path, *docs):
    path = tmp_path / f"apply-{time.monotonic_ns()}.yaml"
    path.write_text(yaml.safe_dump_all([d if isinstance(d, dict) else yaml.safe_load(d)
                                        for d in docs]))
    return server.kubectl("apply", "-f", str(path))


@pytest.fixture
def standin(tmp_path, marker):
    """The stand-in cluster, with trainyard's RBAC from `trainyard install` applied and a
    kubeconfig for trainyard's service account (a bearer token) in trainyard-system."""
    s = Server(tmp_path / "cluster", ["--tls", "--no-controllers", "--no-pod-network",
                                      "--nodes", NODES]).start()
    manifests = subprocess.run([trainyard_bin(), "install"], capture_output=True, text=True,
                               check=True).stdout
    # The ServiceAccount kind is not served by the stand-in (yet): the token below stands for
    # its credentials. Everything else that grants rights is applied as printed.
    rbac = [d for d in yaml.safe_load_all(manifests) if d and d["kind"] in
            ("Namespace", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]
    assert {d["kind"] for d in rbac} == {"Namespace", "ClusterRole", "ClusterRoleBinding",
                                         "Role", "RoleBinding"}
    apply(s, tmp_path, *rbac)
    kc = subprocess.run([trainyard_bin(), "token", "create", "--data-dir", s.data_dir,
                         "--user", SA_USER, "--group", "system:serviceaccounts"],
                        capture_output=True, text=True, check=True).stdout
    cfg = yaml.safe_load(kc)
    assert cfg["users"][0]["user"].get("token"), "a bearer token"
    assert cfg["clusters"][0]["cluster"]["server"].startswith("https://")
    cfg["contexts"][0]["context"]["namespace"] = "trainyard-system"  # the Lease's namespace
    s.operator_kubeconfig = str(tmp_path / "operator.kubeconfig")
    with open(s.operator_kubeconfig, "w") as f:
        yaml.safe_dump(cfg, f)
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def audit(server):
    out = []
    with open(os.path.join(server.data_dir, "audit.log")) as f:
        for line in f:
            out.append(json.loads(line))
    return out


def job_state(server, name):
    job = server.json("get", "pytorchjob", name)
    conds = [c for c in job.get("status", {}).get("conditions", []) if c["status"] == "True"]
    return conds[-1]["type"] if conds else None


def succeeded(server, name):
    return job_state(server, name) == "Succeeded"


def pods_of(server, job):
    return [p for p in server.json("get", "pods")["items"]
            if p["metadata"].get("labels", {}).get("training.kubeflow.org/job-name") == job]


def env_of(pod):
    return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}


def created_pods(server):
    """How many pods were created (201 answers to POSTs of pods): with no pod restarted,
    one per pod of the jobs, so a pod made twice shows."""
    return sum(1 for e in audit(server) if e.get("resource") == "pods" and
               e.get("verb") == "create" and not e.get("subresource") and e.get("code") == 201)


def test_pytorchjob_runs_through_the_cluster_mode_operator(standin, tmp_path, marker):
    cmd = 'echo "rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT"; sleep 1'
    job = json.loads(pytorchjob("hello", marker, master_cmd=cmd, worker_cmd=cmd, workers=2,
                                resources={"requests": {"cpu": "1", "memory": "64Mi"}}))
    apply(standin, tmp_path, job)
    # The stand-in runs no controller of its own: the job makes no pod until the operator runs.
    time.sleep(1.5)
    assert pods_of(standin, "hello") == []
    op = Operator(tmp_path, standin.operator_kubeconfig, "op").start()
    try:
        assert wait_until(lambda: succeeded(standin, "hello"), 60), op.log()
        uid = standin.json("get", "pytorchjob", "hello")["metadata"]["uid"]
        pods = pods_of(standin, "hello")
        assert sorted(p["metadata"]["name"] for p in pods) == \
            ["hello-master-0", "hello-worker-0", "hello-worker-1"]
        for p in pods:
            meta, spec = p["metadata"], p["spec"]
            assert meta["labels"]["training.kubeflow.org/operator-name"] == "pytorchjob-controller"
            assert meta["labels"]["training.kubeflow.org/job-name"] == "hello"
            assert meta["labels"]["scheduling.x-k8s.io/pod-group"] == "hello"
            owner = meta["ownerReferences"][0]
            assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == \
                ("PyTorchJob", "hello", uid, True)
            assert spec["schedulerName"] == "trainyard"
            assert spec["nodeName"] in ("node-1", "node-2")
            # The operator's Service names, which a cluster's DNS resolves, not pod addresses.
            assert env_of(p)["MASTER_ADDR"] == "hello-master-0"
            sched = [c for c in p["status"]["conditions"] if c["type"] == "PodScheduled"][0]
            assert sched["status"] == "True"
            log = standin.kubectl("logs", meta["name"]).stdout
            assert "master=hello-master-0:23456" in log, log
        svcs = {s["metadata"]["name"]: s for s in standin.json("get", "services")["items"]}
        for name in ("hello-master-0", "hello-worker-0", "hello-worker-1"):
            assert svcs[name]["spec"]["clusterIP"] == "None"  # headless
            assert svcs[name]["metadata"]["ownerReferences"][0]["uid"] == uid
        # Every request came from the service account through the API; every pod was bound
        # through pods/binding (201), none by writing spec.nodeName, and made once.
        entries = audit(standin)
        mine = [e for e in entries if e.get("user") == SA_USER]
        assert mine and not [e for e in mine if e.get("code") == 403], \
            [e for e in mine if e.get("code") == 403][:3]
        binds = [e for e in mine if e.get("subresource") == "binding" and e.get("code") == 201]
        assert sorted(e["name"] for e in binds) == sorted(p["metadata"]["name"] for p in pods)
        assert not [e for e in mine if e.get("resource") == "pods" and e.get("verb") == "update"
                    and not e.get("subresource")]
        assert created_pods(standin) == 3
        lease = standin.json("get", "lease", "trainyard-controller", "-n", "trainyard-system")
        assert lease["spec"]["holderIdentity"] == op.identity()
        assert lease["spec"]["leaseDurationSeconds"] == 15
        assert (op.probe("/livez"), op.probe("/readyz"), op.probe("/nothing")) == (200, 200, 404)
        events = standin.kubectl("get", "events").stdout
        assert "SuccessfulCreatePod" in events and "Scheduled" in events, events
    finally:
        assert op.stop() == 0, op.log()


def test_binding_subresource_as_kube_apiserver(standin, tmp_path):
    """pods/binding on the stand-in: sets spec.nodeName and PodScheduled, 409 once bound."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lone"},
           "spec": {"schedulerName": "elsewhere", "containers": [
               {"name": "c", "image": "busybox", "command": ["sleep", "30"]}]}}
    apply(standin, tmp_path, pod)
    from kubernetes import client, config
    api = client.CoreV1Api(config.new_client_from_config(config_file=standin.kubeconfig))
    body = client.V1Binding(metadata=client.V1ObjectMeta(name="lone"),
                            target=client.V1ObjectReference(api_version="v1", kind="Node",
                                                            name="node-2"))
    # The answer is a Status, which the client's Binding model cannot hold: read it raw.
    r = api.create_namespaced_pod_binding("lone", "default", body, _preload_content=False)
    assert r.status == 201 and json.loads(r.data)["status"] == "Success"
    p = standin.json("get", "pod", "lone")
    assert p["spec"]["nodeName"] == "node-2"
    assert [c for c in p["status"]["conditions"] if c["type"] == "PodScheduled"][0]["status"] \
        == "True"
    with pytest.raises(client.exceptions.ApiException) as again:
        api.create_namespaced_pod_binding("lone", "default", body, _preload_content=False)
    assert again.value.status == 409 and b"already assigned to node" in again.value.body
    with pytest.raises(client.exceptions.ApiException) as other:  # the URL names another pod
        api.create_namespaced_pod_binding("nobody", "default", body, _preload_content=False)
    assert other.value.status == 400
    body.metadata.name = "nobody"
    with pytest.raises(client.exceptions.ApiException) as missing:
        api.create_namespaced_pod_binding("nobody", "default", body, _preload_content=False)
    assert missing.value.status == 404
    standin.kubectl("delete", "pod", "lone", "--grace-period=0", "--force", check=False)


def test_kueue_job_admitted_under_quota(standin, tmp_path, marker):
    flavor = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ResourceFlavor",
              "metadata": {"name": "default-flavor"}}
    cq = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
          "metadata": {"name": "cq"},
          "spec": {"namespaceSelector": {}, "resourceGroups": [{
              "coveredResources": ["cpu", "memory"],
              "flavors": [{"name": "default-flavor", "resources": [
                  {"name": "cpu", "nominalQuota": 2},
                  {"name": "memory", "nominalQuota": "1Gi"}]}]}]}}
    lq = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
          "metadata": {"name": "main", "namespace": "default"}, "spec": {"clusterQueue": "cq"}}
    apply(standin, tmp_path, flavor, cq, lq)
    op = Operator(tmp_path, standin.operator_kubeconfig, "op").start()
    try:
        jobs = []
        for name in ("first", "second"):
            j = json.loads(pytorchjob(name, marker, master_cmd="sleep 2", worker_cmd="sleep 2",
                                      workers=1,
                                      resources={"requests": {"cpu": "1", "memory": "64Mi"}}))
            j["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "main"}
            jobs.append(j)
        apply(standin, tmp_path, *jobs)

        def workloads():
            return {r["name"]: w for w in standin.json("get", "workloads")["items"]
                    for r in w["metadata"].get("ownerReferences", [])}

        def admitted(name):
            w = workloads().get(name)
            return bool(w) and any(c["type"] == "Admitted" and c["status"] == "True"
                                   for c in w.get("status", {}).get("conditions", []))

        # The quota (2 cpu) holds one 2-pod job at a time: one is admitted and runs while the
        # other waits with no pod, then the other runs.
        assert wait_until(lambda: admitted("first") or admitted("second"), 30), op.log()
        one = "first" if admitted("first") else "second"
        other = "second" if one == "first" else "first"
        assert not admitted(other)
        assert pods_of(standin, other) == []
        # No webhook suspended it at creation (a real cluster has none for trainyard): the
        # operator holds its pods back and Kueue's job side suspends it, as on a cluster.
        assert wait_until(lambda: standin.json("get", "pytorchjob", other)["spec"]
                          .get("runPolicy", {}).get("suspend") is True, 20)
        assert wait_until(lambda: succeeded(standin, one), 60), op.log()
        assert wait_until(lambda: succeeded(standin, other), 60), op.log()
        w = workloads()[one]
        assert w["status"]["admission"]["clusterQueue"] == "cq"
        assert created_pods(standin) == 4
    finally:
        assert op.stop() == 0, op.log()


def test_leader_failover(standin, tmp_path, marker):
    a = Operator(tmp_path, standin.operator_kubeconfig, "a").start()
    b = Operator(tmp_path, standin.operator_kubeconfig, "b").start()
    ops = {a.identity(): a, b.identity(): b}
    try:
        def holder():
            r = standin.kubectl("get", "lease", "trainyard-controller", "-n", "trainyard-system",
                                "-o", "json", check=False)
            return json.loads(r.stdout)["spec"].get("holderIdentity") if r.returncode == 0 \
                else None
        assert wait_until(lambda: holder() in ops, 20)
        leader = ops[holder()]
        standby = b if leader is a else a
        job = json.loads(pytorchjob("before", marker, master_cmd="sleep 1", worker_cmd="sleep 1",
                                    workers=1))
        apply(standin, tmp_path, job)
        assert wait_until(lambda: succeeded(standin, "before"), 60), leader.log()
        assert "leading and synced" not in standby.log()  # only the leader reconciles

        # A job the leader starts, then the leader dies: the standby takes the lease within
        # the lease's 15 s (and a retry period), carries the job on, and makes no pod twice.
        job = json.loads(pytorchjob("during", marker, master_cmd="sleep 4", worker_cmd="sleep 4",
                                    workers=2))
        apply(standin, tmp_path, job)
        assert wait_until(lambda: len(pods_of(standin, "during")) == 3, 30), leader.log()
        leader.kill9()
        killed = time.monotonic()
        assert wait_until(lambda: holder() == standby.identity(), 25), standby.log()
        took = time.monotonic() - killed
        # client-go's bound: the standby sees the last renewal up to a retry period (2 s) late,
        # waits the lease duration (15 s) from then, and takes it at its next try (2 s).
        assert took <= 15 + 2 + 2 + 1, took
        after = json.loads(pytorchjob("after", marker, master_cmd="sleep 1", workers=0))
        apply(standin, tmp_path, after)
        assert wait_until(lambda: succeeded(standin, "during"), 60), standby.log()
        assert wait_until(lambda: succeeded(standin, "after"), 60), standby.log()
        assert created_pods(standin) == 2 + 3 + 1
        lease = standin.json("get", "lease", "trainyard-controller", "-n", "trainyard-system")
        assert lease["spec"]["leaseTransitions"] >= 1
        print(f"failover: the standby held the lease {took:.1f} s after the leader was killed")
    finally:
        for o in (a, b):
            if o.proc.poll() is None:
                o.stop()


def test_a_leader_whose_lease_is_taken_stops(standin, tmp_path):
    """A leader that finds another holder on its Lease (here written by hand, as a replica
    that took an expired lease would) stops leading and exits with status 1, as client-go's
    callers do; nothing is left running."""
    op = Operator(tmp_path, standin.operator_kubeconfig, "op").start()
    get = ("get", "lease", "trainyard-controller", "-n", "trainyard-system", "-o", "json")
    assert wait_until(lambda: standin.kubectl(*get, check=False).returncode == 0 and
                      json.loads(standin.kubectl(*get).stdout)["spec"]["holderIdentity"]
                      == op.identity(), 20), op.log()
    lease = json.loads(standin.kubectl(*get).stdout)
    lease["spec"]["holderIdentity"] = "someone-else"
    lease["spec"]["renewTime"] = "2030-01-01T00:00:00.000000Z"
    path = tmp_path / "lease.json"
    path.write_text(json.dumps(lease))
    standin.kubectl("replace", "-f", str(path))
    assert wait_until(lambda: op.proc.poll() is not None, 10), op.log()
    assert op.proc.returncode == 1
    op.err.close()
    assert "lost the lease" in op.log() and "another replica holds it" in op.log()
    assert_no_sanitizer_report(op.log())
