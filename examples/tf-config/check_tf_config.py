#!/usr/bin/python3
"""Checks the TF_CONFIG a TFJob replica gets, the way TensorFlow would use it.

1. TF_CONFIG parses and has the expected roles with the expected counts (--chief/--worker/--ps/
   --evaluator), and task.type/task.index name one of its entries.
2. The task is who it thinks it is: its pod name (POD_NAME, else HOSTNAME, else the host name)
   ends in -<type>-<index> as Kubeflow names pods; when POD_IP is set, the task's own address in
   the cluster spec must resolve to it.
3. The addresses work: every task listens on its own address from the cluster spec, connects to
   every other task's address and exchanges names with it ("worker:1"), so a task that is
   wired to the wrong peer or cannot reach one fails. Each task exits once it has reached
   everyone and everyone has reached it.
Exit 0 on success, 1 with a message saying what is wrong otherwise.
"""
import argparse
import json
import os
import re
import socket
import sys
import threading
import time

ROLES = ("chief", "master", "worker", "ps", "evaluator")


def fail(msg):
    print(f"check_tf_config: FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def split_addr(addr):
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"address {addr!r} is not host:port")
    return host.strip("[]"), int(port)


def resolve(host):
    return socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]


def main():
    ap = argparse.ArgumentParser(description="check TF_CONFIG of a TFJob replica")
    for role, default in (("chief", 1), ("worker", 2), ("ps", 1), ("evaluator", 0)):
        ap.add_argument(f"--{role}", type=int, default=default, help=f"expected {role} count")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for the peers")
    ap.add_argument("--no-connect", action="store_true", help="skip the connection check")
    a = ap.parse_args()

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        fail("TF_CONFIG is not set")
    try:
        cfg = json.loads(raw)
        cluster, task = cfg["cluster"], cfg["task"]
        me_type, me_index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        fail(f"TF_CONFIG is not valid ({e}): {raw}")
    print(f"TF_CONFIG: {raw}", flush=True)

    unknown = sorted(set(cluster) - set(ROLES))
    if unknown:
        fail(f"cluster has unknown roles {unknown}")
    want = {"chief": a.chief, "worker": a.worker, "ps": a.ps, "evaluator": a.evaluator}
    got = {r: len(cluster.get(r, [])) for r in want}
    if "master" in cluster:  # the old name of chief
        got["chief"] += len(cluster["master"])
    if got != want:
        fail(f"cluster has {got}, expected {want}")
    # TensorFlow keeps the evaluator out of the cluster spec: it has a task but no entry.
    if me_type not in cluster and me_type != "evaluator":
        fail(f"task type {me_type!r} is not a role in the cluster")
    if me_type in cluster and not 0 <= me_index < len(cluster[me_type]):
        fail(f"task index {me_index} out of range for {len(cluster[me_type])} {me_type} tasks")
    me = f"{me_type}:{me_index}"

    ident, source = os.environ.get("POD_NAME"), "POD_NAME"
    if not ident:
        ident, source = os.environ.get("HOSTNAME") or socket.gethostname(), "HOSTNAME"
    m = re.search(r"-(chief|master|worker|ps|evaluator)-(\d+)$", ident)
    if not m:
        fail(f"cannot tell my role from {source}={ident!r} (expected a name ending in -<type>-<index>)")
    if (m.group(1), int(m.group(2))) != (me_type, me_index):
        fail(f"{source}={ident!r} says {m.group(1)}:{m.group(2)} but TF_CONFIG task is {me}")
    print(f"task {me} matches {source}={ident}", flush=True)
    for role in ROLES:
        if role in cluster:
            print(f"cluster {role}: {', '.join(cluster[role])}", flush=True)

    if me_type not in cluster or a.no_connect:
        print(f"ok: {me} (no connection check)", flush=True)
        return 0
    peers = {f"{r}:{i}": addr for r in cluster for i, addr in enumerate(cluster[r])}
    try:
        my_host, my_port = split_addr(peers[me])
        my_ip = resolve(my_host)
    except (ValueError, OSError) as e:
        fail(f"my address {peers[me]!r}: {e}")
    pod_ip = os.environ.get("POD_IP")
    if pod_ip and my_ip != pod_ip:
        fail(f"my cluster address {peers[me]} resolves to {my_ip}, but POD_IP is {pod_ip}")

    # Listen on my own address only (not 0.0.0.0): that is what the cluster spec promises.
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        lsock.bind((my_ip, my_port))
    except OSError as e:
        fail(f"cannot listen on my address {peers[me]} ({my_ip}:{my_port}): {e}")
    lsock.listen(16)
    lsock.settimeout(0.5)
    inbound, lock = set(), threading.Lock()
    deadline = time.monotonic() + a.timeout

    def serve():
        while time.monotonic() < deadline:
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            with c:
                c.settimeout(5)
                try:
                    who = c.makefile("r").readline().strip()
                    c.sendall(f"{me}\n".encode())
                except OSError:
                    continue
            if who in peers and who != me:
                with lock:
                    inbound.add(who)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    for peer, addr in sorted(peers.items()):
        if peer == me:
            continue
        host, port = split_addr(addr)
        err = None
        while True:
            try:
                with socket.create_connection((host, port), timeout=5, source_address=(my_ip, 0)) as c:
                    c.sendall(f"{me}\n".encode())
                    c.settimeout(5)
                    answer = c.makefile("r").readline().strip()
                if answer != peer:
                    fail(f"{addr} should be {peer} but answered {answer or 'nothing'!r}")
                print(f"reached {peer} at {addr}", flush=True)
                break
            except OSError as e:
                err = e
            if time.monotonic() > deadline:
                fail(f"cannot reach {peer} at {addr} within {a.timeout:g}s: {err}")
            time.sleep(0.2)
    others = set(peers) - {me}
    while time.monotonic() < deadline:
        with lock:
            if inbound >= others:
                break
        time.sleep(0.1)
    with lock:
        missing = sorted(others - inbound)
    if missing:
        fail(f"not reached by {', '.join(missing)} within {a.timeout:g}s")
    print(f"ok: {me} reached all {len(others)} peers and was reached by all of them", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
