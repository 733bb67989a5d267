"""ConfigMaps and Secrets through the real kubectl, as on a cluster: `kubectl create
configmap|secret|service` (which send protobuf), printer columns, the API server's validation
and immutability, and pods that read them as files (configMap, secret, downwardAPI and
projected volumes, read-only) and as environment variables (valueFrom, envFrom), waiting as a
kubelet waits while one is missing; and `trainyard run` of a job with its ConfigMap."""
import base64
import json
import os
import pytest

from conftest import kill_all, wait_until
from server_fixture import Server


@pytest.fixture
def server(tmp_path, marker):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def apply(server, *objs, check=True):
    items = {"apiVersion": "v1", "kind": "List", "items": list(objs)}
    return server.kubectl("apply", "-f", "-", check=check, input=json.dumps(items))


def test_kubectl_create_and_get(server, tmp_path):
    (tmp_path / "bin").write_bytes(b"\x00\x01\xff")
    server.kubectl("create", "configmap", "game", "--from-literal=lives=3",
                   f"--from-file={tmp_path / 'bin'}")
    server.kubectl("create", "secret", "generic", "creds", "--from-literal=user=admin")
    server.kubectl("create", "secret", "docker-registry", "reg", "--docker-server=r.example",
                   "--docker-username=u", "--docker-password=p")
    server.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080")
    server.kubectl("create", "service", "clusterip", "hl", "--clusterip=None")

    cm = server.json("get", "configmap", "game")
    assert cm["data"] == {"lives": "3"} and cm["binaryData"] == {"bin": "AAH/"}, cm
    secret = server.json("get", "secret", "creds")
    assert secret["type"] == "Opaque", secret
    assert base64.b64decode(secret["data"]["user"]) == b"admin"
    assert server.json("get", "secret", "reg")["type"] == "kubernetes.io/dockerconfigjson"
    svc = server.json("get", "service", "web")["spec"]
    assert svc["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP",
                             "targetPort": 8080}], svc
    assert svc["selector"] == {"app": "web"} and svc["type"] == "ClusterIP", svc
    assert svc["sessionAffinity"] == "None" and svc["clusterIP"].startswith("10."), svc
    assert server.json("get", "service", "hl")["spec"]["clusterIP"] == "None"

    out = server.kubectl("get", "configmaps,secrets").stdout.splitlines()
    assert out[0].split() == ["NAME", "DATA", "AGE"], out
    assert out[1].split()[:2] == ["configmap/game", "2"], out
    assert out[3].split() == ["NAME", "TYPE", "DATA", "AGE"], out
    rows = {line.split()[0]: line.split()[1:3] for line in out[4:]}
    assert rows["secret/creds"] == ["Opaque", "1"], out
    assert rows["secret/reg"] == ["kubernetes.io/dockerconfigjson", "1"], out
    assert server.kubectl("get", "cm", "game", "-o", "name").stdout == "configmap/game\n"


