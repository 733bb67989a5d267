"""Pod networking as Kubernetes defines it (docs/containers.md, "Network"): as root each pod has
its own network namespace with lo and eth0 on a bridge of its trainyard's, an address of the pod
CIDR, the kubelet's /etc/hosts and /etc/resolv.conf, and nothing of it outlives the pod.

Every test checks that what the pods had (their veths, their instance's bridge and lease) is
gone at the end, found by name: the veth of a pod is `tyv` + the low 48 bits of the FNV-1a of
its uid, the bridge of a block `ty-<block in hex>`, its lease
/run/trainyard/net/<block>-24.lease."""
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time

import pytest

from conftest import (REPO, netns_refused, processes_with, start_trainyard, trainyard_bin,
                      wait_until)
from server_fixture import Server, kill_pods_of

NET_DIR = "/run/trainyard/net"
PY = "/usr/bin/python3"


pytestmark = pytest.mark.skipif(netns_refused() is not None, reason=str(netns_refused()))


def veth_of(uid):
    h = 14695981039346656037
    for b in uid.encode():
        h = ((h ^ b) * 1099511628211) & (2**64 - 1)
    return "tyv%012x" % (h & 0xFFFFFFFFFFFF)


def block_of(ip):
    return ipaddress.ip_network(f"{ip}/24", strict=False)


def bridge_of(block):
    return "ty-%08x" % int(block.network_address)


def lease_of(block):
    return os.path.join(NET_DIR, f"{block.network_address}-24.lease")


def links():
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def assert_nothing_left(uids, blocks):
    """No veth of these pods, no bridge or lease of these blocks, no namespace mount."""
    def clean():
        have = links()
        return (not any(veth_of(u) in have for u in uids)
                and not any(bridge_of(b) in have for b in blocks)
                and not any(os.path.exists(lease_of(b)) for b in blocks))
    assert wait_until(clean, 10), (links(), os.listdir(NET_DIR) if os.path.isdir(NET_DIR) else [])
    # trainyard mounts no namespace (those of `ip netns`, under /run/netns, are not its)
    with open("/proc/self/mountinfo") as f:
        nsfs = [line for line in f if " - nsfs " in line and " /run/netns/" not in line]
    assert not nsfs, nsfs


def run_json(path, tmp_path, *args, timeout=240, state="state"):
    argv = [trainyard_bin(), "run", "--state-dir", str(tmp_path / state), "-o", "json", *args,
            path]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def pods_of(listing):
    return [o for o in json.loads(listing)["items"] if o["kind"] == "Pod"]


def job(name, marker, master, worker=None, template_extra=None, restart="Never"):
    specs = {}
    for rtype, cmd in (("Master", master), ("Worker", worker)):
        if cmd is None:
            continue
        spec = {"containers": [{
            "name": "pytorch", "image": "busybox", "command": [PY, "-c", textwrap.dedent(cmd)],
            "env": [{"name": "TY_MARKER", "value": marker}]}]}
        spec.update(template_extra or {})
        specs[rtype] = {"replicas": 1, "restartPolicy": restart, "template": {"spec": spec}}
    return json.dumps({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                       "metadata": {"name": name}, "spec": {"pytorchReplicaSpecs": specs}})


DDP = """
import os, sys, time
import torch, torch.distributed as dist
assert os.environ["MASTER_PORT"] == "23456", os.environ["MASTER_PORT"]
dist.init_process_group("gloo")
t = torch.ones(4) * (dist.get_rank() + 1)
dist.all_reduce(t)
assert t.tolist() == [3.0] * 4, t
if dist.get_rank() == 0:
    # both jobs' stores hold *:23456 at once: each master waits for the other's flag
    open(os.path.join(FLAGS, os.environ["POD_NAME"]), "w").close()
    deadline = time.time() + 120
    while len(os.listdir(FLAGS)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    assert len(os.listdir(FLAGS)) == 2, os.listdir(FLAGS)
dist.barrier()
print("ddp ok rank", dist.get_rank(), os.environ["POD_IP"], flush=True)
"""


