"""ClusterIP Services reachable from pods (docs/containers.md, "DNS and Services"): the server
keeps kube-proxy's nftables rules in every pod's own network namespace, installed before a
pod's containers run and updated in running pods when Services or their endpoints change.

The client is a real pod: it takes requests as files in a directory of the test's (its
container runs on the host's filesystem) and answers each with what its connect did, through
its own namespace and its own resolv.conf (the cluster DNS)."""
import ipaddress
import json
import os
import subprocess
import textwrap

import pytest

from conftest import netns_refused, wait_until
from server_fixture import Server

pytestmark = pytest.mark.skipif(netns_refused() is not None, reason=str(netns_refused()))

PY = "/usr/bin/python3"

BACKEND = """
import os, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(os.environ["POD_NAME"].encode())
    c.close()
"""

# Each request file `<n>.req` holds "host port"; the answer goes to `<n>.resp`: "ok <backend>",
# "refused", or "error <what>".
CLIENT = """
import os, socket, sys, time
d = sys.argv[1]
while True:
    for f in sorted(os.listdir(d)):
        if not f.endswith(".req"):
            continue
        host, port = open(os.path.join(d, f)).read().split()
        t0 = time.monotonic()
        try:
            c = socket.create_connection((host, int(port)), timeout=2)
            out = "ok " + c.recv(100).decode()
            c.close()
        except ConnectionRefusedError:
            out = "refused"
        except OSError as e:
            out = "error %s (after %.1f s)" % (e, time.monotonic() - t0)
        os.unlink(os.path.join(d, f))
        tmp = os.path.join(d, f[:-4] + ".tmp")
        open(tmp, "w").write(out)
        os.rename(tmp, os.path.join(d, f[:-4] + ".resp"))
    time.sleep(0.05)
"""

