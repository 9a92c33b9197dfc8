#!/usr/bin/python3
"""Exports the meta-ctr example's click model (a small DLRM) as TorchScript for G-Meta (kind: meta).

Unlike train-ctr's model, this one holds no embedding tables (baton shards the rows over the ranks
and hands the model the rows it needs) and is functional in its dense parameters, so that MAML's
inner loop can run it on adapted copies (src/meta/meta_model.h):

  shape() -> [num_dense, num_sparse, embedding_dim]
  initial_params() -> List[Tensor]        the bottom and top MLPs' weights and biases, seeded
  logits(params, emb [N,F,D], dense [N,num_dense]) -> [N]
  loss(params, emb, dense, labels [N]) -> mean binary cross-entropy (a scalar)
  batched_logits, batched_loss: the same for T tasks at once (optional; see below)

The network: a bottom MLP over the dense features (num_dense -> hidden -> D, ReLU), the pairwise
dot products of that vector and the F embedding rows, and a top MLP (D + pairs -> hidden -> 1).

Usage: /usr/bin/python3 export_model.py OUT.pt [--dense 4] [--sparse 4] [--dim 8] [--hidden 32]
       [--dtype float32|float64] [--seed 0]
"""
import argparse
import os
from typing import List

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class MetaClickModel(nn.Module):
    def __init__(self, num_dense: int, num_sparse: int, dim: int, hidden: int):
        super().__init__()
        self.num_dense, self.num_sparse, self.dim = num_dense, num_sparse, dim
        n = num_sparse + 1
        li, lj = torch.triu_indices(n, n, offset=1)
        self.register_buffer("li", li)
        self.register_buffer("lj", lj)
        bottom1, bottom2 = nn.Linear(num_dense, hidden), nn.Linear(hidden, dim)
        top1, top2 = nn.Linear(dim + n * (n - 1) // 2, hidden), nn.Linear(hidden, 1)
        self.weights = nn.ParameterList(
            [p for layer in (bottom1, bottom2, top1, top2) for p in (layer.weight, layer.bias)])

    @torch.jit.export
    def shape(self) -> List[int]:
        return [self.num_dense, self.num_sparse, self.dim]

    @torch.jit.export
    def initial_params(self) -> List[Tensor]:
        out: List[Tensor] = []
        for p in self.weights:
            out.append(p)
        return out

    @torch.jit.export
    def logits(self, params: List[Tensor], emb: Tensor, dense: Tensor) -> Tensor:
        x = F.relu(F.linear(dense, params[0], params[1]))
        x = F.relu(F.linear(x, params[2], params[3]))
        t = torch.cat([x.unsqueeze(1), emb], dim=1)  # [N, F+1, D]
        z = torch.bmm(t, t.transpose(1, 2))           # [N, F+1, F+1]
        pairs = z[:, self.li, self.lj]
        h = F.relu(F.linear(torch.cat([x, pairs], dim=1), params[4], params[5]))
        return F.linear(h, params[6], params[7]).squeeze(1)

    @torch.jit.export
    def loss(self, params: List[Tensor], emb: Tensor, dense: Tensor, labels: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.logits(params, emb, dense), labels)

    # The same for T tasks at once (what baton runs when the model has it: one pass for a whole
    # meta-batch instead of one per task). Every parameter carries a leading task dimension (each
    # task adapts its own copy); rows are padded to a common count, `mask` [T, N] marking the real
    # ones.
    @torch.jit.export
    def batched_logits(self, params: List[Tensor], emb: Tensor, dense: Tensor) -> Tensor:
        x = F.relu(torch.baddbmm(params[1].unsqueeze(1), dense, params[0].transpose(1, 2)))
        x = F.relu(torch.baddbmm(params[3].unsqueeze(1), x, params[2].transpose(1, 2)))
        t = torch.cat([x.unsqueeze(2), emb], dim=2)   # [T, N, F+1, D]
        z = torch.matmul(t, t.transpose(2, 3))         # [T, N, F+1, F+1]
        pairs = z[:, :, self.li, self.lj]
        h = F.relu(torch.baddbmm(params[5].unsqueeze(1), torch.cat([x, pairs], dim=2),
                                 params[4].transpose(1, 2)))
        return torch.baddbmm(params[7].unsqueeze(1), h, params[6].transpose(1, 2)).squeeze(2)

    @torch.jit.export
    def batched_loss(self, params: List[Tensor], emb: Tensor, dense: Tensor, labels: Tensor,
                     mask: Tensor) -> Tensor:
        """Each task's mean binary cross-entropy over its real rows: [T]."""
        losses = F.binary_cross_entropy_with_logits(
            self.batched_logits(params, emb, dense), labels, reduction="none")
        return (losses * mask).sum(1) / mask.sum(1)

    def forward(self, emb: Tensor, dense: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(self.initial_params(), emb, dense))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="path of the TorchScript file to write")
    parser.add_argument("--dense", type=int, default=4, help="dense features per row")
    parser.add_argument("--sparse", type=int, default=4, help="sparse ids per row")
    parser.add_argument("--dim", type=int, default=8, help="embedding dimension")
    parser.add_argument("--hidden", type=int, default=32, help="hidden width of both MLPs")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = MetaClickModel(args.dense, args.sparse, args.dim, args.hidden)
    if args.dtype == "float64":
        model = model.double()
    scripted = torch.jit.script(model)
    tmp = args.out + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
