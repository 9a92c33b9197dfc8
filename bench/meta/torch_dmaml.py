#!/usr/bin/python3
"""The naive distributed-MAML peer of baton's G-Meta (src/meta/): first-order MAML over the
meta-ctr click model in eager PyTorch 1.13 with torch.distributed (gloo), one rank per process.

The model is examples/meta-ctr/export_model.py's MetaClickModel (bottom MLP over the dense
features -> dim, pairwise dot products of that vector and the F embedding rows, top MLP -> logit,
mean BCE-with-logits), written functionally (F.linear on an explicit parameter list) so that the
inner loop can run it on adapted copies.

What it deliberately does naively -- the issue's definition of the baseline ("DDP, replicated
embeddings, lookups and gradient all-reduce in every inner step, episodes grouped on the fly"):
  * Replicated embeddings: every rank holds the full nn.Embedding(V, dim) table of each of the 4
    sparse fields, and every backward yields a dense [V, dim] gradient per table, as DDP gives for
    a dense nn.Embedding.
  * --sync every-inner-step (default): after EVERY backward -- each inner step's support gradient
    and each task's query gradient -- the gradients of all parameters, the full table gradients
    included, are all-reduced (SUM, then / W), as DDP does when MAML's inner loop backpropagates
    through the DDP-wrapped module. The gradients of one backward go as one flat buffer (DDP's
    bucketing would coalesce them alike at these sizes). This also averages the inner-loop
    gradients across ranks, which changes the inner-loop math: that is DDP's behaviour, and fine
    for a throughput baseline. --sync once: one all-reduce per meta-step (of the summed query
    meta-gradients), a less naive variant.
  * Episodes grouped on the fly: every epoch re-reads the CSV (csv module), groups rows by task in a
    dict, sorts each task by ts and splits it into support (the first floor(n*f), clamped to
    [1, n-1]) and query, then shuffles the tasks (seed + epoch). That time counts in the run time.

How baton's G-Meta differs: its tables are row-sharded over the ranks (not replicated), each
meta-step does one deduplicated lookup of the rows its episodes touch and one all-to-all of their
gradients (not a dense whole-table all-reduce per backward), the inner loop is local to each task,
and episodes come pre-grouped from Meta-IO episode files (baton meta prepare), not from the raw
CSV every epoch.

Outer update: dense MLP parameters with torch.optim.Adam(lr=outer_lr); the tables with
torch.optim.Adagrad(lr=sparse_lr) on their dense gradient (rows no task touched get a zero
gradient, hence no change). The meta-gradient is averaged over the global meta-batch.
Meta-batches: W*B tasks per meta-step, rank r takes tasks [s*W*B + r*B, s*W*B + (r+1)*B). An
incomplete last meta-step (fewer than W*B tasks left) is dropped on all ranks, so every rank issues
the same all-reduces; torch_tasks counts only the tasks trained.

Rank 0 prints key=value lines on stdout (torch_tasks_per_s, torch_seconds, torch_tasks,
torch_allreduces_per_step, torch_table_floats, torch_final_loss) and the mean query loss of the
first and last meta-steps on stderr.

Usage: /usr/bin/python3 torch_dmaml.py --rows TRAIN.csv --rank R --size W --master-port P
       [--epochs 1] [--tasks-per-step 8] [--inner-steps 1] [--inner-lr 0.1] [--outer-lr 0.003]
       [--sparse-lr 0.05] [--vocab V] [--dim 8] [--hidden 32] [--support-fraction 0.5]
       [--sync every-inner-step|once] [--seed 1]
"""
import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

NUM_DENSE = 4
NUM_SPARSE = 4


