"""The idle time of a trial slot: an experiment of TRIALS trials, PARALLEL at a time, under
`trainyard server`; each trial notes (in a file) when its process starts and ends, and the gap
of a slot is the time from one trial's end to the start of the next trial to take that slot
(the k-th end is followed by the (k+PARALLEL)-th start). What the controller does in it: the
job's watch event, the trial's end and metrics, the next suggestion, the Trial, its Job, the
pod, the process. MODE=shell: trials of 0.2 s (the controller's cost alone); MODE=fashion-mnist:
the Fashion-MNIST experiment example's trainer (examples/fashion-mnist/experiment.yaml)."""
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
from server_fixture import Server  # noqa: E402


def main():
    mode = os.environ.get("MODE", "shell")
    trials = int(os.environ.get("TRIALS", "20"))
    parallel = int(os.environ.get("PARALLEL", "2"))
    tmp = tempfile.mkdtemp(prefix="ty-gap-")
    times = os.path.join(tmp, "times")
    doc = yaml.safe_load(open(os.path.join(REPO, "examples/fashion-mnist/experiment.yaml")))
    spec = doc["spec"]
    spec["maxTrialCount"], spec["parallelTrialCount"] = trials, parallel
    spec.pop("earlyStopping")  # every trial runs to its end: the slots stay busy
    ct = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    if mode == "shell":
        body = ("sleep 0.2; echo accuracy=${trialParameters.learningRate} "
                "${trialParameters.hiddenUnits} ${trialParameters.batchSize}")
    else:
        body = " ".join([ct["command"][0]] + [f"'{a}'" for a in ct["args"]])
    ct["command"] = ["sh", "-c", f"echo start $(date +%s.%N) >> {times}; {body}; "
                                 f"echo end $(date +%s.%N) >> {times}"]
    ct.pop("args")
    ct["resources"] = {}
    s = Server(os.path.join(tmp, "data")).start()
    try:
        path = os.path.join(tmp, "exp.yaml")
        open(path, "w").write(yaml.safe_dump(doc))
        t0 = time.time()
        s.kubectl("apply", "-f", path)
        while True:
            e = s.json("get", "experiment", "fashion-mnist")
            conds = [c["type"] for c in e.get("status", {}).get("conditions", [])
                     if c["status"] == "True"]
            if "Succeeded" in conds or "Failed" in conds:
                break
            time.sleep(0.2)
        wall = time.time() - t0
    finally:
        s.stop()
        s.reap()
    rows = [line.split() for line in open(times).read().splitlines()]
    starts = sorted(float(t) for k, t in rows if k == "start")
    ends = sorted(float(t) for k, t in rows if k == "end")
    gaps = [starts[k + parallel] - ends[k] for k in range(len(ends))
            if k + parallel < len(starts)]
    gaps.sort()
    print(f"mode={mode} trials={trials} parallel={parallel} succeeded="
          f"{e['status'].get('trialsSucceeded')} wall_s={wall:.1f}")
    print(f"slot idle gap between trials: p50={gaps[len(gaps) // 2] * 1000:.0f} ms "
          f"max={gaps[-1] * 1000:.0f} ms over {len(gaps)} gaps   (target: < 100 ms)")
    best = e["status"]["currentOptimalTrial"]
    print("best:", json.dumps(best["parameterAssignments"]),
          json.dumps(best["observation"]["metrics"]))


main()
