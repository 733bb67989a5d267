#!/usr/bin/env bash
# trainyard's own overhead, each figure beside a baseline measured in the same run:
#   1. `trainyard run` start to the first replica's exec, vs starting the same program directly
#   2. a 100-replica job of `true`, vs starting 100 `true` processes directly
#   3. trainyard's RSS while the Fashion-MNIST example runs, vs the RSS of one training rank
# Targets (issue 2): < 20 ms, < 1 s, < 10 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/trainyard build/examples/fashion-mnist
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
exec /usr/bin/python3 bench/lib/overhead.py "$@"