class ClickModel(nn.Module):
    """MetaClickModel's architecture with the embedding tables held (replicated) in the model."""

    def __init__(self, vocab: int, dim: int, hidden: int):
        super().__init__()
        n = NUM_SPARSE + 1
        li, lj = torch.triu_indices(n, n, offset=1)
        self.register_buffer("li", li)
        self.register_buffer("lj", lj)
        self.bottom1, self.bottom2 = nn.Linear(NUM_DENSE, hidden), nn.Linear(hidden, dim)
        self.top1, self.top2 = nn.Linear(dim + n * (n - 1) // 2, hidden), nn.Linear(hidden, 1)
        self.tables = nn.ModuleList(nn.Embedding(vocab, dim) for _ in range(NUM_SPARSE))
        for t in self.tables:  # baton's initial rows: uniform in [-0.05, 0.05]
            nn.init.uniform_(t.weight, -0.05, 0.05)

    def dense_params(self):
        return [p for layer in (self.bottom1, self.bottom2, self.top1, self.top2)
                for p in (layer.weight, layer.bias)]

    def table_params(self):
        return [t.weight for t in self.tables]

    def loss(self, params, sparse, dense, labels):
        """params: the 8 dense tensors then the 4 tables; sparse [N, F] row ids."""
        emb = torch.stack([F.embedding(sparse[:, f], params[8 + f]) for f in range(NUM_SPARSE)],
                          dim=1)  # [N, F, D]
        x = F.relu(F.linear(dense, params[0], params[1]))
        x = F.relu(F.linear(x, params[2], params[3]))
        t = torch.cat([x.unsqueeze(1), emb], dim=1)  # [N, F+1, D]
        z = torch.bmm(t, t.transpose(1, 2))
        pairs = z[:, self.li, self.lj]
        h = F.relu(F.linear(torch.cat([x, pairs], dim=1), params[4], params[5]))
        logits = F.linear(h, params[6], params[7]).squeeze(1)
        return F.binary_cross_entropy_with_logits(logits, labels)


def group_episodes(path, vocab, fraction):
    """Reads the CSV and groups it into episodes: [(support, query)], each (sparse, dense, labels)."""
    by_task = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        ti, tsi, li = col["task"], col["ts"], col["label"]
        di = [col[f"d{i}"] for i in range(NUM_DENSE)]
        ci = [col[f"c{i}"] for i in range(NUM_SPARSE)]
        for row in reader:
            by_task.setdefault(row[ti], []).append(
                (float(row[tsi]), [float(row[i]) for i in di], [int(row[i]) % vocab for i in ci],
                 float(row[li])))
    episodes = []
    for rows in by_task.values():
        n = len(rows)
        if n < 2:
            continue  # no support/query split possible
        rows.sort(key=lambda r: r[0])
        k = min(max(int(math.floor(n * fraction)), 1), n - 1)

        def pack(part):
            return (torch.tensor([r[2] for r in part], dtype=torch.long),
                    torch.tensor([r[1] for r in part], dtype=torch.float32),
                    torch.tensor([r[3] for r in part], dtype=torch.float32))
        episodes.append((pack(rows[:k]), pack(rows[k:])))
    return episodes


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", required=True)
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--master-port", type=int, required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--tasks-per-step", type=int, default=8)
    p.add_argument("--inner-steps", type=int, default=1)
    p.add_argument("--inner-lr", type=float, default=0.1)
    p.add_argument("--outer-lr", type=float, default=0.003)
    p.add_argument("--sparse-lr", type=float, default=0.05)
    p.add_argument("--vocab", type=int, default=400)
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--support-fraction", type=float, default=0.5)
    p.add_argument("--sync", choices=["every-inner-step", "once"], default="every-inner-step")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.master_port}",
                            rank=a.rank, world_size=a.size)
    W, B, rank = a.size, a.tasks_per_step, a.rank

    torch.manual_seed(a.seed)  # same seed on every rank: identical replicas
    model = ClickModel(a.vocab, a.dim, a.hidden)
    dense_params, table_params = model.dense_params(), model.table_params()
    params = dense_params + table_params
    dense_opt = torch.optim.Adam(dense_params, lr=a.outer_lr)
    table_opt = torch.optim.Adagrad(table_params, lr=a.sparse_lr)
    table_floats = sum(t.numel() for t in table_params)
    every = a.sync == "every-inner-step"
    allreduces = 0

    def all_reduce_mean(grads):
        """One all-reduce of all gradients as a flat buffer (SUM / W)."""
        nonlocal allreduces
        allreduces += 1
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= W
        out, at = [], 0
        for g in grads:
            out.append(flat[at:at + g.numel()].view_as(g))
            at += g.numel()
        return out

    step_losses = []  # this rank's mean query loss per meta-step
    steps_done = 0
    dist.barrier()
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        episodes = group_episodes(a.rows, a.vocab, a.support_fraction)  # on the fly, timed
        random.Random(a.seed + epoch).shuffle(episodes)
        for s in range(len(episodes) // (W * B)):  # the incomplete last meta-step is dropped
            mine = episodes[s * W * B + rank * B: s * W * B + (rank + 1) * B]
            meta = [torch.zeros_like(q) for q in params]
            loss_sum = 0.0
            for (support, query) in mine:
                phi = [q.detach().requires_grad_() for q in params]
                for _ in range(a.inner_steps):
                    loss = model.loss(phi, *support)
                    grads = torch.autograd.grad(loss, phi)
                    if every:
                        grads = all_reduce_mean(grads)
                    phi = [(q - a.inner_lr * g).detach().requires_grad_()
                           for q, g in zip(phi, grads)]
                qloss = model.loss(phi, *query)
                grads = torch.autograd.grad(qloss, phi)  # FOMAML: gradient at the adapted params
                if every:
                    grads = all_reduce_mean(grads)
                for m, g in zip(meta, grads):
                    m += g
                loss_sum += qloss.item()
            if every:
                scale = 1.0 / B  # meta holds sum over my B tasks of rank-averaged gradients
            else:
                meta = all_reduce_mean(meta)  # sum over the global batch / W
                scale = 1.0 / B
            for q, m in zip(params, meta):
                q.grad = m * scale
            dense_opt.step()
            table_opt.step()
            step_losses.append(loss_sum / len(mine))
            steps_done += 1
    dist.barrier()
    seconds = time.perf_counter() - t0

    # Global mean query loss per meta-step, gathered after the timed section.
    losses = torch.tensor(step_losses, dtype=torch.float64)
    dist.all_reduce(losses, op=dist.ReduceOp.SUM)
    losses /= W
    tasks = steps_done * W * B
    if rank == 0:
        n = len(losses)
        tenth = max(1, n // 10)
        if n:
            print(f"torch_dmaml: query loss first step {losses[0]:.4f} last step {losses[-1]:.4f}; "
                  f"first {tenth} steps {losses[:tenth].mean():.4f} last {tenth} steps "
                  f"{losses[-tenth:].mean():.4f} ({n} meta-steps)", file=sys.stderr, flush=True)
        print(f"torch_tasks_per_s={tasks / seconds:.3f}")
        print(f"torch_seconds={seconds:.4f}")
        print(f"torch_tasks={tasks}")
        print(f"torch_allreduces_per_step={allreduces / max(steps_done, 1):g}")
        print(f"torch_table_floats={table_floats}")
        print(f"torch_final_loss={losses[-1].item() if n else float('nan'):.6f}")
        sys.stdout.flush()
    # As bench/paro/torch_zero1.py: tearing gloo down can hang a rank on 1.13; meet, then leave.
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
