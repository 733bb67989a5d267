#!/usr/bin/env bash
# Pod start to exec with an overlay root filesystem (a container from an image, run by crun),
# beside a host-run pod of the same program in the same run (its image not in the store).
# Target (issue 17): < 50 ms. Needs root, crun and overlay.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/trainyard
mkdir -p build/bench
cc -O2 -static -o build/bench/now bench/lib/now.c
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
exec /usr/bin/python3 bench/lib/images_bench.py "$@"
