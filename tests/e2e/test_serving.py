"""KServe InferenceServices on `trainyard server` (docs/serving.md): the kinds and their
webhook's refusals, a ClusterServingRuntime's pod with the model at /mnt/models, the gateway
routing by Host and by path, scale to zero and a request held until a replica is ready, a
canary split counted request by request, promotion, and a revision that never becomes ready.
The model server is a small Python HTTP server (the Fashion-MNIST C server has its own test)."""
import json
import os
import socket
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from conftest import wait_until
from server_fixture import Server

MODEL_SERVER = textwrap.dedent("""
    import http.server, json, os, sys, threading, time
    name = sys.argv[1]
    lock, inflight = threading.Lock(), [0]
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def reply(self, code, obj):
            b = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)
        def do_GET(self):
            self.reply(200, {"name": name, "ready": True})
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                inflight[0] += 1
                seen = inflight[0]
            time.sleep(float(os.environ.get("SLEEP", "0")))
            with lock:
                inflight[0] -= 1
            try:
                open("/mnt/models/written", "w")
                writable = True
            except OSError:
                writable = False
            model = None
            if os.path.exists("/mnt/models/model.txt"):
                model = open("/mnt/models/model.txt").read().strip()
            self.reply(200, {"model_name": name, "rev": os.environ.get("REV", ""),
                             "model": model, "writable": writable, "path": self.path,
                             "concurrent": seen,
                             "body": body.decode()})
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer((os.environ["POD_IP"], int(os.environ["PORT"])), H).serve_forever()
""")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINYARD_SCALE_TO_ZERO_GRACE_MS", "500")
    port = free_port()
    s = Server(tmp_path / "data", ["--no-pod-network", "--serving-listen", f"127.0.0.1:{port}"])
    s.start()
    s.gateway = f"http://127.0.0.1:{port}"
    (tmp_path / "model.py").write_text(MODEL_SERVER)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.txt").write_text("weights-v1\n")
    s.tmp = tmp_path
    yield s
    s.stop()
    s.reap()


def apply(server, obj):
    server.kubectl("apply", "-f", "-", input=json.dumps(obj))


def runtime(server):
    return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterServingRuntime",
            "metadata": {"name": "py-echo"},
            "spec": {"supportedModelFormats": [{"name": "echo", "autoSelect": True}],
                     "containers": [{"name": "kserve-container", "image": "busybox",
                                     "command": ["/usr/bin/python3", str(server.tmp / "model.py"),
                                                 "{{.Name}}"]}]}}


def isvc(server, name, annotations=None, **pred):
    p = {"model": {"modelFormat": {"name": "echo"},
                   "storageUri": "file://" + str(server.tmp / "models")}}
    p.update(pred)
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"predictor": p}}


def call(server, path, host=None, body=b"{}", timeout=30):
    req = urllib.request.Request(server.gateway + path, data=body, method="POST")
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def cond(obj, kind):
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return c
    return {}


def get(server, name):
    return server.json("get", "inferenceservice", name)


def ready(server, name):
    return cond(get(server, name), "Ready").get("status") == "True"


def pods_of(server, name):
    return server.json("get", "pods", "-l", f"serving.kserve.io/inferenceservice={name}")["items"]


