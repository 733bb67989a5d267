#!/usr/bin/env bash
# Data parallelism must not cost accuracy: trains the Fashion-MNIST example on 1 rank and on
# 4 ranks with the same global batch, seed and flags, and prints both test accuracies and the
# difference in points (target: at most 0.5).
#   bench/accuracy.sh [extra trainer flags...]   (default: the demo configuration)
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build/examples/fashion-mnist
flags=(--epochs 3 --batch 128 --lr 0.1 --hidden 128 --seed 1 --log-every 0 "$@")
echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\""
echo "flags: ${flags[*]}"
t0=$(date +%s.%N)
one=$(env -u RANK -u WORLD_SIZE build/examples/fashion-mnist "${flags[@]}" | sed -n 's/^done .*accuracy=\([0-9.]*\).*/\1/p')
t1=$(date +%s.%N)
four=$(bench/lib/launch.sh -n 4 -p $((26000 + RANDOM % 2000)) -- build/examples/fashion-mnist "${flags[@]}" |
       sed -n 's/^\[0\] done .*accuracy=\([0-9.]*\).*/\1/p')
t2=$(date +%s.%N)
[ -n "$one" ] && [ -n "$four" ] || { echo "accuracy: a run failed (1 rank: '$one', 4 ranks: '$four')" >&2; exit 1; }
/usr/bin/python3 - "$one" "$four" "$t0" "$t1" "$t2" <<'PY'
import sys
one, four, t0, t1, t2 = map(float, sys.argv[1:])
d = (four - one) * 100
print(f"1 rank:  accuracy={one:.4f}  wall_s={t1 - t0:.1f}")
print(f"4 ranks: accuracy={four:.4f}  wall_s={t2 - t1:.1f}")
print(f"difference: {d:+.2f} points ({'ok' if abs(d) <= 0.5 else 'OVER'} against the 0.5 target)")
sys.exit(0 if abs(d) <= 0.5 else 1)
PY
