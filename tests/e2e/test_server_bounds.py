"""Bad input is bounded as Kubernetes bounds it: object and annotation sizes, replicas no node
could hold, YAML alias bombs, integers past int64 seconds, DeleteOptions preconditions,
unconditional updates of custom resources, malformed query parameters. Through the real
binary (`trainyard server` and `trainyard run`); the ASan build aborts on any overflow."""
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import kill_all, wait_until
from jobs import pytorchjob
from server_fixture import Server

JOBS = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs"
INT64_MAX = 2**63 - 1

# 9 levels of 9 aliases: 9^9 nodes if expanded, 1.2 KB written.
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    for i in range(8))


@pytest.fixture
def server(tmp_path, marker):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()
    s.reap()  # a stopped server leaves its pods running for its next start
    kill_all(marker)


def request(server, method, path, body=None, content_type="application/json", timeout=20):
    """(status, decoded JSON body or text)."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def rss_kib(server):
    for line in open(f"/proc/{server.proc.pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def small_job(name, marker, cmd="true", **kw):
    return json.loads(pytorchjob(name, marker, master_cmd=cmd, **kw))


def conditions(server, name):
    st, body = request(server, "GET", f"{JOBS}/{name}")
    assert st == 200, body
    return {c["type"]: c for c in body.get("status", {}).get("conditions", [])
            if c["status"] == "True"}


def test_replicas_no_node_can_hold_fail_at_once_with_bounded_memory(server, marker):
    job = small_job("huge", marker, cmd="sleep 30")
    job["spec"]["pytorchReplicaSpecs"]["Worker"] = json.loads(json.dumps(
        job["spec"]["pytorchReplicaSpecs"]["Master"]))
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = 1000000
    before = rss_kib(server)
    st, body = request(server, "POST", JOBS, job)
    assert st == 201, body
    assert wait_until(lambda: "Failed" in conditions(server, "huge"), 10), \
        conditions(server, "huge")
    msg = conditions(server, "huge")["Failed"]["message"]
    assert "its 1000001 pods are more than the 1 node can hold (110 pods)" in msg, msg
    assert request(server, "GET", "/api/v1/namespaces/default/pods")[1]["items"] == []
    # Building a million pod specs took gigabytes; nothing per pod is built now.
    assert rss_kib(server) - before < 50 * 1024, (before, rss_kib(server))


def test_a_node_runs_no_more_pods_than_it_declares(tmp_path, marker):
    s = Server(tmp_path / "data", ["--nodes", "2x{cpu: 8, pods: 2}"]).start()
    try:
        job = small_job("five", marker, cmd="sleep 30", workers=4, worker_cmd="sleep 30")
        st, body = request(s, "POST", JOBS, job)
        assert st == 201, body
        assert wait_until(lambda: "Failed" in conditions(s, "five"), 10)
        assert "its 5 pods are more than the 2 nodes can hold (4 pods)" in \
            conditions(s, "five")["Failed"]["message"]
    finally:
        s.stop()
        s.reap()
        kill_all(marker)


def test_annotations_labels_and_object_size(server, marker):
    job = small_job("annotated", marker)
    job["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    st, body = request(server, "POST", JOBS, job)
    assert st == 422, body
    assert "metadata.annotations: Too long: may not be more than 262144 bytes" in body["message"]
    assert body["details"]["causes"][0]["field"] == "metadata.annotations"
    job["metadata"]["annotations"] = {"big": "x" * (256 * 1024 - 3)}
    assert request(server, "POST", JOBS, job)[0] == 201

    # Patches cannot grow them past the limit either, on any kind (here a built-in one).
    ns = "/api/v1/namespaces/default"
    patch = lambda k: request(server, "PATCH", ns, {"metadata": {"annotations": {
        k: "y" * (200 * 1024)}}}, "application/merge-patch+json")
    assert patch("a")[0] == 200
    st, body = patch("b")
    assert st == 422 and "may not be more than 262144 bytes" in body["message"], body
    assert "b" not in request(server, "GET", ns)[1]["metadata"]["annotations"]
    st, body = request(server, "PATCH", ns, {"metadata": {"labels": {"bad key!": "v"}}},
                       "application/merge-patch+json")
    assert st == 422 and body["details"]["causes"][0]["field"] == "metadata.labels", body
    st, body = request(server, "PATCH", ns, {"metadata": {"labels": {"k": "v" * 64}}},
                       "application/merge-patch+json")
    assert st == 422 and "must be no more than 63 characters" in body["message"], body

    # An object over etcd's 1.5 MiB is refused as the API server refuses it, whole.
    big = small_job("big", marker)
    big["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["env"] \
        .append({"name": "BIG", "value": "z" * (2 * 1024 * 1024)})
    st, body = request(server, "POST", JOBS, big)
    assert st == 413 and body["reason"] == "RequestEntityTooLarge", body
    assert "request is too large" in body["message"]
    assert request(server, "GET", f"{JOBS}/big")[0] == 404


def test_yaml_alias_bomb_is_refused_at_once_and_stalls_nobody(server):
    assert len(BOMB) < 1400
    results = {}

    def bomb():
        t0 = time.monotonic()
        results["bomb"] = request(server, "POST", JOBS, BOMB.encode(), "application/yaml")
        results["bomb_s"] = time.monotonic() - t0

    t = threading.Thread(target=bomb)
    t.start()
    t0 = time.monotonic()
    for _ in range(20):
        assert request(server, "GET", "/api/v1/namespaces")[0] == 200
    others_s = time.monotonic() - t0
    t.join(30)
    st, body = results["bomb"]
    assert st == 400 and "aliases expand to more than 10000 nodes" in body["message"], body
    # Milliseconds of work (seconds before); generous for the sanitizer build under load.
    assert results["bomb_s"] < 1.0, results["bomb_s"]
    assert others_s < 2.0, others_s


def test_int64_seconds_do_not_overflow(server, marker):
    """Each value would overflow int64 nanoseconds or milliseconds; the sanitizer build aborts
    on a signed overflow, so the server surviving is the proof."""
    job = small_job("deadline", marker, cmd="echo hi; sleep 30", grace=INT64_MAX,
                    run_policy={"activeDeadlineSeconds": INT64_MAX,
                                "ttlSecondsAfterFinished": 2**31 - 1})
    st, body = request(server, "POST", JOBS, job)
    assert st == 201, body
    pod = "/api/v1/namespaces/default/pods/deadline-master-0"
    running = lambda: request(server, "GET", pod)[1].get("status", {}).get("phase") == "Running"
    assert wait_until(running, 30)
    assert wait_until(lambda: "hi" in str(request(server, "GET", pod + "/log")[1]), 10)
    for q in (f"sinceSeconds={INT64_MAX}", f"limitBytes={INT64_MAX}", f"tailLines={INT64_MAX}"):
        st, text = request(server, "GET", f"{pod}/log?{q}")
        assert st == 200 and text == "hi\n", (q, st, text)
    req = urllib.request.Request(f"{server.url}{JOBS}?watch=1&timeoutSeconds={INT64_MAX}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200 and b'"ADDED"' in resp.readline()
    # A negative timeout ends the watch at once, as the API server's timer does.
    req = urllib.request.Request(f"{server.url}{JOBS}?watch=1&timeoutSeconds=-1")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.read().count(b'"ADDED"') == 1
    st, body = request(server, "DELETE", f"{pod}?gracePeriodSeconds={INT64_MAX}")
    assert st == 200, body
    assert body["metadata"]["deletionGracePeriodSeconds"] == INT64_MAX
    # Then a delete with no grace ends it now.
    st, body = request(server, "DELETE", f"{pod}?gracePeriodSeconds=0")
    assert st == 200, body
    assert wait_until(lambda: request(server, "GET", pod)[0] == 404 or
                      request(server, "GET", pod)[1]["metadata"]["uid"] != body["metadata"]["uid"],
                      30)


def test_delete_preconditions(server, marker):
    st, created = request(server, "POST", JOBS, small_job("pre", marker, cmd="sleep 30"))
    assert st == 201
    uid, rv = created["metadata"]["uid"], created["metadata"]["resourceVersion"]
    st, body = request(server, "DELETE", f"{JOBS}/pre", {"preconditions": {"uid": "wrong"}})
    assert st == 409 and body["reason"] == "Conflict", body
    assert body["message"] == ('Operation cannot be fulfilled on pytorchjobs.kubeflow.org "pre": '
                               f"Precondition failed: UID in precondition: wrong, UID in object "
                               f"meta: {uid}")
    st, body = request(server, "DELETE", f"{JOBS}/pre",
                       {"preconditions": {"resourceVersion": "1"}})
    assert st == 409 and "Precondition failed: ResourceVersion in precondition: 1" in \
        body["message"], body
    # Dry runs check them too; a collection applies them to each item.
    st, body = request(server, "DELETE", f"{JOBS}/pre?dryRun=All",
                       {"preconditions": {"uid": "wrong"}})
    assert st == 409, body
    st, body = request(server, "DELETE", JOBS, {"preconditions": {"uid": "wrong"}})
    assert st == 409 and "UID in precondition: wrong" in body["message"], body
    assert request(server, "GET", f"{JOBS}/pre")[0] == 200
    st, body = request(server, "DELETE", f"{JOBS}/pre", {"preconditions": {"uid": 7}})
    assert st == 400 and body["reason"] == "BadRequest", body
    current_rv = request(server, "GET", f"{JOBS}/pre")[1]["metadata"]["resourceVersion"]
    st, body = request(server, "DELETE", f"{JOBS}/pre",
                       {"preconditions": {"uid": uid, "resourceVersion": current_rv}})
    assert st == 200, body
    assert wait_until(lambda: request(server, "GET", f"{JOBS}/pre")[0] == 404, 20)
    assert rv


def test_put_of_a_custom_resource_needs_its_resource_version(server, marker):
    st, created = request(server, "POST", JOBS, small_job("put", marker, cmd="sleep 30"))
    assert st == 201
    for rv in (None, ""):
        obj = json.loads(json.dumps(created))
        obj["metadata"]["labels"] = {"changed": "yes"}
        if rv is None:
            del obj["metadata"]["resourceVersion"]
        else:
            obj["metadata"]["resourceVersion"] = rv
        st, body = request(server, "PUT", f"{JOBS}/put", obj)
        assert st == 422, body
        assert body["message"] == ('PyTorchJob.kubeflow.org "put" is invalid: '
                                   "metadata.resourceVersion: Invalid value: 0x0: must be "
                                   "specified for an update")
    assert "changed" not in request(server, "GET", f"{JOBS}/put")[1]["metadata"].get("labels", {})
    # Built-in kinds allow an unconditional update (the API server's strategies do).
    ns = request(server, "GET", "/api/v1/namespaces/default")[1]
    del ns["metadata"]["resourceVersion"]
    ns["metadata"].setdefault("labels", {})["changed"] = "yes"
    st, body = request(server, "PUT", "/api/v1/namespaces/default", ns)
    assert st == 200 and body["metadata"]["labels"]["changed"] == "yes", body


@pytest.mark.parametrize("path, message", [
    (f"{JOBS}?limit=abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
    (f"{JOBS}?limit=99999999999999999999",
     'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
    (f"{JOBS}?timeoutSeconds=abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
    (f"{JOBS}?watch=true&timeoutSeconds=1.5", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
    (f"{JOBS}?resourceVersion=xyz", 'invalid resource version: resourceVersion: Invalid value: '
                                    '"xyz": strconv.ParseUint: parsing "xyz": invalid syntax'),
    (f"{JOBS}/x?resourceVersion=-1", "invalid resource version"),
    (f"{JOBS}?watch=1&resourceVersion=xyz", "invalid resource version"),
    (f"{JOBS}?continue=zz", "continue key is not valid"),
    (f"{JOBS}?continue=612f62&resourceVersion=5",
     "specifying resource version is not allowed when using continue"),
])
def test_malformed_query_parameters_are_400(server, path, message):
    st, body = request(server, "GET", path)
    assert st == 400 and body["reason"] == "BadRequest", body
    assert message in body["message"], body


def test_malformed_delete_and_log_parameters(server, marker):
    st, body = request(server, "DELETE", f"{JOBS}/x?gracePeriodSeconds=soon")
    assert st == 400 and 'parsing "soon": invalid syntax' in body["message"], body
    st, body = request(server, "DELETE", JOBS + "?gracePeriodSeconds=1e3")
    assert st == 400, body
    st, body = request(server, "DELETE", f"{JOBS}/x", {"gracePeriodSeconds": "5"})
    assert st == 400 and body["reason"] == "BadRequest", body

    assert request(server, "POST", JOBS, small_job("logs", marker, cmd="echo hi; sleep 30"))[0] \
        == 201
    pod = "/api/v1/namespaces/default/pods/logs-master-0"
    running = lambda: request(server, "GET", pod)[1].get("status", {}).get("phase") == "Running"
    assert wait_until(running, 30)
    for q, field, msg in (("tailLines=-1", "tailLines", "must be greater than or equal to 0"),
                          ("limitBytes=0", "limitBytes", "must be greater than 0"),
                          ("sinceSeconds=0", "sinceSeconds", "must be greater than 0")):
        st, body = request(server, "GET", f"{pod}/log?{q}")
        assert st == 422 and body["reason"] == "Invalid", (q, body)
        assert body["message"].startswith('PodLogOptions "logs-master-0" is invalid: '), body
        assert body["details"]["causes"][0]["field"] == field and msg in body["message"], body
    st, body = request(server, "GET", f"{pod}/log?sinceSeconds=1&sinceTime=2026-01-01T00:00:00Z")
    assert st == 422 and "at most one of `sinceTime` or `sinceSeconds`" in body["message"], body
    for q in ("tailLines=x", "limitBytes=1k", "sinceSeconds=", "sinceTime=yesterday"):
        st, body = request(server, "GET", f"{pod}/log?{q}")
        assert st == 400, (q, body)  # an empty value is ParseInt(""): a 400, as in kube


def test_watch_parameter_is_a_bool_as_the_api_server_reads_it(server):
    """The API server reads a boolean query parameter as false only when it is "0" or
    "false" (any case), so `watch=maybe` is a watch there, and here."""
    req = urllib.request.Request(f"{server.url}/api/v1/namespaces?watch=maybe&timeoutSeconds=1")
    with urllib.request.urlopen(req, timeout=10) as resp:
        events = [json.loads(line) for line in resp.read().splitlines()]
    assert events and {e["type"] for e in events} == {"ADDED"}, events
    st, body = request(server, "GET", "/api/v1/namespaces?watch=FALSE")
    assert st == 200 and body["kind"] == "NamespaceList", body


def test_run_manifest_limits_name_the_file_line_and_field(run_trainyard, manifest, tmp_path):
    flag = tmp_path / "ran"
    job = json.loads(pytorchjob("ann", "x", master_cmd=f"touch {flag}"))
    big = "x" * (256 * 1024)
    text = ("apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata:\n  name: ann\n"
            f"  annotations:\n    big: {big}\nspec: " + json.dumps(job["spec"]) + "\n")
    path = manifest(text, "ann.yaml")
    r = run_trainyard(path)
    assert r.rc == 2, r
    assert f"{path}:6:5: metadata.annotations: Too long: may not be more than 262144 bytes" \
        in r.err, r
    assert not flag.exists()

    path = manifest(BOMB, "bomb.yaml")
    t0 = time.monotonic()
    r = run_trainyard(path)
    assert r.rc == 2 and "aliases expand to more than 10000 nodes" in r.err, r
    assert f"{path}:" in r.err
    assert time.monotonic() - t0 < 5


def test_run_fails_a_job_no_node_can_hold_at_once(run_trainyard, manifest, marker):
    job = json.loads(pytorchjob("huge", marker, master_cmd="sleep 30", worker_cmd="sleep 30"))
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = 1000000
    t0 = time.monotonic()
    r = run_trainyard(manifest(json.dumps(job), "huge.json"))
    assert r.rc == 1, r
    assert "its 1000001 pods are more than the 1 node can hold (110 pods)" in r.out + r.err, r
    assert time.monotonic() - t0 < 10
