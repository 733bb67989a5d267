"""The Katib examples through `trainyard server`: every example is accepted as it is (server
dry run), and the Fashion-MNIST experiment, with a smaller budget, finds a trial that beats the
demo's defaults. Slow (about a minute, real training): not in the ASan list."""
import os

import pytest
import yaml

from conftest import REPO, kill_all, wait_until
from server_fixture import Server
from test_experiments import apply, cond, trials_of, value, wait_done

EXAMPLES = ["examples/fashion-mnist/experiment.yaml", "examples/katib/pytorchjob-experiment.yaml",
            "examples/katib/queued-experiment.yaml"]
# examples/fashion-mnist/pytorchjob.yaml's settings (lr 0.1, hidden 128, batch 128, 3 epochs)
# reach this test accuracy with seed 1
DEMO_ACCURACY = 0.8689


@pytest.fixture
def server(tmp_path, marker, monkeypatch):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()
    s.reap()
    kill_all(marker)


def test_examples_are_accepted(server):
    for path in EXAMPLES:
        p = server.kubectl("apply", "--dry-run=server", "-f", os.path.join(REPO, path))
        assert "(server dry run)" in p.stdout, p.stdout


@pytest.mark.skipif(not os.path.exists(os.path.join(REPO, "build/examples/fashion-mnist")),
                    reason="make build/examples/fashion-mnist first")
def test_fashion_mnist_experiment_beats_the_demo(server, marker, tmp_path):
    doc = yaml.safe_load(open(os.path.join(REPO, EXAMPLES[0])))
    doc["spec"]["maxTrialCount"] = 4  # the example's 12 take several minutes
    job = doc["spec"]["trialTemplate"]["trialSpec"]
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MARKER",
                                                                "value": marker}]
    apply(server, tmp_path, doc)
    e = wait_done(server, "fashion-mnist", timeout=240)
    assert cond(e, "Succeeded")["reason"] == "ExperimentMaxTrialsReached", e["status"]
    best = e["status"]["currentOptimalTrial"]
    acc = {m["name"]: float(m["max"]) for m in best["observation"]["metrics"]}["accuracy"]
    print("best trial:", best["parameterAssignments"], acc)
    assert acc > DEMO_ACCURACY, best
    for t in trials_of(server, "fashion-mnist"):
        # three epochs reported, unless stopped early
        n = len([r for r in t["status"]["observationLog"] if r["name"] == "accuracy"])
        assert n >= 3 or cond(t, "EarlyStopped"), t["status"]
