"""Runs the examples' programs directly (no trainyard): a tiny launcher gives each rank the
environment Kubeflow's training operator would (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
POD_IP) and we check the output format, the checkpoint and the resume, failure handling and
TF_CONFIG checking. Needs `make build/examples/fashion-mnist` (make e2e builds it)."""
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAINER = os.path.join(ROOT, "build", "examples", "fashion-mnist")
TF_CHECK = os.path.join(ROOT, "examples", "tf-config", "check_tf_config.py")
EPOCH_RE = re.compile(r"^epoch=(\d+)/(\d+) loss=(\d+\.\d+) accuracy=(0\.\d+|1\.0+)\b", re.M)
# Small and fast: a third of a real epoch's compute per rank, still well above chance.
def small(epochs=1):
    return ["--epochs", str(epochs), "--batch", "64", "--hidden", "16", "--lr", "0.1",
            "--log-every", "0", "--timeout", "20", "--rendezvous-timeout", "20"]


def net():
    """A fresh 127.x.y subnet per launch, so tests never meet each other's ports."""
    return f"127.{random.randint(17, 250)}.{random.randint(0, 255)}"


def launch(n, args, prefix=None, extra_env=None):
    prefix = prefix or net()
    procs = []
    for r in range(n):
        env = dict(os.environ, RANK=str(r), WORLD_SIZE=str(n), MASTER_ADDR=f"{prefix}.2",
                   MASTER_PORT="23456", POD_IP=f"{prefix}.{r + 2}", PET_NNODES=str(n),
                   PET_NODE_RANK=str(r), PET_NPROC_PER_NODE="1", **(extra_env or {}))
        procs.append(subprocess.Popen([TRAINER] + args, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs, timeout=90):
    out = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append((p.returncode, o, e))
    return out


@pytest.fixture(scope="module", autouse=True)
def built():
    subprocess.run(["make", "-s", "build/examples/fashion-mnist"], cwd=ROOT, check=True)


def test_four_ranks_train_checkpoint_and_resume(tmp_path):
    ck = str(tmp_path / "ck")
    res = finish(launch(4, small() + ["--checkpoint-dir", ck]))
    for rc, out, err in res:
        assert rc == 0, err
        m = EPOCH_RE.findall(out)
        assert len(m) == 1, out
        assert m[0][:2] == ("1", "1")
        assert float(m[0][3]) > 0.70, out  # 10 classes: chance is 0.10
    # Every rank reports the same all-reduced numbers.
    assert len({EPOCH_RE.search(o).group(0) for _, o, _ in res}) == 1
    assert os.path.getsize(os.path.join(ck, "checkpoint.bin")) > 4 * 784 * 16
    assert [f for f in os.listdir(ck) if ".tmp." in f] == []  # written by rename, nothing left over
    assert "checkpoint epoch=1" in res[0][1]

    # Asking for 2 epochs now resumes after the first on every rank and trains only the second.
    res2 = finish(launch(4, small(2) + ["--checkpoint-dir", ck]))
    for rc, out, err in res2:
        assert rc == 0, err
        assert "resumed from epoch=1" in out
        assert [e[:2] for e in EPOCH_RE.findall(out)] == [("2", "2")]
    acc2 = re.search(r"^done epochs=2 accuracy=([0-9.]+)", res2[0][1], re.M).group(1)

    # Trained already: nothing to train, but the checkpoint's accuracy is reported.
    res3 = finish(launch(4, small(2) + ["--checkpoint-dir", ck]))
    for rc, out, err in res3:
        assert rc == 0, err
        assert "nothing to do: checkpoint already has 2 of 2 epochs" in out, out
        assert re.search(rf"^done epochs=2 accuracy={acc2} ", out, re.M), out


def test_single_rank_without_environment_matches_four_ranks(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR")}
    one = subprocess.run([TRAINER] + small(), env=env, capture_output=True, text=True, timeout=90)
    assert one.returncode == 0, one.stderr
    four = finish(launch(4, small()))
    a1 = float(EPOCH_RE.search(one.stdout).group(4))
    a4 = float(EPOCH_RE.search(four[0][1]).group(4))
    assert abs(a1 - a4) <= 0.005, (a1, a4)


def test_a_dead_peer_makes_the_others_fail_fast():
    procs = launch(3, small(5))
    time.sleep(1.5)
    procs[2].kill()
    t0 = time.monotonic()
    res = finish(procs[:2], timeout=30)
    assert time.monotonic() - t0 < 25
    for rc, _, err in res:
        assert rc != 0
        assert "fashion-mnist: error:" in err
    procs[2].wait()


def test_sigterm_exits_promptly():
    procs = launch(2, small(5))
    time.sleep(1.0)
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for rc, _, err in finish(procs, timeout=5):
        assert rc in (143, -signal.SIGTERM), err


def test_bench_allreduce_mode_checks_its_result():
    res = finish(launch(4, ["--bench-allreduce", "1000004", "--bench-iters", "3"]))
    assert all(rc == 0 for rc, _, _ in res), [e for _, _, e in res]
    assert re.search(r"allreduce impl=ring-tcp ranks=4 bytes=1000004 iters=3 median_s=\S+ algbw_GBps=\S+",
                     res[0][1]), res[0][1]


def tf_run(task_env, args=("--chief", "1", "--worker", "2", "--ps", "1", "--timeout", "10")):
    procs = [subprocess.Popen(["/usr/bin/python3", TF_CHECK, *args],
                              env=dict(os.environ, **e), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for e in task_env]
    return [(p.wait(timeout=30), p.stdout.read(), p.stderr.read()) for p in procs]


def tf_envs(prefix, bad_name=None):
    tasks = [("chief", 0), ("worker", 0), ("worker", 1), ("ps", 0)]
    addr = {t: f"{prefix}.{i + 2}:2222" for i, t in enumerate(tasks)}
    cluster = {}
    for (ty, ix) in tasks:
        cluster.setdefault(ty, []).append(addr[(ty, ix)])
    envs = []
    for i, (ty, ix) in enumerate(tasks):
        name = f"tf-config-{ty}-{ix}"
        if bad_name and (ty, ix) == bad_name:
            name = "tf-config-worker-7"
        envs.append({"POD_IP": f"{prefix}.{i + 2}", "POD_NAME": name, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": ty, "index": ix}, "environment": "cloud"})})
    return envs


def test_tf_config_check_passes_and_connects():
    res = tf_run(tf_envs(net()))
    for rc, out, err in res:
        assert rc == 0, err
        assert "reached all 3 peers and was reached by all of them" in out


def test_tf_config_check_rejects_wrong_counts_and_identity():
    res = tf_run(tf_envs(net())[:1], args=("--chief", "1", "--worker", "3", "--ps", "1", "--no-connect"))
    assert res[0][0] == 1 and "expected" in res[0][2]
    res = tf_run(tf_envs(net(), bad_name=("worker", 1))[2:3], args=("--no-connect",))
    assert res[0][0] == 1 and "says worker:7 but TF_CONFIG task is worker:1" in res[0][2]


def test_two_jobs_on_the_same_port_run_side_by_side():
    # Every process binds only its own POD_IP, so MASTER_PORT 23456 twice is no conflict.
    a, b = launch(2, small()), launch(2, small())
    for rc, out, err in finish(a) + finish(b):
        assert rc == 0, err
        assert EPOCH_RE.search(out), out
