#!/usr/bin/python3
"""Exports a DLRM-style click model with random (seeded) weights as TorchScript.

forward(dense: float32 [N,13], sparse: int64 [N,26]) -> float32 [N,1], a sigmoid click probability.
Bottom MLP 13->128->64->16 (ReLU); 26 EmbeddingBag(vocab, 16, sum) tables, table i reading the one id
in sparse[:, i]; interaction = the bottom output, the 26 embeddings (27 vectors of 16) and the 351
pairwise dot products among them (upper triangle) -> 367 features; top MLP 367->256->128->1, sigmoid.
Ids outside [0, vocab) make the model raise (no clamping). The weights are random: the model stands in
for the cost of a real DLRM, its scores mean nothing.

Usage: /usr/bin/python3 export_model.py OUT.pt [--vocab 10000] [--seed 0]
"""
import argparse
import os

import torch
from torch import Tensor, nn

NUM_DENSE = 13
NUM_SPARSE = 26
EMB_DIM = 16


class DLRM(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.bottom = nn.Sequential(
            nn.Linear(NUM_DENSE, 128), nn.ReLU(),
            nn.Linear(128, 64), nn.ReLU(),
            nn.Linear(64, EMB_DIM), nn.ReLU(),
        )
        self.tables = nn.ModuleList(
            [nn.EmbeddingBag(vocab, EMB_DIM, mode="sum") for _ in range(NUM_SPARSE)])
        n = NUM_SPARSE + 1
        li, lj = torch.triu_indices(n, n, offset=1)
        self.register_buffer("li", li)
        self.register_buffer("lj", lj)
        self.top = nn.Sequential(
            nn.Linear(EMB_DIM + n * (n - 1) // 2, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 1),
        )

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        x = self.bottom(dense)
        vectors = [x]
        for i, table in enumerate(self.tables):
            vectors.append(table(sparse[:, i:i + 1]))
        t = torch.stack(vectors, dim=1)                 # [N, 27, 16]
        z = torch.bmm(t, t.transpose(1, 2))             # [N, 27, 27]
        pairs = z[:, self.li, self.lj]                  # [N, 351]
        return torch.sigmoid(self.top(torch.cat([x, pairs], dim=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="path of the TorchScript file to write")
    parser.add_argument("--vocab", type=int, default=10000, help="rows per embedding table")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = DLRM(args.vocab).eval()
    scripted = torch.jit.script(model)
    tmp = args.out + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
