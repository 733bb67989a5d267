"""Container probes as the kubelet runs them (docs/serving.md, "Probes"): readiness gates a pod's
Ready condition and the READY column, liveness restarts a container with the kubelet's events,
startup holds the other two back, with httpGet, tcpSocket and exec checks. Run against
`trainyard server` through kubectl, with the pod network (pods on their own addresses) and
without it (each pod on a loopback address), with periodSeconds 1 to stay quick."""
import json
import os
import random
import textwrap
import time

import pytest

from conftest import netns_refused, wait_until
from jobs import pytorchjob
from server_fixture import Server

PY = "/usr/bin/python3"
# Without a pod network, servers of other tests running beside these take loopback addresses
# from the same pool: ports of their own keep them apart.
PORT = random.randrange(20000, 30000)

# Serves GET on the port given while the file given exists (a readiness switch the test
# flips), 503 otherwise; /healthz always answers 200.
SERVER = """
import http.server, os, sys
port, flag = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/healthz" or os.path.exists(flag)
        seen = self.headers.get("X-Probe", "")
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(b"ok " + seen.encode())
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((os.environ["POD_IP"], port), H).serve_forever()
"""


@pytest.fixture(params=["pod-network", "loopback"])
def server(request, tmp_path, marker, monkeypatch):
    if request.param == "pod-network" and netns_refused():
        pytest.skip(netns_refused())
    monkeypatch.setenv("TRAINYARD_RESTART_BACKOFF_MS", "200")
    args = ["--no-pod-network"] if request.param == "loopback" else []
    s = Server(tmp_path / "data", args).start()
    yield s
    s.stop()
    s.reap()


def pod(name, marker, command, probes, restart="Always", ports=None):
    c = {"name": "c", "image": "busybox", "command": command,
         "env": [{"name": "TY_MARKER", "value": marker}], **probes}
    if ports:
        c["ports"] = ports
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                     "containers": [c]}}


def apply(server, obj):
    server.kubectl("apply", "-f", "-", input=json.dumps(obj))


def get_pod(server, name):
    return server.json("get", "pod", name)


def cond(p, kind):
    for c in p.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return {}


def ready_column(server, name):
    out = server.kubectl("get", "pod", name, "--no-headers").stdout.split()
    return out[1] if len(out) > 1 else ""


def events(server, name):
    return server.json("get", "events", "--field-selector",
                       f"involvedObject.name={name}")["items"]


def cstatus(p):
    return (p.get("status", {}).get("containerStatuses") or [{}])[0]


def test_http_readiness_gates_ready(server, marker, tmp_path):
    flag = tmp_path / "ready"
    probe = {"readinessProbe": {
        "httpGet": {"path": "/ready", "port": "web",
                    "httpHeaders": [{"name": "X-Probe", "value": "yes"}]},
        "periodSeconds": 1, "failureThreshold": 1}}
    apply(server, pod("web", marker, [PY, "-c", textwrap.dedent(SERVER), str(PORT), str(flag)],
                      probe, ports=[{"name": "web", "containerPort": PORT}]))
    assert wait_until(lambda: cstatus(get_pod(server, "web")).get("started"), 20)
    # running, but its readiness probe fails (503): not ready
    time.sleep(2.5)
    p = get_pod(server, "web")
    assert p["status"]["phase"] == "Running"
    assert cstatus(p)["ready"] is False
    assert cond(p, "Ready")["status"] == "False"
    assert cond(p, "ContainersReady")["status"] == "False"
    assert cond(p, "Ready")["message"] == "containers with unready status: [c]"
    assert ready_column(server, "web") == "0/1"
    unhealthy = [e for e in events(server, "web") if e["reason"] == "Unhealthy"]
    assert {"Warning"} == {e["type"] for e in unhealthy}
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in \
        [e["message"] for e in unhealthy], unhealthy
    # the switch on: ready within a period or two, with the transition time of the change
    t_on = time.time()
    flag.write_text("")
    assert wait_until(lambda: cond(get_pod(server, "web"), "Ready").get("status") == "True", 10)
    p = get_pod(server, "web")
    assert cstatus(p)["ready"] is True
    assert cond(p, "ContainersReady")["status"] == "True"
    assert cond(p, "Initialized")["status"] == "True"
    assert cond(p, "PodScheduled")["status"] == "True"
    t = time.mktime(time.strptime(cond(p, "Ready")["lastTransitionTime"], "%Y-%m-%dT%H:%M:%SZ"))
    assert t >= int(t_on) - time.timezone - 1
    assert ready_column(server, "web") == "1/1"
    # and off again: one failure (failureThreshold 1) makes it unready, without a restart
    flag.unlink()
    assert wait_until(lambda: cond(get_pod(server, "web"), "Ready").get("status") == "False", 10)
    assert cstatus(get_pod(server, "web"))["restartCount"] == 0
    server.kubectl("delete", "pod", "web", "--wait=true", timeout=60)


