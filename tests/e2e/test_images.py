"""Containers from images: `trainyard image load/ls/rm`, pods that run in their image's root
filesystem through crun (entrypoint, non-root user, read-only root), the kubelet's image pull
policy reasons. The images are built by the test itself (tests/e2e/images.py)."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import REPO, assert_no_sanitizer_report, netns_refused, trainyard_bin
import images as I


def _overlay_works():
    if os.geteuid() != 0:
        return "containers from images need root (mount namespaces, overlay)"
    d = tempfile.mkdtemp()
    try:
        for s in ("l", "u", "w", "m"):
            os.mkdir(os.path.join(d, s))
        r = subprocess.run(["unshare", "-m", "mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={d}/l,upperdir={d}/u,workdir={d}/w", f"{d}/m"],
                           capture_output=True, text=True)
        return None if r.returncode == 0 else f"overlay mounts are refused here: {r.stderr}"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _skip_reason():
    if not shutil.which("crun"):
        return "crun is not installed (scripts/deps.sh installs it)"
    if not I.is_static(I.BUSYBOX):
        return f"{I.BUSYBOX} is not static (install busybox-static)"
    return _overlay_works()


needs_containers = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def image_cmd(state, *args):
    r = subprocess.run([trainyard_bin(), "image", *args, "--state-dir", str(state)],
                       capture_output=True, text=True, timeout=120)
    assert_no_sanitizer_report(r.stderr)
    return r


def job(name, marker, containers, pod_sc=None, restart="Never"):
    spec = {"containers": containers}
    if pod_sc:
        spec["securityContext"] = pod_sc
    return json.dumps({
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": {"Master": {
            "replicas": 1, "restartPolicy": restart, "template": {"spec": spec}}}}})


def pods_of(run):
    return {p["metadata"]["name"]: p for p in json.loads(run.out)["items"] if p["kind"] == "Pod"}


def log_of(state, pod_prefix, container="pytorch"):
    for d in os.listdir(state / "pods"):
        if d.startswith("default_" + pod_prefix):
            with open(state / "pods" / d / container / "0.log") as f:
                return "".join(l.split(" ", 3)[3] for l in f.read().splitlines(True))
    raise AssertionError(f"no pod dir for {pod_prefix}")


PROBE = ("id; echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' '); ls /; "
         "if touch /probe 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi; "
         "touch /tmp/x 2>/dev/null && echo tmp=rw; ls /proc | grep -c '^[0-9]' ; "
         "echo env=$FROM_IMAGE")


@needs_containers
def test_docker_archive_runs_entrypoint_as_user_with_read_only_root(tmp_path, run_trainyard,
                                                                     manifest, marker):
    state = tmp_path / "state"
    bb = I.busybox_layer()
    cfg = I.config([bb], entrypoint=["/bin/sh", "-c"], cmd=[PROBE], user="app",
                   env=["PATH=/bin", "FROM_IMAGE=yes"])
    I.docker_archive(str(tmp_path / "bb.tar"), ["busybox:latest"], [bb], cfg)
    r = image_cmd(state, "load", str(tmp_path / "bb.tar"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Loaded image: docker.io/library/busybox:latest"
    ls = image_cmd(state, "ls")
    assert ls.returncode == 0, ls.stderr
    head, row = ls.stdout.splitlines()[:2]
    assert head.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert row.split()[:3] == ["docker.io/library/busybox", "latest",
                               I.sha(json.dumps(cfg).encode())[:13]]

    # no command: the image's Entrypoint + Cmd; its User (by name) unless runAsUser says
    # otherwise; the root filesystem read-only
    c = {"name": "pytorch", "image": "busybox",
         "env": [{"name": "TY_MARKER", "value": marker}],
         "securityContext": {"readOnlyRootFilesystem": True}}
    path = manifest(job("img", marker, [c]))
    run = run_trainyard("-o", "json", path)
    assert run.rc == 0, run
    out = log_of(state, "img-master-0")
    assert "uid=1000(app) gid=1000(app)" in out, out
    assert "pid1=/bin/sh -c " in out, out  # its own pid namespace: the entrypoint is pid 1
    assert "rootfs=ro" in out.splitlines() and "tmp=rw" not in out.splitlines(), out
    assert "env=yes" in out, out
    assert "home" in out.split() and "bin" in out.split(), out
    pod = pods_of(run)["img-master-0"]
    cs = pod["status"]["containerStatuses"][0]
    assert cs["imageID"].startswith("docker.io/library/busybox@sha256:"), cs
    assert "crun, overlay root filesystem" in pod["status"]["message"], pod["status"]

    # runAsUser over the image's user; command replaces Entrypoint and drops Cmd
    c2 = {"name": "pytorch", "image": "docker.io/library/busybox:latest",
          "command": ["/bin/sh", "-c", "id -u; touch /probe && echo wrote"],
          "env": [{"name": "TY_MARKER", "value": marker}]}
    path = manifest(job("img2", marker, [c2], pod_sc={"runAsUser": 0}))
    run = run_trainyard("-o", "json", path)
    assert run.rc == 0, run
    out = log_of(state, "img2-master-0")
    assert out.split() == ["0", "wrote"], out

    # runAsNonRoot cannot be verified against a named image user: the kubelet's refusal
    c["securityContext"]["runAsNonRoot"] = True
    run = run_trainyard("-o", "json", manifest(job("img3", marker, [c])))
    assert run.rc == 1, run
    w = pods_of(run)["img3-master-0"]["status"]["containerStatuses"][0]["state"]["waiting"]
    assert w["reason"] == "CreateContainerConfigError", w
    assert w["message"].startswith("container has runAsNonRoot and image has non-numeric user "
                                   "(app), cannot verify user is non-root (pod: \"img3-master-0_"
                                   "default("), w


@needs_containers
def test_pods_do_not_see_each_others_files_or_processes(tmp_path, run_trainyard, manifest,
                                                        marker):
    state = tmp_path / "state"
    bb = I.busybox_layer()
    I.oci_archive(str(tmp_path / "bb.tar"), "docker.io/library/busybox:1.36", [bb],
                  I.config([bb]))
    assert image_cmd(state, "load", str(tmp_path / "bb.tar")).returncode == 0
    # a writes a file in its root and runs until b has looked; a shared hostPath directory
    # only orders them
    sync = tmp_path / "sync"
    sync.mkdir()
    vol = [{"name": "sync", "hostPath": {"path": str(sync)}}]
    mnt = [{"name": "sync", "mountPath": "/sync"}]
    a = {"name": "pytorch", "image": "busybox:1.36", "volumeMounts": mnt,
         "command": ["/bin/sh", "-c", "echo secret > /tmp/secret; touch /sync/ready; "
                     "while [ ! -e /sync/done ]; do sleep 0.05; done"],
         "env": [{"name": "TY_MARKER", "value": marker}]}
    b = {"name": "pytorch", "image": "busybox:1.36", "volumeMounts": mnt,
         "command": ["/bin/sh", "-c",
                     "while [ ! -e /sync/ready ]; do sleep 0.05; done; "
                     "echo files=$(cat /tmp/secret 2>/dev/null || echo none); "
                     "echo procs=$(cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | "
                     "grep -c 'echo secre[t]'); touch /sync/done"],
         "env": [{"name": "TY_MARKER", "value": marker}]}
    ja, jb = json.loads(job("a", marker, [a])), json.loads(job("b", marker, [b]))
    for j in (ja, jb):
        j["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["volumes"] = vol
    run = run_trainyard("-o", "json", manifest(json.dumps(ja)), manifest(json.dumps(jb)))
    assert run.rc == 0, run
    out = log_of(state, "b-master-0")
    assert "files=none" in out.splitlines() and "procs=0" in out.splitlines(), out


@needs_containers
def test_rm_keeps_layers_another_image_uses(tmp_path):
    state = tmp_path / "state"
    base = I.busybox_layer()
    app = I.layer([("app", "dir", None, 0o755, 0), ("app/x", "file", "x", 0o644, 0)])
    I.docker_archive(str(tmp_path / "one.tar"), ["one:v1"], [base], I.config([base]))
    I.oci_archive(str(tmp_path / "two.tar"), "example.com/team/two:v2", [base, app],
                  I.config([base, app]))
    for f in ("one.tar", "two.tar"):
        r = image_cmd(state, "load", str(tmp_path / f))
        assert r.returncode == 0, r.stderr
    layers = state / "images" / "layers"
    base_dir = layers / I.sha(base)
    assert base_dir.is_dir() and (layers / I.sha(app)).is_dir()
    r = image_cmd(state, "rm", "docker.io/library/one:v1")
    assert r.returncode == 0, r.stderr
    assert base_dir.is_dir() and (base_dir / "bin" / "busybox").exists()
    assert [l.split()[0] for l in image_cmd(state, "ls").stdout.splitlines()[1:]] == \
        ["example.com/team/two"]
    r = image_cmd(state, "rm", "example.com/team/two:v2")
    assert r.returncode == 0, r.stderr
    assert not base_dir.exists() and os.listdir(state / "images" / "blobs" / "sha256") == []
    r = image_cmd(state, "rm", "one:v1")
    assert r.returncode == 1 and "not found" in r.stderr


def test_load_refuses_paths_out_of_the_root(tmp_path):
    state = tmp_path / "state"
    evil = I.layer([("../escaped", "file", "x", 0o644, 0)])
    I.docker_archive(str(tmp_path / "evil.tar"), ["evil:1"], [evil], I.config([evil]))
    r = image_cmd(state, "load", str(tmp_path / "evil.tar"))
    assert r.returncode == 1 and "climbs out" in r.stderr, r.stderr
    assert not (tmp_path / "state" / "images" / "escaped").exists()
    # a symlink to / and a file through it
    trick = I.layer([("etc", "symlink", "/", 0o777, 0), ("etc/trainyard-escape", "file", "x",
                                                          0o644, 0)])
    I.docker_archive(str(tmp_path / "trick.tar"), ["trick:1"], [trick], I.config([trick]))
    r = image_cmd(state, "load", str(tmp_path / "trick.tar"))
    # refused, or the symlink replaced by a directory inside the layer: never written through
    assert not os.path.exists("/trainyard-escape"), r
    # a wrong diff id
    good = I.layer([("a", "file", "a", 0o644, 0)])
    cfg = I.config([good])
    cfg["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    I.docker_archive(str(tmp_path / "bad.tar"), ["bad:1"], [good], cfg)
    r = image_cmd(state, "load", str(tmp_path / "bad.tar"))
    assert r.returncode == 1 and "digest" in r.stderr, r.stderr
    assert "bad" not in image_cmd(state, "ls").stdout


def test_pull_without_skopeo_or_registry_says_why(tmp_path):
    r = image_cmd(tmp_path / "state", "pull", "busybox")
    assert r.returncode == 1
    if shutil.which("skopeo"):
        assert "skopeo failed" in r.stderr, r.stderr
    else:
        assert "skopeo is not installed" in r.stderr, r.stderr


def test_never_pull_and_required_images(tmp_path, run_trainyard, manifest, marker):
    c = {"name": "pytorch", "image": "example.com/absent:1", "imagePullPolicy": "Never",
         "command": ["/bin/sh", "-c", "echo ran"],
         "env": [{"name": "TY_MARKER", "value": marker}]}
    run = run_trainyard("-o", "json", manifest(job("never", marker, [c])))
    assert run.rc == 1, run
    w = pods_of(run)["never-master-0"]["status"]["containerStatuses"][0]["state"]["waiting"]
    assert w == {"reason": "ErrImageNeverPull", "message": 'Container image '
                 '"example.com/absent:1" is not present with pull policy of Never'}, w

    # not in the store: runs on the host and says so; --require-images fails it instead
    del c["imagePullPolicy"]
    run = run_trainyard("-o", "json", manifest(job("host", marker, [c])))
    assert run.rc == 0, run
    msg = pods_of(run)["host-master-0"]["status"]["message"]
    assert "ImageNotPresent" in msg and "runs on the host" in msg, msg
    run = run_trainyard("--require-images", "-o", "json", manifest(job("req", marker, [c])))
    assert run.rc == 1, run
    w = pods_of(run)["req-master-0"]["status"]["containerStatuses"][0]["state"]["waiting"]
    assert w["reason"] == "ErrImagePull" and "--require-images" in w["message"], w


TRAINER = os.path.join(os.path.dirname(__file__), "..", "..", "build", "examples",
                       "fashion-mnist-static")
DATA = "/usr/share/datasets/fashion-mnist"


def _trainer_image(tmp_path, state, etc=()):
    """Loads trainyard.local/fashion-mnist:1: busybox's root with the static trainer as its
    Entrypoint (and `etc`: extra (path, kind, content, mode, uid) entries of the base layer)."""
    with open(TRAINER, "rb") as f:
        trainer = f.read()
    app = I.layer([("usr", "dir", None, 0o755, 0), ("usr/bin", "dir", None, 0o755, 0),
                   ("usr/bin/fashion-mnist", "file", trainer, 0o755, 0)])
    base = I.busybox_layer(etc)
    cfg = I.config([base, app], entrypoint=["/usr/bin/fashion-mnist"],
                   cmd=["--epochs", "1"], workdir="/home/app")
    I.oci_archive(str(tmp_path / "fm.tar"), "trainyard.local/fashion-mnist:1", [base, app], cfg)
    r = image_cmd(state, "load", str(tmp_path / "fm.tar"))
    assert r.returncode == 0, r.stderr


def _trainer_job(marker):
    """The demo's PyTorchJob (master + worker) in the trainer's image, as uid 1000 with a
    read-only root, the data as a read-only hostPath volume, checkpoints on an emptyDir."""
    def replica(n):
        return {"replicas": n, "restartPolicy": "OnFailure", "template": {"spec": {
            "securityContext": {"runAsUser": 1000, "runAsNonRoot": True},
            "containers": [{
                "name": "pytorch", "image": "trainyard.local/fashion-mnist:1",
                "args": ["--epochs", "1", "--batch", "128", "--lr", "0.1", "--hidden", "64",
                         "--seed", "1", "--data-dir", DATA, "--checkpoint-dir", "/ckpt"],
                "env": [{"name": "TY_MARKER", "value": marker}],
                "securityContext": {"readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "volumeMounts": [{"name": "data", "mountPath": DATA, "readOnly": True},
                                 {"name": "ckpt", "mountPath": "/ckpt"}]}],
            "volumes": [{"name": "data", "hostPath": {"path": DATA, "type": "Directory"}},
                        {"name": "ckpt", "emptyDir": {}}]}}}
    return json.dumps({
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": "fashion-mnist"},
        "spec": {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(1)}}})


def _check_trained(run, state):
    assert run.rc == 0, run
    out = log_of(state, "fashion-mnist-master-0")
    assert "fashion-mnist rank=0 world=2" in out, out
    done = [l for l in out.splitlines() if l.startswith("done ")]
    assert done and float(done[0].split("accuracy=")[1].split()[0]) > 0.75, out
    for p in pods_of(run).values():
        assert p["status"]["containerStatuses"][0]["imageID"].startswith(
            "trainyard.local/fashion-mnist@sha256:"), p["status"]


@needs_containers
@pytest.mark.skipif(not os.path.exists(TRAINER), reason="make build/examples/fashion-mnist-static")
@pytest.mark.skipif(not os.path.isdir(DATA), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_trains_in_its_image_as_non_root(tmp_path, run_trainyard, manifest,
                                                       marker):
    """The demo's PyTorchJob with the trainer's image: its Entrypoint, uid 1000, a read-only
    root filesystem, the data as a read-only hostPath volume, checkpoints on an emptyDir."""
    state = tmp_path / "state"
    _trainer_image(tmp_path, state)
    run = run_trainyard("-o", "json", manifest(_trainer_job(marker)), timeout=120)
    _check_trained(run, state)


@needs_containers
@pytest.mark.skipif(not os.path.exists(TRAINER), reason="make build/examples/fashion-mnist-static")
@pytest.mark.skipif(not os.path.isdir(DATA), reason="dataset-fashion-mnist is not installed")
@pytest.mark.skipif(netns_refused() is not None, reason=str(netns_refused()))
def test_static_trainer_resolves_the_master_without_nss(tmp_path, run_trainyard, manifest,
                                                        marker):
    """With a pod network MASTER_ADDR is the master's Service name. A static glibc program
    resolves it through NSS modules loaded from the image; this image's nsswitch.conf names
    one it lacks (mDNS's, as an image made for avahi would), so getaddrinfo fails there and the
    trainer asks the nameserver of its resolv.conf (the cluster DNS) itself."""
    state = tmp_path / "state"
    _trainer_image(tmp_path, state, etc=[
        ("etc/nsswitch.conf", "file", "hosts: files mdns4_minimal\n", 0o644, 0)])
    run = run_trainyard("-o", "json", manifest(_trainer_job(marker)), timeout=120)
    _check_trained(run, state)
    master = pods_of(run)["fashion-mnist-master-0"]
    worker = pods_of(run)["fashion-mnist-worker-0"]
    env = {e["name"]: e.get("value") for e in worker["spec"]["containers"][0]["env"]}
    assert env["MASTER_ADDR"] == "fashion-mnist-master-0", env
    out = log_of(state, "fashion-mnist-worker-0")
    assert (f"resolved fashion-mnist-master-0 to {master['status']['podIP']} through "
            "resolv.conf's nameserver") in out, out
    assert "fashion-mnist rank=1 world=2" in out, out


def _sleeper(marker, state, tmp_path, name):
    """A job whose image container notes SIGTERM in a hostPath file and otherwise sleeps."""
    bb = I.busybox_layer()
    I.docker_archive(str(tmp_path / "bb.tar"), ["busybox:latest"], [bb], I.config([bb]))
    assert image_cmd(state, "load", str(tmp_path / "bb.tar")).returncode == 0
    seen = tmp_path / "seen"
    seen.mkdir()
    c = {"name": "pytorch", "image": "busybox",
         "command": ["/bin/sh", "-c", "trap 'touch /seen/term; exit 3' TERM; touch /seen/up; "
                     "sleep 300 & while :; do wait; done"],
         "env": [{"name": "TY_MARKER", "value": marker}],
         "volumeMounts": [{"name": "seen", "mountPath": "/seen"}]}
    j = json.loads(job(name, marker, [c]))
    j["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["volumes"] = [
        {"name": "seen", "hostPath": {"path": str(seen)}}]
    return json.dumps(j), seen


@needs_containers
def test_sigterm_reaches_the_container_and_sigkill_leaves_nothing(tmp_path, manifest, marker):
    import signal
    from conftest import processes_with, start_trainyard, wait_until
    state = tmp_path / "state"
    text, seen = _sleeper(marker, state, tmp_path, "term")
    p = start_trainyard([manifest(text)], tmp_path)
    try:
        assert wait_until(lambda: (seen / "up").exists(), 30), p
        assert processes_with(marker)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=40)
        assert p.returncode == 143, (out, err)
        assert (seen / "term").exists()  # the entrypoint (pid 1 of its namespace) got it
        assert not processes_with(marker)
    finally:
        p.kill()

    (seen / "up").unlink()
    p = start_trainyard([manifest(text)], tmp_path)
    try:
        assert wait_until(lambda: (seen / "up").exists(), 30)
        p.kill()
        p.wait(timeout=10)
        assert wait_until(lambda: not processes_with(marker), 15), processes_with(marker)
        with open("/proc/self/mountinfo") as f:
            assert str(state) not in f.read()  # the overlay went with its namespace
    finally:
        p.kill()


def _fake_skopeo(tmp_path, layout=None):
    """A skopeo on PATH: without `layout` it fails as an unreachable registry does; with it,
    `skopeo copy docker://REF oci:DIR:TAG` copies that OCI layout to DIR."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / "skopeo"
    if layout is None:
        body = (f'echo x >> {tmp_path}/skopeo-calls\n'
                'echo "time=x level=fatal msg=\\"initializing source $3: pinging '
                'container registry registry-1.docker.io: dial tcp: lookup '
                'registry-1.docker.io: no such host\\"" >&2; exit 1\n')
    else:
        body = f'dst="${{4#oci:}}"; dst="${{dst%:*}}"; cp -r {layout} "$dst"\n'
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def test_failed_pull_backs_off_with_require_images_else_runs_on_host(tmp_path, run_trainyard,
                                                                       manifest, marker):
    """No network here: a skopeo that cannot reach its registry. Without --require-images the
    container runs on the host; with it the pod waits ErrImagePull, then ImagePullBackOff, and
    tries again (the job is not failed: a registry may come back)."""
    env = _fake_skopeo(tmp_path)
    c = {"name": "pytorch", "image": "example.com/absent:1",
         "command": ["/bin/sh", "-c", "echo on-host"],
         "env": [{"name": "TY_MARKER", "value": marker}]}
    run = run_trainyard("-o", "json", manifest(job("hostfallback", marker, [c])), env=env)
    assert run.rc == 0, run
    import signal
    from conftest import start_trainyard, wait_until
    state = tmp_path / "state"
    full = dict(os.environ, **env, TRAINYARD_RESTART_BACKOFF_MS="400")
    p = start_trainyard(["--require-images", manifest(job("req", marker, [c]))], tmp_path,
                        env=full)
    try:
        def statuses():
            seen = set()
            for d in (state / "pods").glob("default_req-master-0_*"):
                try:
                    st = json.loads((d / "state.json").read_text())["status"]
                    w = st["containerStatuses"][0]["state"].get("waiting", {})
                    seen.add((w.get("reason"), w.get("message", "")))
                except (OSError, ValueError, KeyError):
                    pass
            return seen
        reasons = set()

        def saw_both():
            reasons.update(statuses())
            return {r for r, _ in reasons} >= {"ErrImagePull", "ImagePullBackOff"}
        assert wait_until(saw_both, 30), reasons
        msgs = dict(reasons)
        assert msgs["ErrImagePull"].startswith(
            'failed to pull image "example.com/absent:1": pull example.com/absent:1: skopeo '
            'failed: '), msgs
        assert "no such host" in msgs["ErrImagePull"], msgs
        assert msgs["ImagePullBackOff"] == 'Back-off pulling image "example.com/absent:1"'
        # the pull is tried again after the back-off: the job was not failed meanwhile
        calls = tmp_path / "skopeo-calls"
        before = len(calls.read_text().split())
        assert wait_until(lambda: len(calls.read_text().split()) > before, 30)
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
    finally:
        p.kill()


@needs_containers
def test_pull_through_skopeo_runs_the_pulled_image(tmp_path, run_trainyard, manifest, marker):
    bb = I.busybox_layer()
    I.oci_archive(str(tmp_path / "src.tar"), "pulled", [bb],
                  I.config([bb], entrypoint=["/bin/sh", "-c", "echo pulled-and-ran"]))
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(tmp_path / "src.tar"), "-C", str(layout)], check=True)
    env = _fake_skopeo(tmp_path, layout)
    c = {"name": "pytorch", "image": "registry.example.com/team/app:2",
         "env": [{"name": "TY_MARKER", "value": marker}]}
    run = run_trainyard("-o", "json", manifest(job("pull", marker, [c])), env=env)
    assert run.rc == 0, run
    assert log_of(tmp_path / "state", "pull-master-0").split() == ["pulled-and-ran"]
    ls = image_cmd(tmp_path / "state", "ls").stdout
    assert "registry.example.com/team/app" in ls, ls


