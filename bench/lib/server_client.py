"""Clients for bench/server.sh: a keep-alive loader of PyTorchJobs and a create->watch latency probe.

Talks plain HTTP/1.1 to the API server on loopback (http.client keeps the connection open).
  load URL N            create N suspended PyTorchJobs bench-00000.. (shape of
                        examples/fashion-mnist/pytorchjob.yaml), label shard=s<i % 100>
  restart URL N ARGV..  exec ARGV, time exec -> first 200 from URL/version (polled every
                        0.2 ms); repeat N times, print the median (ARGV gets SIGTERM)
  fsync DIR N [GAP]     baseline for watchlat: write+fsync of 2.5 KB in DIR (GAP ms apart),
                        p50/p99
  body jobs|events      print the JSON watch_probe.c POSTs: the job (or Event) watchlat creates,
                        with @NAME@ for its name
  watchlat URL N [GAP] [events]
                        open a watch on pytorchjobs, create N more one by one (GAP ms apart), time
                        create-sent -> ADDED-event-received for each; print p50/p90/p99. With
                        "events": the same with 300-byte Events, which no controller acts on
                        and which take the API server a fraction of a job's work: the disk's
                        and the machine's share of the figure, measured the same way
"""
import copy
import http.client
import json
import os
import socket
import sys
import time
import urllib.parse

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs"
EVENTS_PATH = "/api/v1/namespaces/default/events"


def template():
    with open(os.path.join(REPO, "examples/fashion-mnist/pytorchjob.yaml")) as f:
        job = yaml.safe_load(f)
    job["spec"]["runPolicy"]["suspend"] = True
    return job


def conn(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def create(c, job):
    body = json.dumps(job).encode()
    c.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 201:
        sys.exit(f"create {job['metadata']['name']}: HTTP {r.status}: {data[:300]!r}")


def named(tmpl, prefix, i):
    job = copy.deepcopy(tmpl)
    job["metadata"]["name"] = f"{prefix}-{i:05d}"
    job["metadata"]["labels"]["shard"] = f"s{i % 100}"
    return job


def load(url, n):
    tmpl = template()
    c = conn(url)
    t0 = time.monotonic()
    for i in range(n):
        create(c, named(tmpl, "bench", i))
    dt = time.monotonic() - t0
    print(f"created {n} PyTorchJobs in {dt:.1f} s ({n / dt:.0f}/s, one keep-alive connection)")


def event_template():
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "probe", "labels": {}},
            "involvedObject": {"kind": "Pod", "name": "probe", "namespace": "default"},
            "reason": "Probe", "message": "a watch latency probe", "type": "Normal"}


def watchlat(url, n, gap_ms=0, events=False):
    tmpl = event_template() if events else template()
    PATH = EVENTS_PATH if events else globals()["PATH"]
    u = urllib.parse.urlsplit(url)
    w = socket.create_connection((u.hostname, u.port))
    w.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # resourceVersion omitted would replay the 10,000 existing objects as ADDED; ask for
    # "now" by listing with limit=1 first and watching from its resourceVersion.
    c = conn(url)
    c.request("GET", PATH + "?limit=1")
    r = c.getresponse()
    rv = json.loads(r.read())["metadata"]["resourceVersion"]
    w.sendall(f"GET {PATH}?watch=1&resourceVersion={rv} HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n"
              .encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += w.recv(65536)
    head, buf = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit(f"watch: {head[:200]!r}")

    def next_event():
        # Events are one JSON object per line; with chunked encoding the chunk-size lines
        # are hex digits alone on a line, skipped here.
        nonlocal buf
        while True:
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.strip()
                if line.startswith(b"{"):
                    return json.loads(line)
            d = w.recv(1 << 20)
            if not d:
                sys.exit("watch: connection closed")
            buf += d

    lat = []
    for i in range(n):
        job = named(tmpl, f"watch{os.getpid()}", i)
        body = json.dumps(job).encode()
        t0 = time.perf_counter()
        c.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
        while True:
            ev = next_event()
            if ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == job["metadata"]["name"]:
                break
        t1 = time.perf_counter()
        r = c.getresponse()
        r.read()
        if r.status != 201:
            sys.exit(f"create: HTTP {r.status}")
        lat.append((t1 - t0) * 1e3)
        if gap_ms:
            time.sleep(gap_ms / 1e3)
    how = f"{gap_ms} ms apart" if gap_ms else "back to back"
    what = "Event creates" if events else "creates"
    print(f"create -> watch event, {n} {what} one by one, {how}: {pcts(lat)}  max {max(lat):.2f} ms")


def pcts(lat):
    lat = sorted(lat)
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
    return f"p50 {pct(50):.2f} ms  p99 {pct(99):.2f} ms"


def restart(url, n, argv):
    import signal
    import subprocess
    u = urllib.parse.urlsplit(url)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = t0 + 30
            while True:
                if p.poll() is not None:
                    sys.exit(f"restart: server exited {p.returncode}")
                if time.perf_counter() > deadline:
                    sys.exit("restart: no answer in 30 s")
                try:
                    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
                    c.request("GET", "/version")
                    ok = c.getresponse().status == 200
                    c.close()
                    if ok:
                        break
                except OSError:
                    pass
                time.sleep(0.0002)
            times.append((time.perf_counter() - t0) * 1e3)
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        finally:
            # never leave a server behind (an error, a timeout, ^C)
            if p.poll() is None:
                p.kill()
                p.wait()
    times.sort()
    print(f"exec -> /version answered: median {times[len(times) // 2]:.0f} ms "
          f"(min {times[0]:.0f}, max {times[-1]:.0f}, {n} starts)")


def fsync(d, n, gap_ms=0):
    lat = []
    path = os.path.join(d, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    blob = b"x" * 2500
    for _ in range(n):
        t0 = time.perf_counter()
        os.write(fd, blob)
        os.fsync(fd)
        lat.append((time.perf_counter() - t0) * 1e3)
        if gap_ms:
            time.sleep(gap_ms / 1e3)
    os.close(fd)
    os.unlink(path)
    how = f", {gap_ms} ms apart" if gap_ms else ""
    print(f"write+fsync of 2.5 KB, {n} times{how}: {pcts(lat)}")


def body(what):
    obj = event_template() if what == "events" else named(template(), "", 0)
    obj["metadata"]["name"] = "@NAME@"
    print(json.dumps(obj, separators=(",", ":")))


if __name__ == "__main__":
    if sys.argv[1] == "body":
        body(sys.argv[2])
        sys.exit(0)
    cmd, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if cmd == "restart":
        restart(url, n, sys.argv[4:])
    elif cmd == "watchlat":
        watchlat(url, n, int(sys.argv[4]) if len(sys.argv) > 4 else 0,
                 len(sys.argv) > 5 and sys.argv[5] == "events")
    elif cmd == "fsync":
        fsync(url, n, int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    else:
        {"load": load, "watchlat": watchlat, "fsync": fsync}[cmd](url, n)
