#!/usr/bin/python3
"""Exports the train-ctr example's click model, untrained (seeded weights), as TorchScript.

A small DLRM: a bottom MLP over the dense features (8 -> 32 -> 8, ReLU), one EmbeddingBag(vocab, 8,
sum) per categorical field (8 fields, one id each), the pairwise dot products of those 9 vectors
(36), and a top MLP (8 + 36 -> 32 -> 1).

Two methods, so that one file serves training and inference:
  forward(dense: float32 [N,8], sparse: int64 [N,8]) -> float32 [N,1], the click probability:
      what `kind: infer` runs (examples/train-ctr/infer.yaml);
  loss(dense, sparse, label: float32 [N,1]) -> float32 [N], the per-sample binary cross-entropy:
      what `kind: train` trains (train.loss_method: loss; docs/train.md).

Usage: /usr/bin/python3 export_model.py OUT.pt [--vocab 1000] [--seed 0]
"""
import argparse
import os

import torch
from torch import Tensor, nn
from torch.nn import functional as F

NUM_DENSE = 8
NUM_SPARSE = 8
EMB_DIM = 8


class ClickModel(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.bottom = nn.Sequential(nn.Linear(NUM_DENSE, 32), nn.ReLU(),
                                    nn.Linear(32, EMB_DIM), nn.ReLU())
        self.tables = nn.ModuleList(
            [nn.EmbeddingBag(vocab, EMB_DIM, mode="sum") for _ in range(NUM_SPARSE)])
        n = NUM_SPARSE + 1
        li, lj = torch.triu_indices(n, n, offset=1)
        self.register_buffer("li", li)
        self.register_buffer("lj", lj)
        self.top = nn.Sequential(nn.Linear(EMB_DIM + n * (n - 1) // 2, 32), nn.ReLU(),
                                 nn.Linear(32, 1))

    def logits(self, dense: Tensor, sparse: Tensor) -> Tensor:
        x = self.bottom(dense)
        vectors = [x]
        for i, table in enumerate(self.tables):
            vectors.append(table(sparse[:, i:i + 1]))
        t = torch.stack(vectors, dim=1)        # [N, 9, 8]
        z = torch.bmm(t, t.transpose(1, 2))    # [N, 9, 9]
        pairs = z[:, self.li, self.lj]         # [N, 36]
        return self.top(torch.cat([x, pairs], dim=1))

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(dense, sparse))

    @torch.jit.export
    def loss(self, dense: Tensor, sparse: Tensor, label: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.logits(dense, sparse).squeeze(1),
                                                  label.squeeze(1), reduction="none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="path of the TorchScript file to write")
    parser.add_argument("--vocab", type=int, default=1000, help="rows per embedding table")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    scripted = torch.jit.script(ClickModel(args.vocab))
    tmp = args.out + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