def test_tcp_readiness(server, marker):
    # listens only after 2 s: not ready until then
    script = ("import os, socket, time; time.sleep(2); s = socket.socket(); "
              f"s.bind((os.environ['POD_IP'], {PORT + 1})); s.listen(4); time.sleep(600)")
    apply(server, pod("tcp", marker, [PY, "-c", script],
                      {"readinessProbe": {"tcpSocket": {"port": PORT + 1}, "periodSeconds": 1}}))
    assert wait_until(lambda: cstatus(get_pod(server, "tcp")).get("started"), 20)
    assert cstatus(get_pod(server, "tcp"))["ready"] is False
    assert wait_until(lambda: cstatus(get_pod(server, "tcp")).get("ready"), 15)
    ev = [e["message"] for e in events(server, "tcp") if e["reason"] == "Unhealthy"]
    assert ev and ev[0].startswith("Readiness probe failed: dial tcp ") and \
        ev[0].endswith(f":{PORT + 1}: connect: connection refused"), ev
    server.kubectl("delete", "pod", "tcp", "--wait=true", timeout=60)


def test_exec_liveness_restarts_the_container(server, marker, tmp_path):
    # the probe runs in the container's context: its env (ALIVE_FILE) and working directory
    alive = tmp_path / "alive"
    alive.write_text("")
    probes = {"livenessProbe": {
        "exec": {"command": ["/bin/sh", "-c",
                             "test -e \"$ALIVE_FILE\" && test \"$(pwd)\" = /tmp || "
                             "{ echo gone: $ALIVE_FILE; exit 1; }"]},
        "periodSeconds": 1, "failureThreshold": 2}}
    p = pod("live", marker, [PY, "-c", "import time; time.sleep(600)"], probes)
    p["spec"]["containers"][0]["env"].append({"name": "ALIVE_FILE", "value": str(alive)})
    p["spec"]["containers"][0]["workingDir"] = "/tmp"
    apply(server, p)
    assert wait_until(lambda: cstatus(get_pod(server, "live")).get("started"), 20)
    time.sleep(3)
    assert cstatus(get_pod(server, "live"))["restartCount"] == 0  # healthy: left alone
    alive.unlink()
    assert wait_until(lambda: cstatus(get_pod(server, "live")).get("restartCount", 0) >= 1, 20)
    ev = events(server, "live")
    unhealthy = [e for e in ev if e["reason"] == "Unhealthy"]
    assert unhealthy and unhealthy[0]["message"] == \
        f"Liveness probe failed: gone: {alive}\n", unhealthy
    killing = [e for e in ev if e["reason"] == "Killing" and "liveness" in e["message"]]
    assert killing and killing[0]["message"] == \
        "Container c failed liveness probe, will be restarted"
    last = cstatus(get_pod(server, "live"))["lastState"]["terminated"]
    assert last["exitCode"] in (137, 143)
    # healthy again: the restarted container stays
    alive.write_text("")
    n = cstatus(get_pod(server, "live"))["restartCount"]
    time.sleep(3)
    assert cstatus(get_pod(server, "live"))["restartCount"] <= n + 1
    server.kubectl("delete", "pod", "live", "--wait=true", timeout=60)