def test_predict_through_the_gateway(server):
    apply(server, runtime(server))
    apply(server, isvc(server, "echo"))
    assert wait_until(lambda: ready(server, "echo"), 30), get(server, "echo")
    o = get(server, "echo")
    st = o["status"]
    assert st["url"] == "http://echo.default.example.com"
    for c in ("PredictorReady", "IngressReady", "Ready"):
        assert cond(o, c)["status"] == "True"
    pred = st["components"]["predictor"]
    assert pred["latestReadyRevision"] == pred["latestCreatedRevision"] == "echo-predictor-00001"
    assert pred["traffic"] == [{"revisionName": "echo-predictor-00001", "percent": 100,
                                "latestRevision": True}]
    assert o["spec"]["predictor"]["model"]["name"] == "kserve-container"  # KServe's default
    [pod] = pods_of(server, "echo")
    labels = pod["metadata"]["labels"]
    assert labels["component"] == "predictor"
    assert labels["serving.knative.dev/revision"] == "echo-predictor-00001"
    # By Host, by the v1 and v2 paths; the model read from /mnt/models, which is read-only.
    code, out = call(server, "/v2/models/echo/infer", host="echo.default.example.com",
                     body=b'{"inputs": []}')
    assert code == 200, out
    assert out["model_name"] == "echo" and out["model"] == "weights-v1"
    assert out["writable"] is False and out["body"] == '{"inputs": []}'
    assert call(server, "/v1/models/echo:predict")[1]["path"] == "/v1/models/echo:predict"
    assert call(server, "/v2/models/echo/infer")[0] == 200
    assert call(server, "/v2/models/nothing/infer")[0] == 404
    assert call(server, "/", host="nothing.default.example.com")[0] == 404
    # kubectl get prints KServe's columns
    out = server.kubectl("get", "isvc").stdout
    assert out.split("\n")[0].split() == ["NAME", "URL", "READY", "PREV", "LATEST",
                                          "PREVROLLEDOUTREVISION", "LATESTREADYREVISION", "AGE"]
    assert "http://echo.default.example.com" in out and "echo-predictor-00001" in out
    # Per-revision metrics on the server's /metrics
    m = server.kubectl("get", "--raw", "/metrics").stdout
    labels = 'namespace="default",inferenceservice="echo",revision="echo-predictor-00001"'
    assert f"trainyard_serving_requests_total{{{labels}}} 3\n" in m, m
    assert f'trainyard_serving_request_duration_seconds_bucket{{{labels},le="+Inf"}} 3\n' in m
    assert f"trainyard_serving_concurrency{{{labels}}} 0\n" in m
    assert f"trainyard_serving_replicas_ready{{{labels}}} 1\n" in m
    assert f"trainyard_serving_replicas_desired{{{labels}}} 1\n" in m


def test_scale_to_zero_and_a_held_request(server):
    apply(server, runtime(server))
    apply(server, isvc(server, "zero", {"autoscaling.knative.dev/window": "6s"}, minReplicas=0))
    assert wait_until(lambda: ready(server, "zero"), 30)
    # No traffic for a stable window and the grace period: no replica.
    assert wait_until(lambda: not pods_of(server, "zero"), 30)
    assert ready(server, "zero")  # Knative's Ready stays True at zero
    t0 = time.monotonic()
    code, out = call(server, "/v2/models/zero/infer", host="zero.default.example.com")
    assert code == 200, out
    assert out["model_name"] == "zero"
    assert time.monotonic() - t0 < 20
    assert len(pods_of(server, "zero")) == 1


def test_canary_split_and_promotion(server):
    apply(server, runtime(server))
    apply(server, isvc(server, "can"))
    assert wait_until(lambda: ready(server, "can"), 30)
    new = isvc(server, "can", canaryTrafficPercent=30)
    new["spec"]["predictor"]["model"]["env"] = [{"name": "REV", "value": "two"}]
    apply(server, new)

    def split():
        tr = get(server, "can")["status"]["components"]["predictor"]["traffic"]
        return sorted((t["revisionName"], t["percent"], t.get("tag")) for t in tr)
    assert wait_until(lambda: split() == [("can-predictor-00001", 70, "prev"),
                                          ("can-predictor-00002", 30, "latest")], 30), split()
    counts = {}
    for _ in range(100):
        code, out = call(server, "/v2/models/can/infer", host="can.default.example.com")
        assert code == 200, out
        counts[out["rev"]] = counts.get(out["rev"], 0) + 1
    assert counts == {"": 70, "two": 30}
    row = server.kubectl("get", "isvc", "can", "--no-headers").stdout.split()
    assert row[3:7] == ["70", "30", "can-predictor-00001", "can-predictor-00002"], row
    # Removing the field promotes: all traffic to the new revision, the old one's pods go.
    del new["spec"]["predictor"]["canaryTrafficPercent"]
    apply(server, new)
    assert wait_until(lambda: split() == [("can-predictor-00002", 100, None)], 30), split()
    pred = get(server, "can")["status"]["components"]["predictor"]
    assert pred["previousRolledoutRevision"] == "can-predictor-00001"
    assert pred["latestRolledoutRevision"] == "can-predictor-00002"
    assert wait_until(lambda: {p["metadata"]["labels"]["serving.knative.dev/revision"]
                               for p in pods_of(server, "can")} == {"can-predictor-00002"}, 30)
    assert call(server, "/v2/models/can/infer")[1]["rev"] == "two"