def test_two_ddp_jobs_on_the_default_port_at_once(tmp_path, marker):
    """Two runs side by side, each a PyTorch DDP job (gloo) whose store binds *:23456: both
    succeed, each in its own block of the pod CIDR, and leave nothing behind."""
    flags = tmp_path / "flags"
    flags.mkdir()
    script = f"FLAGS = {str(flags)!r}\n" + DDP
    paths = []
    for name in ("ddp-a", "ddp-b"):
        p = tmp_path / f"{name}.json"
        p.write_text(job(name, marker, script, script))
        paths.append(str(p))
    procs = [start_trainyard(["-o", "json", path], tmp_path / name)
             for path, name in zip(paths, ("a", "b"))]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=400))
    finally:
        for p in procs:
            p.kill()
    uids, blocks = [], set()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        pods = pods_of(out)
        assert len(pods) == 2
        for pod in pods:
            uids.append(pod["metadata"]["uid"])
            ip = pod["status"]["podIP"]
            assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.244.0.0/16"), ip
            blocks.add(block_of(ip))
    assert len(blocks) == 2, "each run has its own block"
    assert sorted(os.listdir(flags)) == ["ddp-a-master-0", "ddp-b-master-0"]
    assert_nothing_left(uids, blocks)


PORTS_MASTER = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000))
s.listen(4)
c, _ = s.accept()
print("master got", c.recv(100).decode(), flush=True)
"""

PORTS_WORKER = """
import os, socket, time
master = os.environ["MASTER_ADDR"]
deadline = time.time() + 60
while True:
    try:
        c = socket.create_connection((master, 7000), timeout=5)
        break
    except OSError:
        assert time.time() < deadline, "master never listened"
        time.sleep(0.05)
# the master listens now: on 127.0.0.1 this pod reaches only its own namespace
try:
    socket.create_connection(("127.0.0.1", 7000), timeout=5)
    print("reached the master through 127.0.0.1", flush=True)
except ConnectionRefusedError:
    print("127.0.0.1:7000 refused", flush=True)
c.sendall(b"hello from " + os.environ["POD_IP"].encode())
print("worker at", os.environ["POD_IP"], "hostIP", os.environ["HOST_IP"], flush=True)
"""


def test_pods_reach_each_other_by_address_not_through_loopback(tmp_path, marker):
    host_ip = {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}
    text = json.loads(job("ports", marker, PORTS_MASTER, PORTS_WORKER))
    for rs in text["spec"]["pytorchReplicaSpecs"].values():
        rs["template"]["spec"]["containers"][0]["env"].append(host_ip)
    path = tmp_path / "ports.json"
    path.write_text(json.dumps(text))
    r = run_json(str(path), tmp_path, "--follow", "--pod-cidr", "10.99.0.0/16")
    assert r.returncode == 0, r.stderr[-3000:]
    pods = {p["metadata"]["name"]: p for p in pods_of(r.stdout)}
    master, worker = pods["ports-master-0"], pods["ports-worker-0"]
    mip, wip = master["status"]["podIP"], worker["status"]["podIP"]
    gw = master["status"]["hostIP"]
    for ip in (mip, wip, gw):
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.99.0.0/16"), ip
    assert block_of(mip) == block_of(wip) == block_of(gw) and mip != wip
    assert gw == str(block_of(mip).network_address + 1), "the gateway is the block's first"
    assert worker["status"]["hostIP"] == gw and master["status"]["podIPs"] == [{"ip": mip}]
    assert "[ports-worker-0] 127.0.0.1:7000 refused" in r.stderr, r.stderr[-3000:]
    assert f"[ports-master-0] master got hello from {wip}" in r.stderr, r.stderr[-3000:]
    assert f"[ports-worker-0] worker at {wip} hostIP {gw}" in r.stderr
    assert_nothing_left([p["metadata"]["uid"] for p in pods.values()], [block_of(mip)])


ETC = """
import os, socket
print("HOSTS<<" + open("/etc/hosts").read() + ">>", flush=True)
print("RESOLV<<" + open("/etc/resolv.conf").read() + ">>", flush=True)
print("HOSTNAME", socket.gethostname(), os.environ["HOSTNAME"], flush=True)
print("NETNS", os.readlink("/proc/self/ns/net"), flush=True)
"""


def printed(log, tag):
    """A file the pod printed between TAG<< and >>, without the run's [pod] prefixes."""
    text = log.split(tag + "<<")[1].split(">>")[0]
    return "\n".join(line.split("] ", 1)[1] if line.startswith("[") else line
                     for line in text.splitlines()).strip("\n")