def test_liveness_failure_under_never_fails_the_pod(server, marker):
    probes = {"livenessProbe": {"tcpSocket": {"port": 9}, "periodSeconds": 1,
                                "failureThreshold": 1}}
    apply(server, pod("never", marker, [PY, "-c", "import time; time.sleep(600)"], probes,
                      restart="Never"))
    assert wait_until(lambda: get_pod(server, "never")["status"].get("phase") == "Failed", 20)
    st = cstatus(get_pod(server, "never"))
    assert st["restartCount"] == 0
    assert st["state"]["terminated"]["exitCode"] in (137, 143)
    server.kubectl("delete", "pod", "never", "--wait=true", timeout=60)


def test_startup_probe_gates_liveness_and_readiness(server, marker, tmp_path):
    flag = tmp_path / "started"
    probes = {
        "startupProbe": {"exec": {"command": ["test", "-e", str(flag)]},
                         "periodSeconds": 1, "failureThreshold": 30},
        # would kill the container at once if it ran before the startup probe passed
        "livenessProbe": {"exec": {"command": ["test", "-e", str(flag)]},
                          "periodSeconds": 1, "failureThreshold": 1},
        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
    }
    apply(server, pod("slow", marker, [PY, "-c", "import time; time.sleep(600)"], probes))
    assert wait_until(lambda: cstatus(get_pod(server, "slow")).get("state", {}).get("running"),
                      20)
    time.sleep(3)
    st = cstatus(get_pod(server, "slow"))
    assert st["started"] is False and st["ready"] is False and st["restartCount"] == 0
    assert ready_column(server, "slow") == "0/1"
    flag.write_text("")
    assert wait_until(lambda: cstatus(get_pod(server, "slow")).get("ready"), 15)
    st = cstatus(get_pod(server, "slow"))
    assert st["started"] is True and st["restartCount"] == 0
    assert ready_column(server, "slow") == "1/1"
    server.kubectl("delete", "pod", "slow", "--wait=true", timeout=60)


