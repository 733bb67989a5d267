#!/usr/bin/env bash
# Pods with their own network (issue 17), each figure beside its baseline in the same run:
#   1. `trainyard run` start to the pod's exec with its own network namespace, vs the same run
#      with --no-pod-network (loopback addresses in the host's namespace); the runs alternate
#      (RUNS each, default 20). Target: < 50 ms with its own netns (and an overlay rootfs, which
#      comes with images).
#   2. A 100-replica job of `true`, whole run, both ways (HUNDRED_RUNS each, default 3).
#   3. Pod-to-pod TCP throughput (BYTES, default 512 MiB, one stream of 1 MiB writes between
#      two Python processes) through the bridge, vs the same pods over loopback in one
#      namespace (TPUT_RUNS each, default 5). Target: >= 0.8x.
# Needs root (without it both modes are loopback and the comparison says nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/trainyard
if [ "$(id -u)" != 0 ]; then
    echo "bench/podstart.sh: needs root (pods get their own network only as root)" >&2
    exit 1
fi
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
exec /usr/bin/python3 bench/lib/podstart.py "$@"
