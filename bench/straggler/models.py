#!/usr/bin/python3
"""The models of bench/straggler, shared by the TorchScript export (baton trains the file) and the
DDP peer (ddp_straggler.py builds the same module with the same seed):
  tiny: 16 -> 32 -> 1, for the emulated setting (compute is a sleep; the model only makes real
        gradients and a real all-reduce);
  wide: 64 -> 1024 -> 1024 -> 1, for the real setting: forward + backward grows with the batch.
forward(x, y) returns the per-sample losses (baton's training contract, docs/train.md).

Usage: /usr/bin/python3 models.py OUT_DIR   (writes tiny.pt and wide.pt)
"""
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

SHAPES = {"tiny": (16, [32]), "wide": (64, [1024, 1024])}


class Mlp(nn.Module):
    def __init__(self, inputs: int, hidden: list):
        super().__init__()
        layers = []
        width = inputs
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x, y):
        return F.binary_cross_entropy_with_logits(self.net(x), y, reduction="none").squeeze(1)


def build(name):
    torch.manual_seed(0)
    inputs, hidden = SHAPES[name]
    return Mlp(inputs, hidden)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in SHAPES:
        torch.jit.script(build(name)).save(os.path.join(out, name + ".pt"))


if __name__ == "__main__":
    main()
