#!/usr/bin/python3
"""torch.distributed.all_reduce (gloo) on a float32 tensor, timed like the C ring's
--bench-allreduce mode: a tiny all-reduce as a barrier, then the timed one; rank 0 prints the
median. Environment: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (bench/lib/launch.sh sets them)."""
import argparse
import os
import statistics
import time

os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
import torch
import torch.distributed as dist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, default=10 * 1024 * 1024)
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="env://")
    rank, world = dist.get_rank(), dist.get_world_size()
    n = a.bytes // 4
    base = torch.arange(n, dtype=torch.float32).remainder_(1000)
    token = torch.ones(1)
    times = []
    for it in range(-2, a.iters):
        data = base + rank
        dist.all_reduce(token)
        t0 = time.perf_counter()
        dist.all_reduce(data)
        dt = time.perf_counter() - t0
        if it == -2:
            want = base * world + world * (world - 1) // 2
            assert torch.equal(data, want), "gloo all_reduce gave a wrong result"
        if it >= 0:
            times.append(dt)
    med = statistics.median(times)
    if rank == 0:
        print(f"allreduce impl=gloo ranks={world} bytes={n * 4} iters={a.iters} "
              f"median_s={med:.6f} algbw_GBps={n * 4 / med / 1e9:.3f}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
