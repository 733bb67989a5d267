#!/usr/bin/env bash
# Issue 15's targets for src/hpo: (1) quality beside Optuna with the same budget: six test
# functions, SEEDS seeds x TRIALS trials, trainyard's tpe, cmaes and random each against Optuna's
# TPESampler, CmaEsSampler and RandomSampler by a one-sided Mann-Whitney U test over the seeds,
# and the GP (bayesianoptimization) against random; (2) the suggestion for trial 1,000 of a
# 10-parameter space (target < 1 ms) beside Optuna's TPE at the same depth (CPU time, medians).
#   SEEDS=20 TRIALS=100 (QUICK=1: SEEDS=5, the GP on 5 seeds too)   needs python3-optuna
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/libtrainyard.a
read -ra libs <<<"$(pkg-config --libs libuv yaml-0.1 jansson sqlite3)"
mkdir -p build/bench
cc -std=gnu17 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wno-missing-field-initializers -Isrc -D_GNU_SOURCE -o build/bench/hpo_bench \
    bench/lib/hpo_bench.c build/libtrainyard.a "${libs[@]}" -ldl -lm
py=/usr/bin/python3
if [ "${QUICK:-0}" = 1 ]; then seeds=${SEEDS:-5}; else seeds=${SEEDS:-20}; fi
trials=${TRIALS:-100}
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
echo "optuna: $($py -c 'import optuna; print(optuna.__version__)')"
out=build/bench/hpo
rm -rf "$out" && mkdir -p "$out"
echo "== quality: $seeds seeds x $trials trials (best value found; lower is better)"
for a in tpe cmaes random bayesianoptimization multivariate-tpe sobol; do
    build/bench/hpo_bench quality "$a" all "$seeds" "$trials" >"$out/ty-$a.txt" 2>>"$out/timing.txt"
done
for s in tpe cmaes random; do
    $py bench/lib/hpo_optuna.py quality "$s" all "$seeds" "$trials" 2>>"$out/timing.txt" |
        sed "s/ $s / optuna-$s /" >"$out/optuna-$s.txt"
done
rc=0
$py bench/lib/hpo_ranktest.py "$out"/*.txt || rc=1
echo "== CPU time per run of $trials trials (ms)"
sort "$out/timing.txt" | column -t
echo "== cost of the suggestion for trial 1,000 of 10 parameters (CPU time, median)"
build/bench/hpo_bench cost tpe 10 1000 31
build/bench/hpo_bench cost multivariate-tpe 10 1000 11
build/bench/hpo_bench cost random 10 1000 31
$py bench/lib/hpo_optuna.py cost 10 1000 5
exit $rc