def test_a_revision_that_never_becomes_ready(server, monkeypatch):
    apply(server, runtime(server))
    apply(server, isvc(server, "bad"))
    assert wait_until(lambda: ready(server, "bad"), 30)
    broken = isvc(server, "bad", canaryTrafficPercent=50)
    broken["spec"]["predictor"]["model"]["command"] = ["/bin/sh", "-c", "exit 3"]
    apply(server, broken)

    def failed():
        return cond(get(server, "bad"), "PredictorReady").get("reason") == "RevisionFailed"
    assert wait_until(failed, 60), get(server, "bad")["status"]
    o = get(server, "bad")
    assert 'Revision "bad-predictor-00002" failed with message' in cond(o, "PredictorReady")["message"]
    pred = o["status"]["components"]["predictor"]
    assert pred["latestCreatedRevision"] == "bad-predictor-00002"
    assert pred["latestReadyRevision"] == "bad-predictor-00001"
    assert pred["traffic"] == [{"revisionName": "bad-predictor-00001", "percent": 100,
                                "latestRevision": False}]
    for _ in range(10):  # every request still served, by the old revision
        assert call(server, "/v2/models/bad/infer")[0] == 200


def test_refusals(server):
    bad = isvc(server, "refused", {"autoscaling.knative.dev/window": "1s"}, minReplicas=3,
               maxReplicas=2, containerConcurrency=-1)
    bad["spec"]["predictor"]["model"]["storageUri"] = "ftp://x/y"
    p = server.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert p.returncode != 0
    for msg in ("'MinReplicas' cannot be greater than MaxReplicas",
                "parallelism cannot be less than 0",
                "StorageUri [ftp://x/y] is not supported",
                "expected 6s <= 1s <= 1h0m0s: autoscaling.knative.dev/window",
                'admission webhook "inferenceservice.kserve-webhook-server.validator" denied'):
        assert msg in p.stderr, p.stderr
    both = isvc(server, "both", containers=[{"name": "c", "image": "x"}])
    p = server.kubectl("apply", "-f", "-", input=json.dumps(both), check=False)
    assert "exactly one of [Model, Containers] must be specified in PredictorSpec" in p.stderr
    typo = isvc(server, "typo")
    typo["spec"]["predictor"]["minReplica"] = 1
    p = server.kubectl("apply", "-f", "-", input=json.dumps(typo), check=False)
    assert 'unknown field "spec.predictor.minReplica"' in p.stderr, p.stderr
    # Nothing was stored.
    assert server.json("get", "isvc")["items"] == []


