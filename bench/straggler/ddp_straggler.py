#!/usr/bin/python3
"""The PyTorch peer of bench/straggler: DistributedDataParallel (gloo, Debian's python3-torch)
training one epoch of --rows rows in steps of --global-batch split equally over --ranks ranks,
under the same straggler as the baton job:
  --emulate-us N: after its real forward, each rank sleeps rows x N us (x its slowdown): the
                  emulated setting's compute, as baton's train.straggler.emulate_us_per_sample;
  --slow-rank R --slowdown K [--on-s S --period-s P]: rank R sleeps (K - 1) x its own measured
                  compute (forward + backward), during bursts of S seconds every P when given, as
                  baton's train.straggler.inject;
  --pin: rank r runs on core r mod cores (the real setting pins a hog next to one rank).
Prints `ddp_epoch_s=X`: the epoch's wall time after --warmup steps (scaled to the whole epoch).

Usage: /usr/bin/python3 ddp_straggler.py --model tiny --ranks 4 --rows 38400 --global-batch 128
"""
import argparse
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def active(args, seconds):
    if args.slow_rank < 0 or seconds < 0:
        return False
    if args.period_s > 0:
        return (seconds % args.period_s) < args.on_s
    return True


def run(rank, args, port):
    if args.pin:
        os.sched_setaffinity(0, {rank % os.cpu_count()})
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from models import build, SHAPES

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=args.ranks)
    model = build(args.model)
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=0.001)
    per_rank = args.global_batch // args.ranks
    inputs = SHAPES[args.model][0]
    gen = torch.Generator().manual_seed(rank)
    x = torch.randn(4096, inputs, generator=gen)
    y = (torch.rand(4096, 1, generator=gen) > 0.5).float()
    steps = args.rows // args.global_batch
    started = time.perf_counter()
    start = None
    for step in range(steps):
        if step == args.warmup:
            dist.barrier()
            start = time.perf_counter()
        i = (step * per_rank) % (4096 - per_rank)
        optimizer.zero_grad()
        t0 = time.perf_counter()
        loss = ddp(x[i:i + per_rank], y[i:i + per_rank]).sum() / args.global_batch
        slow = rank == args.slow_rank and active(args, time.perf_counter() - started)
        factor = args.slowdown if slow else 1.0
        # The emulated compute and the injected slowdown before backward, where DDP's all-reduce
        # starts: the peers wait for this rank as they would for a slow forward.
        delay = per_rank * args.emulate_us / 1e6 * factor
        if slow:
            delay += (args.slowdown - 1) * (time.perf_counter() - t0) * 3  # forward ~ 1/3 of it
        if delay > 0:
            time.sleep(delay)
        loss.backward()
        optimizer.step()
    dist.barrier()
    elapsed = time.perf_counter() - start
    if rank == 0:
        print(f"ddp_epoch_s={elapsed * steps / (steps - args.warmup):.3f}")
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "wide"], default="tiny")
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--global-batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--emulate-us", type=float, default=0)
    parser.add_argument("--slow-rank", type=int, default=-1)
    parser.add_argument("--slowdown", type=float, default=1)
    parser.add_argument("--on-s", type=float, default=0)
    parser.add_argument("--period-s", type=float, default=0)
    parser.add_argument("--pin", action="store_true")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # before torch loads (OpenBLAS ignores set_num_threads)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    import torch.multiprocessing as mp
    mp.spawn(run, args=(args, port), nprocs=args.ranks, join=True)


if __name__ == "__main__":
    main()
