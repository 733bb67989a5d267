"""Writes the input HeliosArtifact's QSSF simulator reads (data/Philly/cluster_log.csv and
vc_dict_homo.pkl, plus the empty estimator table its start-up loads) from the shared
philly.csv and philly_vc.csv, so that bench/simulate.sh can run it on the same jobs.
Usage: /usr/bin/python3 bench/lib/helios_input.py TRACES_DIR HELIOS_DIR
(HELIOS_DIR: a copy of "framework/QSSF Service"; it needs pandas: apt python3-pandas)."""
import csv
import os
import pickle
import sys

traces, out = sys.argv[1], sys.argv[2]
os.makedirs(f"{out}/data/Philly", exist_ok=True)
rows = list(csv.DictReader(open(f"{traces}/philly.csv")))
with open(f"{out}/data/Philly/cluster_log.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["user", "vc", "jobname", "gpu_num", "state", "submit_time", "duration"])
    # sorted by submit time as Helios' own log_process.py leaves it (file order among equals)
    for r in sorted(rows, key=lambda r: r["timestamp"]):
        w.writerow(["u", r["cluster"], "j", r["num_gpus"], "Pass", r["timestamp"],
                    int(float(r["duration"]))])
vcs = {r["vc"]: int(r["node num"]) for r in csv.DictReader(open(f"{traces}/philly_vc.csv"))}
with open(f"{out}/data/Philly/vc_dict_homo.pkl", "wb") as f:
    pickle.dump(vcs, f)
# PhillyEstimator reads this table at start-up; FIFO and SJF never look into it.
if not os.path.exists(f"{out}/estimators/Philly_lgb.csv"):
    os.makedirs(f"{out}/estimators", exist_ok=True)
    with open(f"{out}/estimators/Philly_lgb.csv", "w") as f:
        f.write("jobname,priority\n")
print(f"{len(rows)} jobs, {len(vcs)} vcs written under {out}")