def test_fashion_mnist_c_server_agrees_with_the_trainer(server):
    """The example as docs/serving.md shows it: the trainer's checkpoint served by the C
    server through the ClusterServingRuntime; the predictions over the whole test set, sent
    through the gateway, give the accuracy the trainer printed."""
    import gzip
    import re
    import subprocess
    import yaml
    from conftest import REPO
    ck = server.tmp / "ck"
    p = subprocess.run([os.path.join(REPO, "build/examples/fashion-mnist"), "--epochs", "1",
                        "--hidden", "64", "--seed", "1", "--data-dir",
                        "/usr/share/datasets/fashion-mnist", "--checkpoint-dir", str(ck)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    acc = re.search(r"done epochs=1 accuracy=([0-9.]+)", p.stdout).group(1)
    server.kubectl("apply", "-f", os.path.join(REPO, "examples/fashion-mnist/servingruntime.yaml"))
    isv = yaml.safe_load(open(os.path.join(REPO, "examples/fashion-mnist/inferenceservice.yaml")))
    isv["spec"]["predictor"]["model"]["storageUri"] = "file://" + str(ck)
    apply(server, isv)
    assert wait_until(lambda: ready(server, "fashion-mnist"), 30), get(server, "fashion-mnist")
    body = open(os.path.join(REPO, "examples/fashion-mnist/infer-request.json"), "rb").read()
    code, out = call(server, "/v2/models/fashion-mnist/infer",
                     host="fashion-mnist.default.example.com", body=body)
    assert code == 200, out
    assert out["model_name"] == "fashion-mnist"
    assert out["outputs"][0]["shape"] == [1, 10]
    d = "/usr/share/datasets/fashion-mnist/"
    img = gzip.open(d + "t10k-images-idx3-ubyte.gz").read()[16:]
    lab = gzip.open(d + "t10k-labels-idx1-ubyte.gz").read()[8:]
    correct, batch = 0, 1000
    for s in range(0, 10000, batch):
        req = {"inputs": [{"name": "input-0", "shape": [batch, 784], "datatype": "UINT8",
                           "data": list(img[s * 784:(s + batch) * 784])}]}
        code, out = call(server, "/v2/models/fashion-mnist/infer",
                         body=json.dumps(req).encode())
        assert code == 200, out
        correct += sum(p == lab[s + i] for i, p in enumerate(out["outputs"][1]["data"]))
    assert "%.4f" % (correct / 10000) == acc
    # KServe's v1 protocol too
    code, out = call(server, "/v1/models/fashion-mnist:predict",
                     body=json.dumps({"instances": [list(img[:784])]}).encode())
    assert code == 200 and out["predictions"] == [lab[0]], out


def test_trainyard_run_serves_until_interrupted(tmp_path):
    """`trainyard run` of a runtime and an InferenceService serves through its own gateway
    until Ctrl-C, then stops its pods."""
    import signal
    import subprocess
    from conftest import REPO, assert_no_sanitizer_report, trainyard_bin
    (tmp_path / "model.py").write_text(MODEL_SERVER)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.txt").write_text("w\n")
    srv = type("S", (), {"tmp": tmp_path})()
    docs = [runtime(srv), isvc(srv, "runner")]
    (tmp_path / "serve.yaml").write_text("\n---\n".join(json.dumps(d) for d in docs))
    port = free_port()
    p = subprocess.Popen([trainyard_bin(), "run", "--no-pod-network", "--state-dir",
                          str(tmp_path / "state"), "--serving-listen", f"127.0.0.1:{port}",
                          str(tmp_path / "serve.yaml")], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        srv.gateway = f"http://127.0.0.1:{port}"

        def answered():
            try:
                return call(srv, "/v2/models/runner/infer", timeout=2)[0] == 200
            except OSError:
                return False
        assert wait_until(answered, 30)
        assert p.poll() is None  # no job to end it
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert "InferenceServices on http://127.0.0.1:%d" % port in err, err
        assert_no_sanitizer_report(err)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    # Its pod is gone with it.
    assert wait_until(lambda: subprocess.run(["pgrep", "-f", str(tmp_path / "model.py")],
                                             capture_output=True).returncode != 0, 10)


def test_model_from_a_claim(server):
    """storageUri pvc://claim/sub/dir: the claim's volume, at the sub path, read-only at
    /mnt/models."""
    apply(server, runtime(server))
    apply(server, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "models"},
                   "spec": {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Mi"}}}})

    def bound():
        return server.json("get", "pvc", "models").get("status", {}).get("phase") == "Bound"
    assert wait_until(bound, 30)
    pv = server.json("get", "pv", server.json("get", "pvc", "models")["spec"]["volumeName"])
    root = pv["spec"]["hostPath"]["path"]
    os.makedirs(os.path.join(root, "fashion", "v2"), exist_ok=True)
    with open(os.path.join(root, "fashion", "v2", "model.txt"), "w") as f:
        f.write("from-the-claim\n")
    o = isvc(server, "claimed")
    o["spec"]["predictor"]["model"]["storageUri"] = "pvc://models/fashion/v2"
    apply(server, o)
    assert wait_until(lambda: ready(server, "claimed"), 30), get(server, "claimed")
    code, out = call(server, "/v2/models/claimed/infer")
    assert code == 200, out
    assert out["model"] == "from-the-claim" and out["writable"] is False
    [pod] = pods_of(server, "claimed")
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["kserve-pvc-source"]["persistentVolumeClaim"] == {"claimName": "models",
                                                                  "readOnly": True}


def test_container_concurrency_is_respected(server):
    """containerConcurrency 1 on one replica: concurrent clients are answered one at a time
    (the others wait in the gateway), every one of them."""
    import concurrent.futures
    apply(server, runtime(server))
    o = isvc(server, "one", minReplicas=1, maxReplicas=1, containerConcurrency=1)
    o["spec"]["predictor"]["model"]["env"] = [{"name": "SLEEP", "value": "0.2"}]
    apply(server, o)
    assert wait_until(lambda: ready(server, "one"), 30)
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        res = list(ex.map(lambda _: call(server, "/v2/models/one/infer"), range(6)))
    assert [c for c, _ in res] == [200] * 6, res
    assert {out["concurrent"] for _, out in res} == {1}