def test_validation_and_immutability(server):
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"},
           "data": {"a b": "x", "dup": "y", "..x": "z"}, "binaryData": {"dup": "eA=="}}
    r = apply(server, bad, check=False)
    assert r.returncode != 0
    assert ("data[a b]: Invalid value: \"a b\": a valid config key must consist of "
            "alphanumeric characters") in r.stderr, r.stderr
    assert "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData" in r.stderr
    assert "data[..x]: Invalid value: \"..x\": must not start with '..'" in r.stderr, r.stderr
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
           "data": {"a": "x" * (1 << 20), "b": "y"}}
    r = apply(server, big, check=False)
    assert "Too long: may not be more than 1048576 bytes" in r.stderr, r.stderr
    tls = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"},
           "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ=="}}
    r = apply(server, tls, check=False)
    assert 'The Secret "t" is invalid: data[tls.key]: Required value' in r.stderr, r.stderr
    notb64 = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "n"},
              "data": {"k": "not base64!"}}
    r = apply(server, notb64, check=False)
    assert "data[k]" in r.stderr and "base64" in r.stderr, r.stderr
    names = server.kubectl("get", "cm,secrets", "-o", "name").stdout.split()
    assert names == [], names  # nothing refused was stored

    # stringData is merged over data and never stored
    s = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
         "data": {"a": base64.b64encode(b"old").decode(), "b": "Yg=="},
         "stringData": {"a": "new"}, "immutable": True}
    apply(server, s)
    got = server.json("get", "secret", "s")
    assert "stringData" not in got, got
    assert base64.b64decode(got["data"]["a"]) == b"new" and got["data"]["b"] == "Yg==", got
    # immutable: data and the flag stay; the type never changes
    r = server.kubectl("patch", "secret", "s", "--type=merge", "-p",
                       '{"data": {"b": "Yw=="}}', check=False)
    assert "data: Forbidden: field is immutable when `immutable` is set" in r.stderr, r.stderr
    r = server.kubectl("patch", "secret", "s", "--type=merge", "-p",
                       '{"immutable": false}', check=False)
    assert "immutable: Forbidden: field is immutable when `immutable` is set" in r.stderr
    r = server.kubectl("patch", "secret", "s", "--type=merge", "-p",
                       '{"type": "example.com/other"}', check=False)
    assert 'type: Invalid value: "example.com/other": field is immutable' in r.stderr
    # metadata still changes
    server.kubectl("label", "secret", "s", "team=a")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
          "data": {"k": "v"}}
    apply(server, cm)
    server.kubectl("patch", "configmap", "c", "--type=merge", "-p", '{"data": {"k": "w"}}')
    assert server.json("get", "cm", "c")["data"] == {"k": "w"}


def reader_pod(marker):
    script = ("cat /cfg/lives /sec/pass /dw/labels /dw/meta/name /proj/l/ives /proj/pass; "
              "echo; echo \"LIVES=$LIVES PASS=$PASS CFG_lives=$CFG_lives RAW=$RAW MEM=$MEM\"; "
              "stat -c '%a %n' /sec/pass /cfg/lives; "
              "touch /cfg/new 2>/dev/null || echo read-only")
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "reader", "labels": {"app": "r", "tier": "back-end"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "c", "image": "busybox", "command": ["sh", "-c", script],
                "env": [
                    {"name": "M", "value": marker},
                    {"name": "LIVES",
                     "valueFrom": {"configMapKeyRef": {"name": "game", "key": "lives"}}},
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                                    "key": "pass"}}},
                    {"name": "GONE", "valueFrom": {"configMapKeyRef": {
                        "name": "absent", "key": "x", "optional": True}}},
                    {"name": "RAW",
                     "valueFrom": {"configMapKeyRef": {"name": "game", "key": "raw"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {
                        "resource": "limits.memory", "divisor": "1Mi"}}},
                ],
                "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "game"}}],
                "resources": {"limits": {"memory": "64Mi"}},
                "volumeMounts": [{"name": n, "mountPath": "/" + n}
                                 for n in ("cfg", "sec", "dw", "proj")],
            }],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "game"}},
                {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                {"name": "dw", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "meta/name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"name": "proj", "projected": {"sources": [
                    {"configMap": {"name": "game", "items": [{"key": "lives",
                                                              "path": "l/ives"}]}},
                    {"secret": {"name": "creds"}}]}},
            ],
        },
    }


