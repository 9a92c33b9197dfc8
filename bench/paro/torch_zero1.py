#!/usr/bin/python3
"""The PyTorch peer of paro_bench's NNG (ZeRO-1): the same GPT-style decoder (architecture,
sizes, initial scale, Adam lr 1e-3), trained with DistributedDataParallel over gloo and
torch.distributed.optim.ZeroRedundancyOptimizer (bucket views), gradient accumulation with no_sync over the
same micro-steps, and activation checkpointing per block as paro_bench recomputes each block.
One rank per process; bench/paro/run.sh starts them inside the same emulated cluster
(tools/netem/netem.sh) as paro_bench. Rank 0 prints `torch_zero1_samples_per_s=X`
(steps after --warmup, the slowest rank's time per step).

Usage: torch_zero1.py --rank R --size N --store DIR [--layers 8 --dim 256 --heads 4
       --vocab 2048 --seq 64 --batch 1 --micro-steps 4 --steps 5 --warmup 1]
"""
import argparse
import math
import os
import random
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import checkpoint


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        parts = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = parts[0] @ parts[1].transpose(-2, -1) / math.sqrt(d // self.heads)
        causal = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = att.masked_fill(causal, float("-inf")).softmax(-1)
        y = (att @ parts[2]).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.tok = nn.Embedding(a.vocab, a.dim)
        self.pos = nn.Parameter(torch.randn(a.seq, a.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(a.dim, a.heads) for _ in range(a.layers))
        self.lnf = nn.LayerNorm(a.dim)
        self.head = nn.Linear(a.dim, a.vocab, bias=False)

    def forward(self, tokens):
        x = self.tok(tokens) + self.pos
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=False)
        return self.head(self.lnf(x))


def main():
    p = argparse.ArgumentParser()
    for flag, default in [("--rank", 0), ("--size", 1), ("--layers", 8), ("--dim", 256), ("--heads", 4),
                          ("--vocab", 2048), ("--seq", 64), ("--batch", 1), ("--micro-steps", 4),
                          ("--steps", 5), ("--warmup", 1)]:
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--store", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + os.path.join(a.store, "torch-rendezvous"),
                            rank=a.rank, world_size=a.size)
    torch.manual_seed(0)
    model = DistributedDataParallel(Gpt(a))
    # Bucket views: each rank broadcasts its updated parameters as a few flat buffers, not one
    # tensor at a time (the fastest configuration torch offers here).
    opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.Adam, lr=1e-3,
                                  parameters_as_bucket_view=True)
    rng = random.Random(a.rank)
    times = []
    for step in range(a.warmup + a.steps):
        dist.barrier()
        t0 = time.perf_counter()
        for micro in range(a.micro_steps):
            tokens = torch.tensor([[rng.randrange(a.vocab) for _ in range(a.seq + 1)] for _ in range(a.batch)])
            def run():
                logits = model(tokens[:, :-1])
                loss = F.cross_entropy(logits.reshape(-1, a.vocab), tokens[:, 1:].reshape(-1))
                (loss / a.micro_steps).backward()
            if micro < a.micro_steps - 1:
                with model.no_sync():
                    run()
            else:
                run()
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
        dist.all_reduce(dt, op=dist.ReduceOp.MAX)
        if step >= a.warmup:
            times.append(dt.item())
    if a.rank == 0:
        step_s = sum(times) / len(times)
        print(f"torch_zero1_samples_per_s={a.size * a.micro_steps * a.batch / step_s:.3f} "
              f"torch_zero1_step_s={step_s:.4f} torch={torch.__version__}", flush=True)
    # Tearing gloo down occasionally hung a rank for minutes after the others had left: meet,
    # then leave without it.
    dist.barrier()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
