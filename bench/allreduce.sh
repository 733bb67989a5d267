#!/usr/bin/env bash
# All-reduce bandwidth: the Fashion-MNIST example's C ring all-reduce over TCP versus
# torch.distributed.all_reduce (gloo), 4 ranks, same float32 tensor size, in one run.
# Runs alternate (ours, gloo, ours, gloo, ...) so load from other work on the machine hits both.
# Prints the median algorithm bandwidth (bytes / time of one all-reduce) of each and ours/gloo.
#   bench/allreduce.sh [BYTES (10485760)] [RANKS (4)] [ROUNDS (4)] [ITERS per round (20)]
set -euo pipefail
cd "$(dirname "$0")/.."
bytes=${1:-10485760} ranks=${2:-4} rounds=${3:-4} iters=${4:-20}
make -s build/examples/fashion-mnist
port=$((24000 + RANDOM % 2000))
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
echo "tensor: $bytes bytes float32, ranks=$ranks, rounds=$rounds x iters=$iters"
ours=() gloo=()
for ((i = 0; i < rounds; i++)); do
  line=$(bench/lib/launch.sh -n "$ranks" -p "$port" -- build/examples/fashion-mnist \
           --bench-allreduce "$bytes" --bench-iters "$iters" | grep 'impl=ring-tcp')
  echo "  $line"; ours+=("$(sed 's/.*median_s=\([0-9.]*\).*/\1/' <<<"$line")")
  line=$(bench/lib/launch.sh -n "$ranks" -p "$((port + 1))" -- /usr/bin/python3 bench/lib/gloo_allreduce.py \
           --bytes "$bytes" --iters "$iters" 2>/dev/null | grep 'impl=gloo')
  echo "  $line"; gloo+=("$(sed 's/.*median_s=\([0-9.]*\).*/\1/' <<<"$line")")
done
/usr/bin/python3 - "$bytes" "${ours[*]}" "${gloo[*]}" <<'PY'
import statistics, sys
b = int(sys.argv[1])
o = statistics.median(float(x) for x in sys.argv[2].split())
g = statistics.median(float(x) for x in sys.argv[3].split())
print(f"ours (C ring over TCP): median {o*1e3:.2f} ms  algbw {b/o/1e9:.3f} GB/s")
print(f"gloo (torch.distributed): median {g*1e3:.2f} ms  algbw {b/g/1e9:.3f} GB/s")
print(f"ratio ours/gloo (bandwidth): {g/o:.2f}")
PY
