"""Cluster DNS (`--cluster-dns`): Services and Pods by name, as CoreDNS answers them, through the
real server, queried with a small resolver written here (independent of trainyard's code)."""
import json
import os
import random
import re
import socket
import struct
import threading

import pytest

from conftest import wait_until
from server_fixture import Server

A, SOA, PTR, SRV, AAAA, OPT = 1, 6, 12, 33, 28, 41
NOERROR, FORMERR, SERVFAIL, NXDOMAIN = 0, 1, 2, 3


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def build_query(name, qtype, qid=None, edns=None):
    qid = random.randrange(65536) if qid is None else qid
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1 if edns else 0)
    q += encode_name(name) + struct.pack(">HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack(">HHIH", OPT, edns, 0, 0)
    return q


def read_name(msg, off):
    labels, jumped, end = [], False, None
    for _ in range(128):
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            jumped = True
            off = ((n & 0x3F) << 8) | msg[off + 1]
            continue
        if n == 0:
            return ".".join(labels), (end if jumped else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode())
        off += 1 + n
    raise ValueError("name loop")


def parse(msg):
    qid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    sections = []
    for count in (an, ns, ar):
        recs = []
        for _ in range(count):
            name, off = read_name(msg, off)
            rtype, _, ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
            rd = off + 10
            if rtype == A:
                data = socket.inet_ntoa(msg[rd:rd + 4])
            elif rtype == SRV:
                prio, weight, port = struct.unpack(">HHH", msg[rd:rd + 6])
                data = (prio, weight, port, read_name(msg, rd + 6)[0])
            elif rtype == PTR:
                data = read_name(msg, rd)[0]
            else:
                data = msg[rd:rd + rdlen]
            recs.append((name, rtype, data))
            off = rd + rdlen
        sections.append(recs)
    return {"id": qid, "rcode": flags & 0xF, "tc": bool(flags & 0x200), "aa": bool(flags & 0x400),
            "answer": sections[0], "authority": sections[1], "additional": sections[2]}


def ask_udp(addr, name, qtype, edns=None, timeout=5):
    q = build_query(name, qtype, edns=edns)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, addr)
        msg = s.recv(65535)
    r = parse(msg)
    assert r["id"] == struct.unpack(">H", q[:2])[0]
    return r


def ask_tcp(addr, name, qtype, timeout=5):
    q = build_query(name, qtype)
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(struct.pack(">H", len(q)) + q)
        n = struct.unpack(">H", recv_exact(s, 2))[0]
        return parse(recv_exact(s, n))


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def values(r, rtype=A, section="answer"):
    return sorted(d for _, t, d in r[section] if t == rtype)


def dns_address(server):
    text = open(server.stderr_path).read()
    m = re.findall(r"cluster DNS on ([0-9.]+):(\d+)", text)
    assert m, text
    return (m[-1][0], int(m[-1][1]))


