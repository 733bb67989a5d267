"""The examples, run the way a user runs them: `trainyard run examples/.../*.yaml`.

Each manifest is copied with a marker in every container's env (to find the processes and to
prove none is left). The Fashion-MNIST trainer checkpoints to its job's TRAINYARD_JOB_DIR, under
the run's state directory."""
import glob
import json
import os
import re
import signal
import time

import yaml

from conftest import REPO, assert_no_sanitizer_report, processes_with, start_trainyard, wait_until

ACCURACY_RE = re.compile(r"^\[(?P<pod>[\w.-]+)\] epoch=(?P<e>\d+)/(?P<n>\d+) loss=\S+ "
                         r"accuracy=(?P<acc>[0-9.]+)", re.M)


def prepared(src, tmp_path, marker, replace=None, name=None):
    """The example's manifest with the marker env added and strings replaced."""
    text = open(os.path.join(REPO, src)).read()
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    docs = list(yaml.safe_load_all(text))
    for doc in docs:
        if name:
            doc["metadata"]["name"] = name
        specs = doc["spec"].get("pytorchReplicaSpecs") or doc["spec"].get("tfReplicaSpecs")
        for rs in specs.values():
            for c in rs["template"]["spec"]["containers"]:
                c.setdefault("env", []).append({"name": "TY_MARKER", "value": marker})
    path = tmp_path / f"{name or 'example'}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def fashion_mnist(tmp_path, marker, name=None, extra_args=None):
    path = prepared("examples/fashion-mnist/pytorchjob.yaml", tmp_path, marker, name=name)
    if extra_args:
        docs = list(yaml.safe_load_all(open(path)))
        for rs in docs[0]["spec"]["pytorchReplicaSpecs"].values():
            c = rs["template"]["spec"]["containers"][0]
            c["args"] = c["args"] + extra_args
        open(path, "w").write(yaml.safe_dump_all(docs))
    return path


def final_accuracies(text):
    acc = {}
    for m in ACCURACY_RE.finditer(text):
        if m["e"] == m["n"]:
            acc[m["pod"]] = float(m["acc"])
    return acc


def test_fashion_mnist_reaches_85_percent(run_trainyard, tmp_path, marker):
    r = run_trainyard("--follow", fashion_mnist(tmp_path, marker), timeout=300)
    assert r.rc == 0, r
    acc = final_accuracies(r.out)
    assert acc.get("fashion-mnist-master-0", 0) >= 0.85, r.out[-3000:]
    assert "PyTorchJob fashion-mnist Succeeded" in r.out


def test_worker_sigkill_restarts_the_gang_and_resumes(tmp_path, marker):
    """A worker killed mid-training: every rank restarts, resumes from the last checkpoint
    and the job still reaches the accuracy."""
    path = fashion_mnist(tmp_path, marker)
    p = start_trainyard(["--follow", "-o", "json", path], tmp_path)
    try:
        ckpt = str(tmp_path / "state" / "jobs" / "default_fashion-mnist_*" / "checkpoint.bin")
        assert wait_until(lambda: glob.glob(ckpt), 120), "no checkpoint after the first epoch"

        def worker_pid():
            for pid in processes_with(marker):
                try:
                    env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read()
                except OSError:
                    continue
                if b"RANK=2" in env and b"fashion-mnist" in cmd:
                    return pid
            return None

        assert wait_until(lambda: worker_pid() is not None, 30)
        os.kill(worker_pid(), signal.SIGKILL)
        out, err = p.communicate(timeout=300)
    finally:
        p.kill()
    assert p.returncode == 0, (out, err[-4000:])
    assert_no_sanitizer_report(err)
    job = next(o for o in json.loads(out)["items"] if o["kind"] == "PyTorchJob")
    assert int(job["metadata"]["annotations"]["trainyard.dev/restarts"]) >= 1, job
    assert re.search(r"^\[fashion-mnist-master-0\] resumed from epoch=[1-9]", err, re.M), err[-4000:]
    assert final_accuracies(err).get("fashion-mnist-master-0", 0) >= 0.85, err[-3000:]


def test_two_runs_of_one_manifest_at_once_and_again_each_train(tmp_path, marker):
    """The same manifest twice at once (same job name, same MASTER_PORT, same state
    directory), then again: each pod has its own address and each run its own checkpoint, so
    every run trains from scratch. Without --follow and a terminal, the epoch lines are still
    printed."""
    small = ["--epochs", "1", "--hidden", "32"]
    path = fashion_mnist(tmp_path, marker, extra_args=small)
    a = start_trainyard([path], tmp_path)
    b = start_trainyard([path], tmp_path)
    try:
        out_a, err_a = a.communicate(timeout=300)
        out_b, err_b = b.communicate(timeout=300)
    finally:
        a.kill()
        b.kill()
    assert a.returncode == 0, (out_a[-3000:], err_a)
    assert b.returncode == 0, (out_b[-3000:], err_b)
    assert "MASTER_PORT" not in err_a + err_b
    c = start_trainyard([path], tmp_path)
    try:
        out_c, err_c = c.communicate(timeout=300)
    finally:
        c.kill()
    assert c.returncode == 0, (out_c[-3000:], err_c)
    for out in (out_a, out_b, out_c):
        assert "nothing to do" not in out and "resumed" not in out, out[-2000:]
        assert set(final_accuracies(out)) == {"fashion-mnist-master-0", "fashion-mnist-worker-0",
                                              "fashion-mnist-worker-1",
                                              "fashion-mnist-worker-2"}, out[-2000:]
    assert len(glob.glob(str(tmp_path / "state" / "jobs" / "*" / "checkpoint.bin"))) == 3


def test_pytorch_ddp_example(run_trainyard, tmp_path, marker):
    path = prepared("examples/pytorch-ddp/pytorchjob.yaml", tmp_path, marker)
    r = run_trainyard("--follow", path, timeout=400)
    assert r.rc == 0, r
    acc = final_accuracies(r.out)
    assert acc and min(acc.values()) >= 0.75, r.out[-3000:]


def test_tf_config_example(run_trainyard, tmp_path, marker):
    path = prepared("examples/tf-config/tfjob.yaml", tmp_path, marker)
    r = run_trainyard("--follow", path, timeout=120)
    assert r.rc == 0, r
    # The job succeeds with its chief (TF's default success policy); the other tasks are then
    # stopped, like a PS that never exits on its own, so only the chief surely gets to "ok".
    assert re.search(r"^\[tf-config-chief-0\] ok: chief:0 reached all 3 peers", r.out, re.M), r.out
    for task in ("chief-0", "worker-0", "worker-1", "ps-0"):
        kind, index = task.split("-")
        assert re.search(rf"^\[tf-config-{task}\] task {kind}:{index} matches POD_NAME", r.out,
                         re.M), r.out
