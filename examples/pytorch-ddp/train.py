#!/usr/bin/python3
"""Fashion-MNIST with PyTorch DistributedDataParallel over gloo, for trainyard's PyTorchJob.

Reads the idx.gz files of Debian's dataset-fashion-mnist directly (no downloads) and trains a
small MLP. Process group from the environment Kubeflow's training operator sets (env://:
MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK); WORLD_SIZE unset runs alone. Prints, per epoch,
    epoch=N/M loss=L accuracy=A
with accuracy measured on the whole test set (each rank evaluates a slice; counts are summed).
"""
import argparse
import gzip
import os
import signal
import sys
import time

# Gloo picks its interface from the host name unless told. A pod with its own network (trainyard
# as root) has its hostname at its address in /etc/hosts, as in Kubernetes; pods on loopback
# addresses (POD_IP 127.x) share the host's namespace, where loopback is sure to join them.
if os.environ.get("POD_IP", "127.").startswith("127."):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


def load_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    dims = magic & 0xFF
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte idx file (magic {magic:#x})")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, prefix):
    x = load_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = load_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(y.astype(np.int64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256, help="global batch (split over ranks)")
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    # Exit promptly and visibly on SIGTERM (trainyard/kubelet stop pods with it).
    signal.signal(signal.SIGTERM, lambda *_: (print("train.py: received SIGTERM, exiting",
                                                    file=sys.stderr, flush=True), os._exit(143)))
    torch.set_num_threads(1)  # several ranks share the machine's cores
    torch.manual_seed(a.seed)

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo", init_method="env://")
    rank = dist.get_rank() if world > 1 else 0
    t_start = time.time()
    xtr, ytr = load(a.data_dir, "train")
    xte, yte = load(a.data_dir, "t10k")
    print(f"pytorch-ddp rank={rank} world={world} epochs={a.epochs} batch={a.batch} lr={a.lr} "
          f"train={len(xtr)} test={len(xte)}", flush=True)

    model = nn.Sequential(nn.Linear(784, a.hidden), nn.ReLU(), nn.Linear(a.hidden, 10))
    # Same seed everywhere gives the same initial weights; DDP also broadcasts rank 0's.
    ddp = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.SGD(ddp.parameters(), lr=a.lr, momentum=0.9)
    local = a.batch // world
    g = torch.Generator().manual_seed(a.seed)
    for epoch in range(a.epochs):
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=g)  # same order on every rank
        ddp.train()
        loss_sum = torch.zeros(2)
        steps = len(xtr) // a.batch
        for step in range(steps):
            idx = perm[step * a.batch + rank * local: step * a.batch + (rank + 1) * local]
            out = ddp(xtr[idx])
            loss = F.cross_entropy(out, ytr[idx])
            opt.zero_grad()
            loss.backward()  # DDP averages the gradients across ranks here
            opt.step()
            loss_sum += torch.tensor([loss.item() * len(idx), len(idx)])
        ddp.eval()
        lo, hi = len(xte) * rank // world, len(xte) * (rank + 1) // world
        with torch.no_grad():
            correct = (model(xte[lo:hi]).argmax(1) == yte[lo:hi]).sum().item()
        stats = torch.tensor([loss_sum[0].item(), loss_sum[1].item(), float(correct)])
        if world > 1:
            dist.all_reduce(stats)
        print(f"epoch={epoch + 1}/{a.epochs} loss={stats[0] / stats[1]:.4f} "
              f"accuracy={stats[2] / len(xte):.4f} time_s={time.time() - t0:.2f}", flush=True)
    print(f"done epochs={a.epochs} total_s={time.time() - t_start:.2f}", flush=True)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