def test_hosts_resolv_conf_and_hostname_as_the_kubelet_writes_them(tmp_path, marker):
    # as nobody: the files are the pod's, every container reads them whoever it runs as
    extra = {"hostname": "trainer", "subdomain": "grp", "securityContext": {"runAsUser": 65534},
             "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}],
             "dnsConfig": {"searches": ["extra.example"],
                           "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}
    path = tmp_path / "etc.json"
    path.write_text(job("etc", marker, ETC, template_extra=extra))
    r = run_json(str(path), tmp_path, "--follow")
    assert r.returncode == 0, r.stderr[-3000:]
    pod = pods_of(r.stdout)[0]
    ip, gw = pod["status"]["podIP"], pod["status"]["hostIP"]
    hosts = printed(r.stderr, "HOSTS")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                            "::1\tlocalhost ip6-localhost ip6-loopback\n"
                            "fe00::0\tip6-localnet\n"), hosts
    assert f"\n{ip}\ttrainer.grp.default.svc.cluster.local\ttrainer\n" in hosts, hosts
    assert hosts.endswith("\n# Entries added by HostAliases.\n"
                          "10.1.2.3\tfoo.local\tbar.local"), hosts
    lines = printed(r.stderr, "RESOLV").splitlines()
    assert lines[0].startswith("search default.svc.cluster.local svc.cluster.local "
                               "cluster.local"), lines
    assert lines[0].endswith(" extra.example"), lines
    assert lines[1:] == [f"nameserver {gw}", "options ndots:2 edns0"], lines
    assert "[etc-master-0] HOSTNAME trainer trainer" in r.stderr, r.stderr[-2000:]
    assert os.readlink("/proc/self/ns/net") not in r.stderr
    assert_nothing_left([pod["metadata"]["uid"]], [block_of(ip)])


def test_host_network_pod_shares_the_hosts_namespace(tmp_path, marker):
    path = tmp_path / "hostnet.json"
    path.write_text(job("hostnet", marker, ETC, template_extra={"hostNetwork": True}))
    r = run_json(str(path), tmp_path, "--follow")
    assert r.returncode == 0, r.stderr[-3000:]
    pod = pods_of(r.stdout)[0]
    assert pod["status"]["podIP"] == pod["status"]["hostIP"], pod["status"]
    assert f"[hostnet-master-0] NETNS {os.readlink('/proc/self/ns/net')}" in r.stderr
    with open("/etc/hosts") as f:
        assert f.read().splitlines()[0] in r.stderr, "the host's /etc/hosts"
    assert_nothing_left([pod["metadata"]["uid"]], [block_of(pod["status"]["hostIP"])])


def test_killed_run_leaves_nothing_after_the_next_start(tmp_path, marker):
    """kill -9 of `trainyard run` with pods running: its pods die with it; the next instance
    to start reclaims its block (bridge, lease, veths), whatever its state dir."""
    sleeper = "import time; print('up', flush=True); time.sleep(600)"
    path = tmp_path / "sleepy.json"
    path.write_text(job("sleepy", marker, sleeper, sleeper))
    p = start_trainyard(["--follow", str(path)], tmp_path)
    try:
        state = tmp_path / "state" / "pods"
        assert wait_until(lambda: len(processes_with(marker)) >= 2, 60)
        uids = [d.rsplit("_", 1)[1] for d in os.listdir(state)]
        assert len(uids) == 2 and all(veth_of(u) in links() for u in uids)
        owned = [lease for lease in os.listdir(NET_DIR) if lease.endswith(".lease") and
                 str(tmp_path / "state") in open(os.path.join(NET_DIR, lease)).read()]
        assert len(owned) == 1, os.listdir(NET_DIR)
        block = ipaddress.ip_network(owned[0][:-len(".lease")].replace("-", "/"))
        assert bridge_of(block) in links()
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert wait_until(lambda: not processes_with(marker), 10)
    # the next start of anything (another state dir): the dead block goes
    quick = tmp_path / "quick.json"
    quick.write_text(job("quick", marker, "print('ok')"))
    r = run_json(str(quick), tmp_path, state="other")
    assert r.returncode == 0, r.stderr[-3000:]
    assert_nothing_left(uids, [block])


def test_server_killed_with_pods_running_then_restarted(tmp_path, marker):
    """kill -9 of the server: its pods keep running with their addresses; a restart on the same
    data dir re-takes the same block and adopts them; deleting the jobs then removes every veth,
    and the server's exit the bridge and the lease."""
    sleeper = "import time; print('up', flush=True); time.sleep(600)"
    path = tmp_path / "srv.json"
    path.write_text(job("srv", marker, sleeper, sleeper))
    srv = Server(tmp_path / "data").start()
    try:
        srv.kubectl("create", "-f", str(path))

        def running():
            pods = srv.json("get", "pods")["items"]
            return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)
        assert wait_until(running, 60)
        before = {p["metadata"]["uid"]: p["status"]["podIP"]
                  for p in srv.json("get", "pods")["items"]}
        blocks = {block_of(ip) for ip in before.values()}
        assert len(blocks) == 1 and all(veth_of(u) in links() for u in before)
        node = srv.json("get", "nodes")["items"][0]
        block = next(iter(blocks))
        assert node["spec"]["podCIDR"] == str(block) and node["spec"]["podCIDRs"] == [str(block)]
        assert {"type": "InternalIP", "address": str(block.network_address + 1)} in \
            node["status"]["addresses"], node["status"]
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        srv.err.close()
        assert len(processes_with(marker)) >= 2, "the pods outlive the server"
        srv.start()
        assert wait_until(running, 30)
        after = {p["metadata"]["uid"]: p["status"]["podIP"]
                 for p in srv.json("get", "pods")["items"]}
        assert after == before
        assert all(os.path.exists(lease_of(b)) for b in blocks)
        srv.kubectl("delete", "pytorchjob", "srv", "--wait=true", timeout=120)
        assert wait_until(lambda: not srv.json("get", "pods")["items"], 60)
        assert wait_until(lambda: not any(veth_of(u) in links() for u in before), 10)
    finally:
        srv.stop()
    assert_nothing_left(list(before), blocks)