def test_startup_probe_failure_restarts(server, marker):
    probes = {"startupProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                               "failureThreshold": 2}}
    apply(server, pod("nostart", marker, [PY, "-c", "import time; time.sleep(600)"], probes))
    assert wait_until(lambda: cstatus(get_pod(server, "nostart")).get("restartCount", 0) >= 1,
                      20)
    msgs = [e["message"] for e in events(server, "nostart")]
    assert "Container c failed startup probe, will be restarted" in msgs
    assert "Startup probe failed: " in msgs
    server.kubectl("delete", "pod", "nostart", "--wait=true", timeout=60)


def test_invalid_probes_are_refused_naming_the_field(server, marker):
    bad = pod("bad", marker, ["sleep", "1"], {
        "readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}},
        "livenessProbe": {"httpGet": {"port": "Not_A_Name"}, "successThreshold": 2,
                          "periodSeconds": -1},
        "startupProbe": {}})
    p = server.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert p.returncode != 0
    err = p.stderr
    assert 'spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more ' \
        'than 1 handler type' in err, err
    assert 'spec.containers[0].livenessProbe.httpGet.port: Invalid value: "Not_A_Name": ' \
        'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)' in err, err
    assert "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1" \
        in err, err
    assert "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be " \
        "greater than or equal to 0" in err, err
    assert "spec.containers[0].startupProbe: Required value: must specify a handler type" \
        in err, err
    assert server.kubectl("get", "pod", "bad", check=False).returncode != 0  # nothing made


def test_training_pods_get_probes(server, marker, tmp_path):
    """A PyTorchJob's replicas run their template's probes: the master is Ready only once its
    readiness check passes."""
    flag = tmp_path / "master-ready"
    job = json.loads(pytorchjob("probed", marker, master_cmd="sleep 600"))
    master = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    master["readinessProbe"] = {"exec": {"command": ["test", "-e", str(flag)]},
                                "periodSeconds": 1}
    server.kubectl("apply", "-f", "-", input=json.dumps(job))
    name = "probed-master-0"
    assert wait_until(lambda: cstatus(get_pod(server, name)).get("state", {}).get("running")
                      if server.kubectl("get", "pod", name, check=False).returncode == 0
                      else False, 30)
    time.sleep(2)
    assert cond(get_pod(server, name), "Ready")["status"] == "False"
    flag.write_text("")
    assert wait_until(lambda: cond(get_pod(server, name), "Ready").get("status") == "True", 15)
    server.kubectl("delete", "pytorchjob", "probed", "--wait=true", timeout=60)


def test_invalid_probe_in_a_job_template_fails_trainyard_run(run_trainyard, manifest, marker):
    job = json.loads(pytorchjob("badprobe", marker, master_cmd="true"))
    master = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    master["livenessProbe"] = {"tcpSocket": {"port": 70000}}
    r = run_trainyard(manifest(json.dumps(job, indent=2)))
    assert r.rc != 0, r
    assert "spec.pytorchReplicaSpecs[Master].template.spec.containers[0].livenessProbe." \
        "tcpSocket.port: Invalid value: 70000: must be between 1 and 65535, inclusive" \
        in r.err, r


@pytest.mark.skipif(os.geteuid() != 0, reason="volume mounts need root")
def test_exec_probe_sees_the_containers_volumes(server, marker, tmp_path):
    """The exec check runs in the container's mount namespace: a file the container wrote into
    its emptyDir, at a mountPath that is an empty directory on the host, is there for it."""
    mnt = f"/tmp/typrobe-{PORT}-{os.getpid()}"
    p = pod("vol", marker, ["/bin/sh", "-c", f"touch {mnt}/ready && sleep 600"],
            {"readinessProbe": {"exec": {"command": ["test", "-e", f"{mnt}/ready"]},
                                "periodSeconds": 1}})
    p["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    p["spec"]["containers"][0]["volumeMounts"] = [{"name": "scratch", "mountPath": mnt}]
    apply(server, p)
    assert wait_until(lambda: cstatus(get_pod(server, "vol")).get("ready"), 20)
    assert not os.path.exists(f"{mnt}/ready")  # not on the host
    server.kubectl("delete", "pod", "vol", "--wait=true", timeout=60)
    try:
        os.rmdir(mnt)
    except OSError:
        pass


def test_exec_probes_enter_a_container_from_an_image(tmp_path, marker):
    """A container from an image: the exec check runs inside it (`crun exec`), so it sees the
    container's own root filesystem; a failing liveness check restarts it."""
    import subprocess
    import images as I
    from conftest import trainyard_bin
    from test_images import _skip_reason
    if _skip_reason():
        pytest.skip(_skip_reason())
    data = tmp_path / "data"
    bb = I.busybox_layer()
    I.docker_archive(str(tmp_path / "bb.tar"), ["busybox:latest"], [bb], I.config([bb]))
    r = subprocess.run([trainyard_bin(), "image", "load", "--data-dir", str(data),
                        str(tmp_path / "bb.tar")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    os.environ["TRAINYARD_RESTART_BACKOFF_MS"] = "200"
    s = Server(data).start()
    try:
        p = pod("img", marker, ["/bin/sh", "-c", "touch /tmp/ready; sleep 300"], {
            # /tmp/ready exists only in the container's root filesystem
            "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ready"]},
                               "periodSeconds": 1},
            "livenessProbe": {"exec": {"command": ["test", "-e", "/tmp/alive"]},
                              "periodSeconds": 1, "failureThreshold": 3,
                              "initialDelaySeconds": 4}})
        apply(s, p)
        assert wait_until(lambda: cstatus(get_pod(s, "img")).get("ready"), 30), \
            get_pod(s, "img")["status"]
        assert cstatus(get_pod(s, "img"))["imageID"].startswith("docker.io/library/busybox@")
        # no /tmp/alive in the image: after the initial delay, three failures restart it
        assert wait_until(lambda: cstatus(get_pod(s, "img")).get("restartCount", 0) >= 1, 30)
        assert "Container c failed liveness probe, will be restarted" in \
            [e["message"] for e in events(s, "img")]
        s.kubectl("delete", "pod", "img", "--wait=true", timeout=60)
    finally:
        os.environ.pop("TRAINYARD_RESTART_BACKOFF_MS", None)
        s.stop()
        s.reap()
