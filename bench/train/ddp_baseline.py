#!/usr/bin/python3
"""The PyTorch peer of bench/train: DistributedDataParallel (gloo) training of the train-ctr click
model on the same rows, global batch, ranks, threads, initial weights and optimizer as the baton
job, with the data already in memory as tensors (loading is not timed). Prints
`ddp_samples_per_s=X` (steady: steps after the first --warmup, all ranks together).

Usage: /usr/bin/python3 ddp_baseline.py ROWS.csv --ranks 2 --global-batch 256 --steps 700
       [--warmup 50] [--lr 0.003] [--threads 1]
"""
import argparse
import os
import socket
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "train-ctr"))


def load(path):
    table = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(1, 18), dtype=np.float64)
    return table[:, 0:8].astype(np.float32), table[:, 8:16].astype(np.int64), \
        table[:, 16:17].astype(np.float32)


def run(rank, args, port, dense, sparse, label):
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel
    from export_model import ClickModel

    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=args.ranks)
    torch.manual_seed(0)  # the weights export_model.py writes (its default seed)
    model = ClickModel(1000)

    class Loss(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, d, s, y):
            return self.inner.loss(d, s, y).mean()

    ddp = DistributedDataParallel(Loss(model))
    optimizer = torch.optim.Adam(ddp.parameters(), lr=args.lr)
    per_rank = args.global_batch // args.ranks
    d = torch.from_numpy(dense[rank::args.ranks])
    s = torch.from_numpy(sparse[rank::args.ranks])
    y = torch.from_numpy(label[rank::args.ranks])
    rows = d.shape[0]
    start = None
    for step in range(args.steps):
        if step == args.warmup:
            dist.barrier()
            start = time.perf_counter()
        i = (step * per_rank) % (rows - per_rank)
        optimizer.zero_grad()
        loss = ddp(d[i:i + per_rank], s[i:i + per_rank], y[i:i + per_rank])
        loss.backward()
        optimizer.step()
    dist.barrier()
    elapsed = time.perf_counter() - start
    if rank == 0:
        sps = (args.steps - args.warmup) * args.global_batch / elapsed
        print(f"ddp_samples_per_s={sps:.0f}")
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--global-batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=700)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before torch loads (OpenBLAS ignores set_num_threads)
    dense, sparse, label = load(args.rows)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    import torch.multiprocessing as mp
    mp.spawn(run, args=(args, port, dense, sparse, label), nprocs=args.ranks, join=True)


if __name__ == "__main__":
    main()
