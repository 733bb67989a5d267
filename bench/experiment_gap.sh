#!/usr/bin/env bash
# Issue 15's target: a trial starts as soon as another ends (no idle slot > 100 ms between
# trials). Runs the Fashion-MNIST experiment's shape (TRIALS=20 trials, PARALLEL=2) under
# `trainyard server` and prints the p50 and max gap beside the 100 ms target.
#   MODE=shell (default: 0.2 s trials, the controller's cost alone) or MODE=fashion-mnist
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/trainyard build/examples/fashion-mnist
echo "machine: nproc=$(nproc) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
exec /usr/bin/python3 bench/lib/experiment_gap.py