@needs_containers
def test_server_events_and_kill9_leaves_nothing_after_restart(tmp_path, marker):
    from conftest import processes_with, wait_until
    from server_fixture import Server
    data = tmp_path / "data"
    bb = I.busybox_layer()
    I.docker_archive(str(tmp_path / "bb.tar"), ["busybox:latest"], [bb], I.config([bb]))
    r = subprocess.run([trainyard_bin(), "image", "load", "--data-dir", str(data),
                        str(tmp_path / "bb.tar")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    c = {"name": "pytorch", "image": "busybox",
         "command": ["/bin/sh", "-c", "sleep 300 & while :; do wait; done"],
         "env": [{"name": "TY_MARKER", "value": marker}]}
    j = json.loads(job("srv", marker, [c]))
    # the entrypoint is pid 1 of its namespace and ignores SIGTERM: the grace period ends it
    j["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"][
        "terminationGracePeriodSeconds"] = 2
    s = Server(data).start()
    try:
        s.kubectl("apply", "-f", "-", input=json.dumps(j))

        def running():
            p = s.json("get", "pod", "srv-master-0") if s.kubectl(
                "get", "pod", "srv-master-0", check=False).returncode == 0 else {}
            return p.get("status", {}).get("phase") == "Running"
        assert wait_until(running, 30)
        pod = s.json("get", "pod", "srv-master-0")
        assert pod["status"]["containerStatuses"][0]["imageID"].startswith(
            "docker.io/library/busybox@sha256:")

        def pulled():
            ev = s.json("get", "events", "--field-selector",
                        "involvedObject.name=srv-master-0")["items"]
            return [e for e in ev if e["reason"] == "Pulled"]
        assert wait_until(pulled, 20)
        assert pulled()[0]["message"] == 'Container image "busybox" already present on machine'
        # an image the store lacks: the container runs on the host, and an Event says so
        h = dict(c, image="example.com/absent:2", command=["/bin/sh", "-c", "true"])
        s.kubectl("apply", "-f", "-", input=job("onhost", marker, [h]))

        def not_present():
            ev = s.json("get", "events", "--field-selector",
                        "involvedObject.name=onhost-master-0")["items"]
            return [e for e in ev if e["reason"] == "ImageNotPresent"]
        assert wait_until(not_present, 30)
        assert not_present()[0]["message"] == ('Container image "example.com/absent:2" is not '
                                               'in the image store: container pytorch runs on '
                                               'the host')
        assert not_present()[0]["type"] == "Warning"
        s.kill9()
        assert processes_with(marker)  # pods outlive the server
        s = Server(data).start()
        assert wait_until(running, 30)
        s.kubectl("delete", "pytorchjob", "srv", "--wait=false")
        assert wait_until(lambda: not processes_with(marker), 60), processes_with(marker)
        assert wait_until(lambda: not list((data / "node" / "pods").glob("default_srv-*")), 30)
        with open("/proc/self/mountinfo") as f:
            assert str(data) not in f.read()
    finally:
        s.stop()
        s.reap()


@needs_containers
def test_whiteouts_of_an_upper_layer_hide_files_below(tmp_path, run_trainyard, manifest, marker):
    state = tmp_path / "state"
    base = I.busybox_layer(extra=[("etc/old", "file", "old", 0o644, 0),
                                  ("data", "dir", None, 0o755, 0),
                                  ("data/a", "file", "a", 0o644, 0),
                                  ("data/b", "file", "b", 0o644, 0)])
    upper = I.layer([("etc", "dir", None, 0o755, 0), ("etc/.wh.old", "file", "", 0o644, 0),
                     ("data", "dir", None, 0o755, 0), ("data/.wh..wh..opq", "file", "", 0o644, 0),
                     ("data/c", "file", "c", 0o644, 0)])
    I.docker_archive(str(tmp_path / "w.tar"), ["wh:1"], [base, upper], I.config([base, upper]))
    r = image_cmd(state, "load", str(tmp_path / "w.tar"))
    assert r.returncode == 0, r.stderr
    c = {"name": "pytorch", "image": "wh:1",
         "command": ["/bin/sh", "-c", "echo data=$(ls /data); ls /etc/old 2>/dev/null || "
                     "echo old-gone"],
         "env": [{"name": "TY_MARKER", "value": marker}]}
    run = run_trainyard("-o", "json", manifest(job("wh", marker, [c])))
    assert run.rc == 0, run
    assert log_of(state, "wh-master-0").split("\n")[:2] == ["data=c", "old-gone"]


@needs_containers
def test_rm_of_an_image_in_use_keeps_its_layers_until_the_container_ends(tmp_path, manifest,
                                                                          marker):
    from conftest import processes_with, start_trainyard, wait_until
    state = tmp_path / "state"
    text, seen = _sleeper(marker, state, tmp_path, "inuse")
    p = start_trainyard([manifest(text)], tmp_path)
    layer = state / "images" / "layers" / I.sha(I.busybox_layer())
    try:
        assert wait_until(lambda: (seen / "up").exists(), 30)
        r = image_cmd(state, "rm", "busybox")
        assert r.returncode == 0, r.stderr
        assert (layer / "bin" / "busybox").exists()  # the running container's root stays
        p.send_signal(__import__("signal").SIGTERM)
        p.communicate(timeout=40)
        assert not processes_with(marker)
    finally:
        p.kill()
    # the next collection (any load or rm) takes it
    other = I.layer([("x", "file", "x", 0o644, 0)])
    I.docker_archive(str(tmp_path / "o.tar"), ["other:1"], [other], I.config([other]))
    assert image_cmd(state, "load", str(tmp_path / "o.tar")).returncode == 0
    assert not layer.exists()


@needs_containers
def test_relative_state_dir_and_a_working_dir_the_image_lacks(tmp_path, manifest, marker):
    bb = I.busybox_layer()
    I.docker_archive(str(tmp_path / "bb.tar"), ["busybox:latest"], [bb], I.config([bb]))
    assert image_cmd(tmp_path / "rel", "load", str(tmp_path / "bb.tar")).returncode == 0
    c = {"name": "pytorch", "image": "busybox", "workingDir": "/work/dir",
         "securityContext": {"runAsUser": 1000},
         "command": ["/bin/sh", "-c", "pwd; touch /scratch/x && echo $TRAINYARD_JOB_DIR; "
                     "id -G; stat -c %g /scratch/x"],
         "env": [{"name": "TY_MARKER", "value": marker}],
         "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}
    j = json.loads(job("rel", marker, [c]))
    j["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["volumes"] = [
        {"name": "scratch", "emptyDir": {}}]
    j["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["securityContext"] = {
        "fsGroup": 2000, "supplementalGroups": [3000]}
    binary = os.path.join(REPO, trainyard_bin())  # TRAINYARD_BIN may be relative to the repo
    p = subprocess.run([binary, "run", "--state-dir", "rel", manifest(json.dumps(j))],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert_no_sanitizer_report(p.stderr)
    assert p.returncode == 0, (p.stdout, p.stderr)
    out = log_of(tmp_path / "rel", "rel-master-0").split()
    assert out[0] == "/work/dir" and out[1].startswith(str(tmp_path / "rel" / "jobs")), out
    # the image's primary group of uid 1000, fsGroup and supplementalGroups; a file made in
    # the emptyDir belongs to fsGroup
    assert out[2:] == ["1000", "2000", "3000", "2000"], out


@needs_containers
def test_an_executable_the_image_lacks_is_a_start_error(tmp_path, run_trainyard, manifest,
                                                       marker):
    state = tmp_path / "state"
    bb = I.busybox_layer()
    I.docker_archive(str(tmp_path / "bb.tar"), ["busybox:latest"], [bb], I.config([bb]))
    assert image_cmd(state, "load", str(tmp_path / "bb.tar")).returncode == 0
    c = {"name": "pytorch", "image": "busybox", "command": ["trian.py"],
         "env": [{"name": "TY_MARKER", "value": marker}]}
    ok = {"name": "pytorch", "image": "busybox", "command": ["/bin/sh", "-c", "exit 3"],
          "env": [{"name": "TY_MARKER", "value": marker}]}
    run = run_trainyard("-o", "json", manifest(job("noexec", marker, [c])),
                        manifest(job("exit3", marker, [ok])))
    assert run.rc == 1, run
    pods = pods_of(run)
    t = pods["noexec-master-0"]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert t["reason"] == "StartError" and t["exitCode"] == 128, t
    assert t["message"] == ('failed to start container "pytorch": executable file `trian.py` '
                            'not found in $PATH: No such file or directory'), t
    # the container's own failure stays an Error with its exit code
    t = pods["exit3-master-0"]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert t["reason"] == "Error" and t["exitCode"] == 3, t