class Upstream:
    """A resolver standing in for the host's: example.test A 192.0.2.7; big.test is truncated
    over UDP and whole over TCP; slow.test is never answered."""

    def __init__(self):
        for _ in range(20):  # a port free for both UDP and TCP
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.bind(("127.0.0.1", 0))
            self.port = self.tcp.getsockname()[1]
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.udp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
        self.tcp.listen(8)
        self.tcp_queries = 0
        self.stop = False
        for target in (self.serve_udp, self.serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    def answer(self, q, tcp):
        qid = struct.unpack(">H", q[:2])[0]
        name, off = read_name(q, 12)
        question = q[12:off + 4]
        if name == "slow.test":
            return None
        if name == "spoof.test":
            rr = b"\xc0\x0c" + struct.pack(">HHIH", A, 1, 60, 4) + socket.inet_aton("192.0.2.9")
            return struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr
        if name == "example.test":
            rr = b"\xc0\x0c" + struct.pack(">HHIH", A, 1, 60, 4) + socket.inet_aton("192.0.2.7")
            return struct.pack(">HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr
        if name == "big.test":
            if not tcp:
                return struct.pack(">HHHHHH", qid, 0x8380, 1, 0, 0, 0) + question
            rrs = b"".join(b"\xc0\x0c" + struct.pack(">HHIH", A, 1, 60, 4) +
                           socket.inet_aton(f"192.0.2.{i}") for i in range(1, 61))
            return struct.pack(">HHHHHH", qid, 0x8180, 1, 60, 0, 0) + question + rrs
        return struct.pack(">HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question

    def serve_udp(self):
        while not self.stop:
            try:
                q, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            if len(q) < 12:  # not a DNS query (a stray datagram to this port): no answer
                continue
            r = self.answer(q, False)
            if r and read_name(q, 12)[0] == "spoof.test":
                # first a forgery: another id, then another question; then the answer
                forged = r[:-4] + socket.inet_aton("192.0.2.66")
                bad_id = struct.pack(">H", (struct.unpack(">H", r[:2])[0] + 1) % 65536)
                self.udp.sendto(bad_id + forged[2:], peer)
                self.udp.sendto(forged.replace(b"spoof", b"spoog"), peer)
            if r:
                self.udp.sendto(r, peer)

    def serve_tcp(self):
        while not self.stop:
            try:
                c, _ = self.tcp.accept()
            except OSError:
                return
            with c:
                n = struct.unpack(">H", recv_exact(c, 2))[0]
                self.tcp_queries += 1
                r = self.answer(recv_exact(c, n), True)
                if r:
                    c.sendall(struct.pack(">H", len(r)) + r)

    def close(self):
        self.stop = True
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def server(tmp_path, upstream, monkeypatch):
    monkeypatch.setenv("TRAINYARD_DNS_UPSTREAM", f"127.0.0.1:{upstream.port}")
    s = Server(tmp_path / "data", ["--gpus", "0", "--cluster-dns", "127.0.0.1:0",
                                   "--stop-pods-on-exit"]).start()
    yield s
    s.stop()
    s.reap()


def apply(server, *objs, check=True):
    return server.kubectl("apply", "-f", "-", check=check,
                          input=json.dumps({"apiVersion": "v1", "kind": "List",
                                            "items": list(objs)}))


def service(name, ns="default", cluster_ip=None, selector=None, ports=(), **extra):
    spec = {"selector": selector or {"app": name},
            "ports": [dict(p) for p in ports]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def sleeper(name, labels, hostname=None, subdomain=None, port=None):
    c = {"name": "c", "image": "busybox", "command": ["sleep", "600"]}
    if port:
        c["ports"] = [{"name": "web", "containerPort": port}]
    spec = {"restartPolicy": "Never", "containers": [c]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": spec}


def pod_ip_when_ready(server, name):
    def ready():
        p = server.json("get", "pod", name)
        conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
        return conds.get("Ready") == "True" and p["status"].get("podIP")
    assert wait_until(ready, 60), server.json("get", "pod", name)
    return ready()


def test_service_and_pod_names(server):
    dns = dns_address(server)
    apply(server,
          service("web", cluster_ip="10.96.7.7", ports=[{"name": "http", "port": 80,
                                                         "targetPort": "web"}]),
          service("db", cluster_ip="None", ports=[{"name": "pg", "port": 5432,
                                                   "targetPort": "web"}]),
          sleeper("db-0", {"app": "db"}, hostname="db-0", subdomain="db", port=7000),
          sleeper("db-1", {"app": "db"}, port=7001),
          sleeper("web-0", {"app": "web"}, port=8080))
    ip0, ip1 = pod_ip_when_ready(server, "db-0"), pod_ip_when_ready(server, "db-1")

    r = ask_udp(dns, "web.default.svc.cluster.local", A)
    assert r["rcode"] == NOERROR and r["aa"] and values(r) == ["10.96.7.7"], r
    # headless: the ready endpoints; the pod with hostname+subdomain by its hostname
    assert wait_until(lambda: values(ask_udp(dns, "db.default.svc.cluster.local", A)) ==
                      sorted([ip0, ip1]), 10)
    assert values(ask_udp(dns, "db-0.db.default.svc.cluster.local", A)) == [ip0]
    dashed = ip1.replace(".", "-")
    assert values(ask_tcp(dns, f"{dashed}.db.default.svc.cluster.local", A)) == [ip1]
    assert values(ask_udp(dns, f"{ip0.replace('.', '-')}.default.pod.cluster.local", A)) == [ip0]

    # SRV for named ports: the Service port (ClusterIP), the pod's target port (headless)
    r = ask_udp(dns, "_http._tcp.web.default.svc.cluster.local", SRV)
    assert values(r, SRV) == [(0, 100, 80, "web.default.svc.cluster.local")], r
    assert values(r, A, "additional") == ["10.96.7.7"]
    r = ask_udp(dns, "_pg._tcp.db.default.svc.cluster.local", SRV)
    assert values(r, SRV) == sorted([(0, 50, 7000, "db-0.db.default.svc.cluster.local"),
                                     (0, 50, 7001, f"{dashed}.db.default.svc.cluster.local")]), r

    # PTR for Service and endpoint addresses
    rev = ".".join(reversed("10.96.7.7".split("."))) + ".in-addr.arpa"
    assert values(ask_udp(dns, rev, PTR), PTR) == ["web.default.svc.cluster.local"]
    rev0 = ".".join(reversed(ip0.split("."))) + ".in-addr.arpa"
    assert values(ask_udp(dns, rev0, PTR), PTR) == ["db-0.db.default.svc.cluster.local"]

    # negative answers: NXDOMAIN and NODATA, with the zone's SOA
    r = ask_udp(dns, "nope.default.svc.cluster.local", A)
    assert r["rcode"] == NXDOMAIN and [t for _, t, _ in r["authority"]] == [SOA], r
    r = ask_udp(dns, "web.default.svc.cluster.local", AAAA)
    assert r["rcode"] == NOERROR and not r["answer"] and r["authority"], r
    assert ask_udp(dns, "web.nosuchns.svc.cluster.local", A)["rcode"] == NXDOMAIN

    # deletes and changes show at once
    server.kubectl("delete", "service", "web")
    assert wait_until(lambda: ask_udp(dns, "web.default.svc.cluster.local", A)["rcode"] ==
                      NXDOMAIN, 10)
    server.kubectl("delete", "pod", "db-1", "--wait=false")
    assert wait_until(lambda: values(ask_udp(dns, "db.default.svc.cluster.local", A)) == [ip0],
                      30)


def test_not_ready_endpoints_need_publish_not_ready(server):
    dns = dns_address(server)
    # an init container that does not end keeps the pod not ready, with its address
    p = sleeper("slow-0", {"app": "slow"})
    p["spec"]["initContainers"] = [{"name": "init", "image": "busybox",
                                    "command": ["sleep", "600"]}]
    apply(server, service("slow", cluster_ip="None"), p)

    def started():
        st = server.json("get", "pod", "slow-0").get("status", {})
        running = [s for s in st.get("initContainerStatuses", [])
                   if "running" in s.get("state", {})]
        return running and st.get("podIP")
    assert wait_until(started, 60), server.json("get", "pod", "slow-0")
    ip = started()
    assert ask_udp(dns, "slow.default.svc.cluster.local", A)["rcode"] == NXDOMAIN
    apply(server, service("slow", cluster_ip="None", publishNotReadyAddresses=True))
    assert wait_until(lambda: values(ask_udp(dns, "slow.default.svc.cluster.local", A)) == [ip],
                      10)


def test_other_names_are_forwarded(server, upstream):
    """Names outside the zone go to the host's resolvers (here a stand-in)."""
    dns = dns_address(server)
    r = ask_udp(dns, "example.test", A)
    assert r["rcode"] == NOERROR and values(r) == ["192.0.2.7"], r
    assert ask_udp(dns, "missing.test", A)["rcode"] == NXDOMAIN
    # answers with another id or question are not taken for the one asked
    assert values(ask_udp(dns, "spoof.test", A)) == ["192.0.2.9"]
    # truncated over UDP upstream: asked again over TCP; the client's 512 bytes get TC
    r = ask_udp(dns, "big.test", A, edns=4096)
    assert not r["tc"] and len(r["answer"]) == 60 and upstream.tcp_queries >= 1, r
    r = ask_udp(dns, "big.test", A)
    assert r["tc"] and not r["answer"], r
    assert len(ask_tcp(dns, "big.test", A)["answer"]) == 60
    # a TCP client that goes while its query is forwarded: nothing is answered to it, and
    # the server lives on (its forward ends before the next one asked, which is SERVFAIL)
    with socket.create_connection(dns, timeout=5) as c:
        q = build_query("slow.test", A)
        c.sendall(struct.pack(">H", len(q)) + q)
    # an upstream that never answers: SERVFAIL after the timeout
    assert ask_udp(dns, "slow.test", A, timeout=10)["rcode"] == SERVFAIL
    assert server.proc.poll() is None
    # reverse names the cluster does not know go upstream too
    assert ask_udp(dns, "1.2.0.192.in-addr.arpa", PTR)["rcode"] == NXDOMAIN


def test_hostile_input_is_survived(server):
    dns = dns_address(server)
    apply(server, service("web", cluster_ip="10.96.7.8", ports=[{"name": "http", "port": 80}]))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        for junk in (b"", b"\x01", os.urandom(11), b"\x00\x01" + b"\xff" * 600,
                     struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01"):
            s.sendto(junk, dns)
        # a pointer loop is answered FORMERR, not followed
        s.sendto(struct.pack(">HHHHHH", 7, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", dns)
        while True:
            r = parse(s.recv(65535))
            if r["id"] == 7:
                break
        assert r["rcode"] == FORMERR
    # TCP: a length too short for a header ends the connection; a slow client is cut off
    with socket.create_connection(dns, timeout=5) as c:
        c.sendall(b"\x00\x03abc")
        assert c.recv(10) == b""
    # pipelined queries on one connection are all answered
    with socket.create_connection(dns, timeout=5) as c:
        qs = [build_query("web.default.svc.cluster.local", A, qid=i) for i in range(20)]
        c.sendall(b"".join(struct.pack(">H", len(q)) + q for q in qs))
        ids = set()
        for _ in qs:
            n = struct.unpack(">H", recv_exact(c, 2))[0]
            ids.add(parse(recv_exact(c, n))["id"])
        assert ids == set(range(20))
    # a burst of connections: beyond the bound they are closed, the server stays up
    conns = [socket.create_connection(dns, timeout=5) for _ in range(150)]
    for c in conns:
        c.close()
    assert wait_until(lambda: values(ask_udp(dns, "web.default.svc.cluster.local", A)) ==
                      ["10.96.7.8"], 10)
    assert server.proc.poll() is None


def test_bad_cluster_dns_options_are_refused(tmp_path):
    for args, want in ((["--cluster-dns", "127.0.0.1"], "not ADDR:PORT"),
                       (["--cluster-dns", "nohost:53"], "not an IPv4 address"),
                       (["--cluster-dns", "127.0.0.1:0", "--cluster-domain", "a..b"],
                        "not a valid DNS name")):
        s = Server(tmp_path / "data", ["--gpus", "0", *args])
        with pytest.raises(AssertionError):
            s.start()
        s.proc.wait(timeout=30)
        assert s.proc.returncode != 0
        s.err.close()
        assert want in open(s.stderr_path).read()


def test_cluster_ips_are_allocated_as_the_api_server_does(server, tmp_path):
    dns = dns_address(server)
    apply(server, service("alloc", ports=[{"name": "http", "port": 80}]))
    row = server.kubectl("get", "svc", "alloc", "--no-headers").stdout.split()
    ip = row[2]
    a, b = (int(x) for x in ip.split(".")[:2])
    assert row[1] == "ClusterIP" and a == 10 and 96 <= b < 112, row
    spec = server.json("get", "svc", "alloc")["spec"]
    assert spec["clusterIPs"] == [ip] and spec["ipFamilies"] == ["IPv4"], spec
    assert values(ask_udp(dns, "alloc.default.svc.cluster.local", A)) == [ip]

    # taken, outside the range: refused with the API server's words
    p = apply(server, service("dup", cluster_ip=ip, ports=[{"port": 80}]), check=False)
    assert p.returncode != 0 and (f'Service "dup" is invalid: spec.clusterIPs: Invalid value: '
                                  f'[]string{{"{ip}"}}: failed to allocate IP {ip}: provided IP '
                                  f"is already allocated" in p.stderr), p.stderr
    p = apply(server, service("far", cluster_ip="192.168.0.1", ports=[{"port": 80}]),
              check=False)
    assert p.returncode != 0 and ("the provided IP (192.168.0.1) is not in the valid range. "
                                  "The range of valid IPs is 10.96.0.0/12" in p.stderr), p.stderr
    # immutable: a patch that changes it is refused, one that leaves it out keeps it
    p = server.kubectl("patch", "svc", "alloc", "--type=merge", "-p",
                       '{"spec": {"clusterIP": "10.96.0.99", "clusterIPs": ["10.96.0.99"]}}',
                       check=False)
    assert p.returncode != 0 and "may not change once set" in p.stderr, p.stderr
    server.kubectl("patch", "svc", "alloc", "--type=merge", "-p",
                   '{"spec": {"selector": {"app": "other"}}}')
    assert server.json("get", "svc", "alloc")["spec"]["clusterIP"] == ip
    # still taken after a restart; free once deleted
    server.stop()
    server.start()
    p = apply(server, service("dup", cluster_ip=ip, ports=[{"port": 80}]), check=False)
    assert p.returncode != 0 and "provided IP is already allocated" in p.stderr, p.stderr
    server.kubectl("delete", "svc", "alloc")
    apply(server, service("dup", cluster_ip=ip, ports=[{"port": 80}]))
    assert server.json("get", "svc", "dup")["spec"]["clusterIP"] == ip


def test_the_kubernetes_service(server):
    """Service default/kubernetes as kube-apiserver keeps it: the service range's first
    address, port 443 "https" to the API's port, its labels; recreated when deleted, its ports
    put back when changed, resolvable by its cluster name."""
    dns = dns_address(server)
    api_port = int(server.url.rsplit(":", 1)[1])
    svc = server.json("get", "svc", "kubernetes")
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP" and spec["clusterIP"] == "10.96.0.1", spec
    assert spec["ports"] == [{"name": "https", "port": 443, "protocol": "TCP",
                              "targetPort": api_port}], spec
    assert values(ask_udp(dns, "kubernetes.default.svc.cluster.local", A)) == ["10.96.0.1"]
    # its endpoints: the API's listen address, as both kinds (kubectl prints them as usual)
    ep = server.json("get", "endpoints", "kubernetes")
    assert ep["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                              "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}]}]
    eps = server.json("get", "endpointslices.discovery.k8s.io", "kubernetes")
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
    assert eps["addressType"] == "IPv4" and eps["ports"] == ep["subsets"][0]["ports"]
    assert eps["endpoints"] == [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]
    row = server.kubectl("get", "ep", "kubernetes", "--no-headers").stdout.split()
    assert row[:2] == ["kubernetes", f"127.0.0.1:{api_port}"], row
    for kind in ("ep", "endpointslices"):
        server.kubectl("delete", kind, "kubernetes")
        assert wait_until(lambda: server.kubectl("get", kind, "kubernetes", check=False)
                          .returncode == 0, 10)
    server.kubectl("patch", "ep", "kubernetes", "--type=merge", "-p",
                   '{"subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]}')
    assert wait_until(lambda: server.json("get", "ep", "kubernetes")["subsets"] ==
                      ep["subsets"], 10)
    uid = svc["metadata"]["uid"]
    server.kubectl("delete", "svc", "kubernetes")
    assert wait_until(lambda: server.kubectl("get", "svc", "kubernetes", "-o",
                                             "jsonpath={.metadata.uid}", check=False)
                      .stdout not in ("", uid), 10)
    assert server.json("get", "svc", "kubernetes")["spec"]["clusterIP"] == "10.96.0.1"
    server.kubectl("patch", "svc", "kubernetes", "--type=merge", "-p",
                   '{"spec": {"ports": [{"name": "web", "port": 80}]}}')
    assert wait_until(lambda: server.json("get", "svc", "kubernetes")["spec"]["ports"][0]
                      ["port"] == 443, 10)
    # the address is the kubernetes Service's: a user's Service cannot take it
    p = apply(server, service("mine", cluster_ip="10.96.0.1", ports=[{"port": 80}]),
              check=False)
    assert p.returncode != 0 and "provided IP is already allocated" in p.stderr, p.stderr
    # a restart on another port follows it; the Service is the same one
    uid = server.json("get", "svc", "kubernetes")["metadata"]["uid"]
    server.stop()
    server.start()
    svc = server.json("get", "svc", "kubernetes")
    assert svc["metadata"]["uid"] == uid
    port = int(server.url.rsplit(":", 1)[1])
    assert svc["spec"]["ports"][0]["targetPort"] == port
    assert server.json("get", "ep", "kubernetes")["subsets"][0]["ports"][0]["port"] == port


def test_service_cidr_option(tmp_path):
    s = Server(tmp_path / "data", ["--gpus", "0", "--service-cidr", "10.123.0.0/24"]).start()
    try:
        apply(s, service("small", ports=[{"port": 80}]))
        ip = s.json("get", "svc", "small")["spec"]["clusterIP"]
        assert ip.startswith("10.123.0.") and ip not in ("10.123.0.0", "10.123.0.255"), ip
        assert s.json("get", "svc", "kubernetes")["spec"]["clusterIP"] == "10.123.0.1"
    finally:
        s.stop()
    s = Server(tmp_path / "data2", ["--gpus", "0", "--service-cidr", "10.0.0.0/8"])
    with pytest.raises(AssertionError):
        s.start()
    s.proc.wait(timeout=30)
    s.err.close()
    assert "service cidr 10.0.0.0/8: not an IPv4 range" in open(s.stderr_path).read()


def test_run_serves_the_names_of_its_jobs(run_trainyard, manifest, tmp_path, marker):
    """`trainyard run --cluster-dns`: a job's pod finds its own headless Service's name (the
    operator's <job>-master-0) at its own address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = tmp_path / "probe.py"
    probe.write_text(f'''import os, socket, struct, sys, time
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_cluster_dns import ask_udp, values
want = os.environ["POD_IP"]
for _ in range(200):
    got = values(ask_udp(("127.0.0.1", {port}), "dnsjob-master-0.default.svc.cluster.local", 1))
    if got == [want]:
        sys.exit(0)
    time.sleep(0.05)
print("answers:", got, "want", want)
sys.exit(1)
''')
    job = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
           "metadata": {"name": "dnsjob"},
           "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {"spec": {
               "containers": [{"name": "pytorch", "image": "x",
                               "command": ["/usr/bin/python3", str(probe)],
                               "env": [{"name": "TY_MARKER", "value": marker}],
                               "ports": [{"name": "pytorchjob-port",
                                          "containerPort": 23456}]}]}}}}}}
    # --no-pod-network: the probe reaches the host's 127.0.0.1 (a pod network has its own).
    r = run_trainyard("--gpus", "0", "--no-pod-network", "--cluster-dns", f"127.0.0.1:{port}",
                      manifest(json.dumps(job)))
    assert r.rc == 0, (r.out, r.err)
    assert f"cluster DNS on 127.0.0.1:{port}" in r.err