def test_no_pod_network_keeps_pods_on_loopback_addresses(tmp_path, marker):
    path = tmp_path / "lo.json"
    path.write_text(job("lo", marker, ETC))
    r = run_json(str(path), tmp_path, "--follow", "--no-pod-network")
    assert r.returncode == 0, r.stderr[-3000:]
    pod = pods_of(r.stdout)[0]
    assert pod["status"]["podIP"].startswith("127."), pod["status"]
    assert pod["status"]["hostIP"] == "127.0.0.1", pod["status"]
    assert f"[lo-master-0] NETNS {os.readlink('/proc/self/ns/net')}" in r.stderr
    assert "Kubernetes-managed" not in r.stderr, "the host's /etc"


def test_without_root_pods_get_loopback_addresses_and_it_is_said_once(tmp_path, marker):
    """The fallback: trainyard run as nobody says once why pods share the host's network, and
    they do, each with a loopback address."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to run trainyard as another user")
    home = tempfile.mkdtemp(prefix="ty-nobody-")
    try:
        os.chmod(home, 0o755)
        os.chown(home, 65534, 65534)
        path = os.path.join(home, "job.json")
        with open(path, "w") as f:
            f.write(job("nobody", marker, ETC))
        os.chmod(path, 0o644)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            trainyard_bin(), "run", "--follow", "-o", "json", "--state-dir",
                            os.path.join(home, "state"), path],
                           cwd=REPO, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "HOME": home})
        assert p.returncode == 0, p.stderr[-3000:]
        said = [line for line in p.stderr.splitlines() if "pod network: unavailable" in line]
        assert len(said) == 1 and "(not root)" in said[0], p.stderr[-3000:]
        pod = pods_of(p.stdout)[0]
        assert pod["status"]["podIP"].startswith("127."), pod["status"]
        assert f"[nobody-master-0] NETNS {os.readlink('/proc/self/ns/net')}" in p.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_pods_that_died_while_the_server_was_down_leave_nothing(tmp_path, marker):
    """kill -9 of the server, then of its pods' supervisors: the restarted server re-takes its
    block and the sweep removes what the dead pods left (their records and veths)."""
    sleeper = "import time; print('up', flush=True); time.sleep(600)"
    path = tmp_path / "gone.json"
    path.write_text(job("gone", marker, sleeper))
    srv = Server(tmp_path / "data").start()
    try:
        srv.kubectl("create", "-f", str(path))

        def pods():
            return srv.json("get", "pods")["items"]
        assert wait_until(lambda: pods() and pods()[0]["status"].get("phase") == "Running", 60)
        pod = pods()[0]
        uid, block = pod["metadata"]["uid"], block_of(pod["status"]["podIP"])
        record = os.path.join(NET_DIR, f"{block.network_address}-24.pods", uid)
        assert os.path.exists(record) and veth_of(uid) in links()
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait()
        srv.err.close()
        kill_pods_of(tmp_path / "data")
        assert wait_until(lambda: not processes_with(marker), 10)
        srv.start()
        assert wait_until(lambda: pods() and pods()[0]["status"].get("phase") == "Failed", 30)
        assert not os.path.exists(record) and veth_of(uid) not in links()
        assert os.path.exists(lease_of(block)), "the same block, taken again"
        srv.kubectl("delete", "pytorchjob", "gone", "--wait=true", timeout=120)
    finally:
        srv.stop()
    assert_nothing_left([uid], [block])


NAMES_MASTER = """
import socket
s = socket.socket()
s.bind(("0.0.0.0", 7001))
s.listen(4)
c, _ = s.accept()
print("master got", c.recv(100).decode(), flush=True)
"""

NAMES_WORKER = """
import os, socket, subprocess, time
master = os.environ["MASTER_ADDR"]
assert master == "names-master-0", master
deadline = time.time() + 60
while True:  # the master's name resolves once its pod is ready, as on a cluster
    try:
        c = socket.create_connection((master, 7001), timeout=5)
        break
    except OSError:
        assert time.time() < deadline, "the master's name never resolved and answered"
        time.sleep(0.05)
