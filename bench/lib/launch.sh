#!/usr/bin/env bash
# Starts N ranks of a command with the environment trainyard (like Kubeflow's training operator)
# gives a PyTorchJob: every rank gets its own loopback address as POD_IP, rank 0's is MASTER_ADDR.
#   bench/lib/launch.sh [-n N] [-p PORT] [-a 127.X.Y] -- command args...
# Output lines are prefixed with [rank]. Exits with the first non-zero rank status (0 if all ok); the ranks notice a dead peer themselves.
# Lives in bench/lib/ so that `make bench`, which runs every bench/*.sh, does not run it.
set -u
n=4 port=${MASTER_PORT:-23456} net=127.16.$((RANDOM % 200 + 20))
while [ $# -gt 0 ]; do
  case $1 in
    -n) n=$2; shift 2 ;;
    -p) port=$2; shift 2 ;;
    -a) net=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [-n N] [-p PORT] [-a 127.X.Y] -- command args..." >&2; exit 2; }
pids=()
for ((r = 0; r < n; r++)); do
  ( export POD_IP=$net.$((r + 2)) MASTER_ADDR=$net.2 MASTER_PORT=$port WORLD_SIZE=$n RANK=$r \
           PET_NNODES=$n PET_NODE_RANK=$r PET_NPROC_PER_NODE=1
    exec "$@" ) > >(sed -u "s/^/[$r] /") 2> >(sed -u "s/^/[$r] /" >&2) &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do
  wait "$p"; s=$?
  [ $rc -eq 0 ] && rc=$s
done
wait
exit $rc