def test_pods_read_configmaps_and_secrets_and_wait_for_them(server, marker):
    if os.geteuid() != 0:
        pytest.skip("volume mounts on a host pod need root (a private mount namespace)")
    apply(server, reader_pod(marker))

    def events(reason):
        items = server.json("get", "events", "--field-selector",
                            "involvedObject.name=reader")["items"]
        return [e["message"] for e in items if e["reason"] == reason]
    # The ConfigMap is missing: the pod waits as ContainerCreating, saying why.
    assert wait_until(lambda: events("FailedMount"), 10)
    assert events("FailedMount")[0] == ('MountVolume.SetUp failed for volume "cfg" : '
                                        'configmap "game" not found'), events("FailedMount")
    pod = server.json("get", "pod", "reader")
    assert pod["status"]["phase"] == "Pending", pod["status"]
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ContainerCreating", waiting
    assert server.kubectl("get", "pod", "reader", "--no-headers").stdout.split()[2] == \
        "ContainerCreating"

    # With the volumes' objects but not the key an env var names: CreateContainerConfigError.
    game = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "game"},
            "data": {"lives": "3"}}
    creds = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
             "stringData": {"pass": "s3cret"}}
    apply(server, game, creds)

    def config_error():
        st = server.json("get", "pod", "reader")["status"].get("containerStatuses", [{}])[0]
        return st.get("state", {}).get("waiting", {}).get("reason") == \
            "CreateContainerConfigError" and st["state"]["waiting"]
    assert wait_until(config_error, 10)
    assert config_error()["message"] == "couldn't find key raw in ConfigMap default/game"
    assert wait_until(lambda: "Error: couldn't find key raw in ConfigMap default/game"
                      in events("Failed"), 5), events("Failed")

    # Once the key is there, it runs with everything as written ($(X) is not expanded).
    game["data"]["raw"] = "$(LIVES)"
    apply(server, game)
    assert wait_until(lambda: server.json("get", "pod", "reader")["status"].get("phase")
                      == "Succeeded", 20), server.json("get", "pod", "reader")["status"]
    log = server.kubectl("logs", "reader").stdout.splitlines()
    assert log[0] == '3s3cretapp="r"', log  # files, no trailing newlines
    assert log[1] == 'tier="back-end"reader3s3cret', log
    assert log[2] == "LIVES=3 PASS=s3cret CFG_lives=3 RAW=$(LIVES) MEM=64", log
    assert log[3:] == ["400 /sec/pass", "644 /cfg/lives", "read-only"], log


def test_a_job_waits_for_its_configmap_instead_of_failing(server, marker):
    """A missing ConfigMap is a wait, not a spec error: the job keeps its pods and runs once the
    ConfigMap exists (a pod without a command still fails the job at once, elsewhere)."""
    job = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": "j"},
           "spec": {"pytorchReplicaSpecs": {"Master": {"replicas": 1, "template": {"spec": {
               "containers": [{"name": "pytorch", "image": "x",
                               "command": ["sh", "-c", "echo lr=$LR"],
                               "env": [{"name": "M", "value": marker},
                                       {"name": "LR", "valueFrom": {"configMapKeyRef": {
                                           "name": "hp", "key": "lr"}}}]}]}}}}}}
    apply(server, job)

    def waiting_reason():
        pods = server.json("get", "pods")["items"]
        st = pods[0].get("status", {}).get("containerStatuses", [{}])[0] if pods else {}
        return st.get("state", {}).get("waiting", {}).get("reason")
    assert wait_until(lambda: waiting_reason() == "CreateContainerConfigError", 10)
    conds = [c["type"] for c in server.json("get", "pytorchjob", "j")
             .get("status", {}).get("conditions", [])]
    assert "Failed" not in conds, conds
    apply(server, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hp"},
                   "data": {"lr": "0.1"}})
    assert wait_until(lambda: server.kubectl("get", "pytorchjob", "j", "--no-headers")
                      .stdout.split()[1:2] == ["Succeeded"], 30)
    assert server.kubectl("logs", "j-master-0").stdout == "lr=0.1\n"


def test_run_a_job_with_its_configmap(run_trainyard, manifest, marker):
    if os.geteuid() != 0:
        pytest.skip("volume mounts on a host pod need root (a private mount namespace)")
    path = manifest(f"""\
apiVersion: v1
kind: ConfigMap
metadata: {{name: hp}}
data: {{lr: "0.1"}}
---
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {{name: cfgjob}}
spec:
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      template:
        spec:
          containers:
          - name: pytorch
            image: x
            command: [sh, -c, 'echo lr=$LR file=$(cat /hp/lr)']
            env:
            - {{name: M, value: {marker}}}
            - {{name: LR, valueFrom: {{configMapKeyRef: {{name: hp, key: lr}}}}}}
            volumeMounts: [{{name: hp, mountPath: /hp}}]
          volumes: [{{name: hp, configMap: {{name: hp}}}}]
""")
    r = run_trainyard("--follow", path, timeout=60)
    assert r.rc == 0, r
    assert "[cfgjob-master-0] lr=0.1 file=0.1" in r.out, r
