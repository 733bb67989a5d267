#!/usr/bin/env bash
# The ring all-reduce of the Fashion-MNIST example run as a 4-rank PyTorchJob through
# `trainyard run`: pods in their own network namespaces on trainyard's bridge, MASTER_ADDR the
# master's Service name, against the same job with --no-pod-network (each pod a loopback
# address of the host's namespace, as before issue 17). Runs alternate, so load from other
# work hits both. Target (issue 17): within 10 % of the loopback figure. Needs root.
#   bench/allreduce_pods.sh [BYTES (10485760)] [ROUNDS (3)] [ITERS per run (20)]
set -euo pipefail
cd "$(dirname "$0")/.."
bytes=${1:-10485760} rounds=${2:-3} iters=${3:-20}
make -s build/trainyard build/examples/fashion-mnist
[ "$(id -u)" = 0 ] || { echo "allreduce_pods: needs root (pod network namespaces)" >&2; exit 2; }
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
echo "tensor: $bytes bytes float32, 4 ranks, rounds=$rounds x iters=$iters"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
bin=$PWD/build/examples/fashion-mnist
replica() {
  cat <<EOF
      replicas: $1
      restartPolicy: Never
      template:
        spec:
          containers:
          - name: pytorch
            image: fashion-mnist
            command: [$bin, --bench-allreduce, "$bytes", --bench-iters, "$iters"]
EOF
}
cat > "$dir/job.yaml" <<EOF
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: allreduce}
spec:
  pytorchReplicaSpecs:
    Master:
$(replica 1)
    Worker:
$(replica 3)
EOF
median() { /usr/bin/python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
pods=() loop=()
run() { # prints the master's median seconds of one all-reduce
  build/trainyard run --follow --state-dir "$dir/state-$RANDOM" "$@" "$dir/job.yaml" |
    grep 'allreduce-master-0.*impl=ring-tcp' | sed 's/.*median_s=\([0-9.]*\).*/\1/'
}
for ((i = 0; i < rounds; i++)); do
  s=$(run); echo "  own netns, bridge:   median_s=$s"; pods+=("$s")
  s=$(run --no-pod-network); echo "  loopback addresses:  median_s=$s"; loop+=("$s")
done
p=$(median "${pods[@]}") l=$(median "${loop[@]}")
/usr/bin/python3 - "$bytes" "$p" "$l" <<'PY'
import sys
b, p, l = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"pods in their own netns: median {p*1e3:.2f} ms  algbw {b/p/1e9:.3f} GB/s")
print(f"loopback addresses:      median {l*1e3:.2f} ms  algbw {b/l/1e9:.3f} GB/s")
print(f"own netns / loopback time: {p/l:.3f} (target <= 1.10)")
PY