FIRST = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("first connect reached", c.recv(100).decode(), flush=True)
"""


def pod(name, script, args=(), labels=None, ports=None, marker=""):
    c = {"name": "main", "image": "busybox",
         "command": [PY, "-c", textwrap.dedent(script), *args],
         "env": [{"name": "TY_MARKER", "value": marker}]}
    if ports:
        c["ports"] = ports
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [c]}}


def service(name, selector, target="http", port=80):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector,
                     "ports": [{"name": "web", "port": port, "targetPort": target}]}}


class Client:
    def __init__(self, d):
        self.dir = d
        self.n = 0

    def ask(self, host, port, timeout=30):
        self.n += 1
        req = os.path.join(self.dir, f"{self.n:05d}")
        with open(req + ".tmp", "w") as f:
            f.write(f"{host} {port}")
        os.rename(req + ".tmp", req + ".req")
        assert wait_until(lambda: os.path.exists(req + ".resp"), timeout), "client is stuck"
        return open(req + ".resp").read()

    def until(self, host, port, pred, timeout=30):
        """Asks again until the answer satisfies pred (the rules reach a running pod within a
        batch); returns the last answer."""
        out = [None]

        def check():
            out[0] = self.ask(host, port)
            return pred(out[0])
        wait_until(check, timeout, interval=0.1)
        return out[0]


def create(srv, obj):
    srv.kubectl("create", "-f", "-", input=json.dumps(obj))


def phase(srv, name):
    return srv.json("get", "pod", name)["status"].get("phase")


def rules_in(srv, name):
    """The table in the pod's network namespace, read through its shim's /proc entry."""
    uid = srv.json("get", "pod", name)["metadata"]["uid"]
    d = os.path.join(srv.data_dir, "node", "pods", f"default_{name}_{uid}")
    pid = json.load(open(os.path.join(d, "state.json")))["shimPid"]
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "nft", "list", "table", "ip",
                           "trainyard-proxy"], capture_output=True, text=True).stdout


def test_cluster_ip_services_are_reachable_from_pods(tmp_path, marker):
    reqs = tmp_path / "reqs"
    reqs.mkdir()
    srv = Server(tmp_path / "data", ["--stop-pods-on-exit"]).start()
    try:
        ports = [{"name": "http", "containerPort": 8080}]
        for b in ("echo-a", "echo-b"):
            create(srv, pod(b, BACKEND, labels={"app": "echo"}, ports=ports, marker=marker))
        create(srv, service("echo", {"app": "echo"}))
        create(srv, pod("client", CLIENT, [str(reqs)], marker=marker))
        assert wait_until(lambda: all(phase(srv, p) == "Running"
                                      for p in ("echo-a", "echo-b", "client")), 60)
        ip = srv.json("get", "svc", "echo")["spec"]["clusterIP"]
        # the gateway's MAC is the bridge's own, not its lowest port's: a pod joining later
        # must not change it under the others (they would lose the gateway and the DNS)
        gw = srv.json("get", "pod", "client")["status"]["hostIP"]
        bridge = "ty-%08x" % (int(ipaddress.ip_address(gw)) - 1)
        assert open(f"/sys/class/net/{bridge}/addr_assign_type").read().strip() == "3"
        cl = Client(str(reqs))
        # by clusterIP and by name (the cluster DNS on the gateway, through resolv.conf); the
        # named targetPort is each pod's "http" port
        seen = set()
        for host in [ip] * 10 + ["echo.default.svc.cluster.local"] * 10 + ["echo"]:
            out = cl.until(host, 80, lambda o: o.startswith("ok "))
            assert out.startswith("ok echo-"), (host, out)
            seen.add(out)
        assert seen == {"ok echo-a", "ok echo-b"}, "both endpoints are chosen, at random"

        # a Service created after the client started reaches it too
        create(srv, pod("late-a", BACKEND, labels={"app": "late"}, ports=ports, marker=marker))
        create(srv, service("late", {"app": "late"}, port=81))
        assert wait_until(lambda: phase(srv, "late-a") == "Running", 60)
        late_ip = srv.json("get", "svc", "late")["spec"]["clusterIP"]
        assert cl.until(late_ip, 81, lambda o: o.startswith("ok ")) == "ok late-a"
        for _ in range(10):
            assert cl.ask("late.default.svc.cluster.local", 81) == "ok late-a"

        # a pod started now has the rules before its container's first connect
        create(srv, pod("first", FIRST, [ip, "80"], marker=marker))
        assert wait_until(lambda: phase(srv, "first") in ("Succeeded", "Failed"), 60)
        assert phase(srv, "first") == "Succeeded", srv.kubectl("logs", "first").stdout
        assert "first connect reached echo-" in srv.kubectl("logs", "first").stdout

        # a Service without endpoints refuses at once (no wait for a timeout)
        create(srv, service("empty", {"app": "nobody"}))
        empty_ip = srv.json("get", "svc", "empty")["spec"]["clusterIP"]
        assert cl.until(empty_ip, 80, lambda o: o == "refused") == "refused"

        # a Service without a selector sends to the EndpointSlice written for it; the
        # kubernetes Service's endpoint is the API's loopback address, which no pod can reach:
        # refused
        manual = service("manual", {}, port=85)
        del manual["spec"]["selector"]
        create(srv, manual)
        manual_ip = srv.json("get", "svc", "manual")["spec"]["clusterIP"]
        echo_a = srv.json("get", "pod", "echo-a")["status"]["podIP"]
        create(srv, {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                     "metadata": {"name": "manual-1",
                                  "labels": {"kubernetes.io/service-name": "manual"}},
                     "addressType": "IPv4", "endpoints": [{"addresses": [echo_a]}],
                     "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]})
        assert cl.until(manual_ip, 85, lambda o: o.startswith("ok ")) == "ok echo-a"
        assert cl.ask("manual.default.svc.cluster.local", 85) == "ok echo-a"
        assert cl.until("10.96.0.1", 443, lambda o: o == "refused") == "refused"
        assert cl.ask("kubernetes.default.svc.cluster.local", 443) == "refused"

        # deleting the Service removes its rule from running pods: the address is nothing
        # any more (no pod behind it, nothing refuses)
        srv.kubectl("delete", "svc", "late")
        assert wait_until(lambda: late_ip not in rules_in(srv, "client"), 30), \
            rules_in(srv, "client")
        assert ip in rules_in(srv, "client")
        assert cl.ask(late_ip, 81).startswith("error "), "nothing answers a deleted Service"
        # a restarted server (pods adopted, their namespaces through their shims) updates the
        # running pods too
        srv.kill9()
        srv.start()
        create(srv, service("again", {"app": "echo"}, port=82))
        again_ip = srv.json("get", "svc", "again")["spec"]["clusterIP"]
        assert cl.until(again_ip, 82, lambda o: o.startswith("ok ")).startswith("ok echo-")
        # and the backend's going empties the one left
        srv.kubectl("delete", "pod", "late-a", "echo-a", "echo-b", "--wait=true", timeout=60)
        assert cl.until(ip, 80, lambda o: o == "refused") == "refused"
    finally:
        srv.stop()
        srv.reap()