fqdn = subprocess.run(["getent", "hosts", "names-master-0.default.svc.cluster.local"],
                      capture_output=True, text=True).stdout.split()
print("resolved", master, "to", c.getpeername()[0], "fqdn", fqdn[0] if fqdn else None, flush=True)
c.sendall(b"hello")
"""


def test_pods_resolve_the_operators_service_names_through_cluster_dns(tmp_path, marker):
    """With a pod network the cluster DNS listens on the gateway, so MASTER_ADDR carries the
    operator's Service name, and it and the fully qualified name resolve (through the pod's
    resolv.conf) to the master pod's address."""
    p = tmp_path / "names.json"
    p.write_text(job("names", marker, NAMES_MASTER, NAMES_WORKER))
    r = run_json(str(p), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    pods = {q["metadata"]["name"]: q for q in pods_of(r.stdout)}
    master_ip = pods["names-master-0"]["status"]["podIP"]
    log = (tmp_path / "state").rglob("*.log")
    text = "".join(f.read_text() for f in log)
    assert f"resolved names-master-0 to {master_ip} fqdn {master_ip}" in text, text[-2000:]
    assert_nothing_left([q["metadata"]["uid"] for q in pods.values()],
                        {block_of(master_ip)})


HOSTNET_MASTER = """
import os, socket
print("master resolv", open("/etc/resolv.conf").read().replace(chr(10), "|"), flush=True)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", PORT))
s.listen(4)
c, _ = s.accept()
print("master got", c.recv(100).decode(), flush=True)
"""

HOSTNET_WORKER = """
import os, socket, time
print("worker resolv", open("/etc/resolv.conf").read().replace(chr(10), "|"), flush=True)
master = os.environ["MASTER_ADDR"]
deadline = time.time() + 60
while True:  # the master's name resolves once its pod is ready
    try:
        c = socket.create_connection((master, PORT), timeout=5)
        break
    except OSError:
        assert time.time() < deadline, "the master's name never resolved and answered"
        time.sleep(0.05)
print("worker resolved", master, "to", c.getpeername()[0], flush=True)
c.sendall(b"hello")
"""


def test_host_network_pods_of_a_job_resolve_cluster_names(tmp_path, marker):
    """hostNetwork pods of a job: MASTER_ADDR is the operator's Service name, which resolves to
    the master's podIP, the host's address; a hostNetwork pod resolves cluster names only with
    dnsPolicy ClusterFirstWithHostNet (its resolv.conf names the cluster DNS), and keeps the
    host's resolver with ClusterFirst, as the kubelet decides."""
    import socket
    with socket.socket() as s:  # a free port of the host's namespace, where both pods listen
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    specs = {}
    for rtype, script, policy in (("Master", HOSTNET_MASTER, None),
                                  ("Worker", HOSTNET_WORKER, "ClusterFirstWithHostNet")):
        spec = {"hostNetwork": True, "containers": [{
            "name": "pytorch", "image": "busybox",
            "command": [PY, "-c", f"PORT = {port}\n" + textwrap.dedent(script)],
            "env": [{"name": "TY_MARKER", "value": marker}]}]}
        if policy:
            spec["dnsPolicy"] = policy
        specs[rtype] = {"replicas": 1, "restartPolicy": "Never", "template": {"spec": spec}}
    p = tmp_path / "hostnet.json"
    p.write_text(json.dumps({"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                             "metadata": {"name": "hn"}, "spec": {"pytorchReplicaSpecs": specs}}))
    r = run_json(str(p), tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    pods = {q["metadata"]["name"]: q for q in pods_of(r.stdout)}
    master_ip = pods["hn-master-0"]["status"]["podIP"]
    assert master_ip == pods["hn-master-0"]["status"]["hostIP"], "the host's address"
    text = "".join(f.read_text() for f in (tmp_path / "state").rglob("*.log"))
    assert f"worker resolved hn-master-0 to {master_ip}" in text, text[-2000:]
    assert "master got hello" in text, text[-2000:]
    worker_resolv = text.split("worker resolv ", 1)[1].split("\n", 1)[0]
    assert f"nameserver {master_ip}|" in worker_resolv, worker_resolv
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in worker_resolv
    master_resolv = text.split("master resolv ", 1)[1].split("\n", 1)[0]
    assert "cluster.local" not in master_resolv and master_ip not in master_resolv, \
        master_resolv
