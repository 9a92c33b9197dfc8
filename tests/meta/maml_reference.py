#!/usr/bin/python3
"""MAML written independently in plain PyTorch, to check baton's meta-step (src/meta/) against.

Redoes the run meta_test_worker --dump recorded (its tasks, the initial embedding rows, inner
and outer learning rates, first or second order, which parameters adapt; outer and sparse SGD)
with torch.autograd.grad over the whole table, and compares the final dense parameters and
embedding rows with baton's. Exits 0 when the largest relative difference is at most 1e-10.

Usage: /usr/bin/python3 maml_reference.py MODEL.pt DUMP.json
"""
import json
import sys

import torch


def main() -> int:
    model = torch.jit.load(sys.argv[1])
    with open(sys.argv[2]) as f:
        run = json.load(f)
    num_dense, num_sparse, dim = model.shape()
    theta = [p.detach().clone() for p in model.initial_params()]
    rows = {int(k): torch.tensor(v, dtype=torch.float64) for k, v in run["initial_rows"].items()}
    adapt_dense = run["adapt"] in ("dense", "all")
    adapt_embedding = run["adapt"] in ("embedding", "all")
    alpha = run["inner_lr"]
    for tasks in run["steps"]:
        ids = sorted({i for t in tasks for i in t["sparse"]})
        where = {i: k for k, i in enumerate(ids)}
        leaves = [p.clone().requires_grad_(True) for p in theta]
        table = torch.stack([rows[i] for i in ids]).requires_grad_(True)
        for t in tasks:
            n = len(t["labels"])
            s = t["num_support"]
            pos = torch.tensor([where[i] for i in t["sparse"]]).view(n, num_sparse)
            dense = torch.tensor(t["dense"], dtype=torch.float64).view(n, num_dense)
            labels = torch.tensor(t["labels"], dtype=torch.float64)
            phi, e = list(leaves), table
            for _ in range(run["inner_steps"]):
                loss = model.loss(phi, e[pos[:s]], dense[:s], labels[:s])
                inputs = (phi if adapt_dense else []) + ([e] if adapt_embedding else [])
                grads = torch.autograd.grad(loss, inputs, create_graph=run["second_order"],
                                            allow_unused=True)
                if adapt_dense:
                    phi = [p - alpha * g if g is not None else p
                           for p, g in zip(phi, grads[:len(phi)])]
                if adapt_embedding and grads[-1] is not None:
                    e = e - alpha * grads[-1]
            model.loss(phi, e[pos[s:]], dense[s:], labels[s:]).backward()
        with torch.no_grad():
            theta = [p - run["outer_lr"] * leaf.grad / len(tasks)
                     for p, leaf in zip(theta, leaves)]
            for i in ids:
                rows[i] = rows[i] - run["sparse_lr"] * table.grad[where[i]] / len(tasks)

    def relative(got, want):
        return ((got - want).abs() / want.abs().clamp(min=1.0)).max().item()

    worst = relative(torch.tensor(run["final_theta"], dtype=torch.float64),
                     torch.cat([p.reshape(-1) for p in theta]))
    moved = (torch.cat([p.reshape(-1) for p in theta]) -
             torch.cat([p.reshape(-1) for p in model.initial_params()])).abs().max().item()
    for k, v in run["final_rows"].items():
        worst = max(worst, relative(torch.tensor(v, dtype=torch.float64), rows[int(k)]))
    print(f"worst relative difference {worst:.3g}; parameters moved {moved:.3g}")
    return 0 if worst <= 1e-10 and moved > 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
