#!/usr/bin/env bash
# One scheduling pass of src/sched at cluster scale (issue 4): NODES nodes of 8 GPUs, WORKLOADS
# pending gang workloads whose GPU counts and queues are drawn from the Philly trace, 30 % of
# the GPUs already held by admitted workloads. Prints pods/s over R passes (each on a freshly
# built snapshot, pinned to one core) beside ty_sched_plain_pass() over the same snapshot.
# Target (issue 4): >= 20,000 pods/s on one core. Then the same at CONTENDED_PCT % (0: skip).
#   NODES=5000 WORKLOADS=10000 R=10 CONTENDED_PCT=60 TRACE=/work/shared/data/traces/philly.csv
#   ARGS="--fair-sharing" (or --no-preemption, --admitted-pct P, --seed S) pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/libtrainyard.a
# The core needs none of these; the archive's other objects that it may pull in do.
read -ra libs <<<"$(pkg-config --libs libuv yaml-0.1 jansson sqlite3)"
mkdir -p build/bench
cc -std=gnu17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wno-missing-field-initializers -Isrc -D_GNU_SOURCE -o build/bench/sched_bench \
    bench/lib/sched_bench.c build/libtrainyard.a "${libs[@]}" -ldl -lm
trace=${TRACE:-/work/shared/data/traces/philly.csv}
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
build/bench/sched_bench selftest --trace "$trace"
# shellcheck disable=SC2086 # ARGS is a list of options
build/bench/sched_bench gen --trace "$trace" --nodes "${NODES:-5000}" \
    --workloads "${WORKLOADS:-10000}" ${ARGS:-} | grep -v '^cluster:'
echo "== the issue's pass: 30 % of the GPUs already admitted"
# shellcheck disable=SC2086
taskset -c 0 build/bench/sched_bench run --trace "$trace" --nodes "${NODES:-5000}" \
    --workloads "${WORKLOADS:-10000}" --reps "${R:-10}" ${ARGS:-}
# The same workloads onto a fuller cluster, where gangs wait, reserve nodes and preempt.
if [ "${CONTENDED_PCT:-60}" != 0 ]; then
    echo "== contended: ${CONTENDED_PCT:-60} % of the GPUs already admitted"
    # shellcheck disable=SC2086
    taskset -c 0 build/bench/sched_bench run --trace "$trace" --nodes "${NODES:-5000}" \
        --workloads "${WORKLOADS:-10000}" --reps "${R:-10}" \
        --admitted-pct "${CONTENDED_PCT:-60}" ${ARGS:-} | grep -v '^for scale'
fi
