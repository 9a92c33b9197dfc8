#!/usr/bin/python3
"""Exports the vision example's three TorchScript models (random, seeded weights) into OUT_DIR.

- resnet18.pt: torchvision resnet18(weights=None), input float [N,3,112,112] normalized with the
  ImageNet mean/std, output logits [N,1000]. Random weights: it stands in for a classifier's cost.
- proposer.pt: a box proposer, input float [N,3,128,128] (RGB, CHW, ImageNet-normalized), returns
  (boxes [N,8,4], scores [N,8]). The image is split into a 2x4 grid (2 rows, 4 columns, cells
  numbered row-major); box k is cell k as normalized (x0,y0,x1,y1). The score is NOT learned: it is a
  hand-set brightness rule, sigmoid((mean brightness of cell k in the un-normalized image - 0.35) *
  25), plus a tiny (1e-3-weighted) term from a random-weight conv backbone (5 strided 3x3 convs, ~0.2
  GFLOP per image) whose only purpose is to make the proposer cost what a small detector costs; the
  term is there so that the backbone's output is used and cannot be optimized away. On images from
  generate_images.py a cell holding a bright rectangle scores ~1, an empty one ~0.
- classifier.pt: torchvision resnet18(weights=None, num_classes=10) on crops, input float
  [N,3,64,64] normalized, output [N,10]. Random weights.

Files are written to NAME.tmp and renamed when complete.

Usage: /usr/bin/python3 export_models.py OUT_DIR [--seed 0]
"""
import argparse
import os
from typing import Final, Tuple

import torch
import torchvision
from torch import Tensor, nn
import torch.nn.functional as F

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
GRID_ROWS, GRID_COLS = 2, 4
THRESHOLD = 0.35     # cell brightness at which the score is 0.5
STEEPNESS = 25.0
BACKBONE_WEIGHT = 1e-3


class Proposer(nn.Module):
    rows: Final[int]
    cols: Final[int]
    threshold: Final[float]
    steepness: Final[float]
    backbone_weight: Final[float]

    def __init__(self):
        super().__init__()
        self.rows, self.cols = GRID_ROWS, GRID_COLS
        self.threshold, self.steepness = THRESHOLD, STEEPNESS
        self.backbone_weight = BACKBONE_WEIGHT
        layers = []
        channels = [3, 32, 64, 128, 256, 256]
        for i in range(len(channels) - 1):
            stride = 2 if i < 4 else 1
            layers += [nn.Conv2d(channels[i], channels[i + 1], 3, stride=stride, padding=1),
                       nn.BatchNorm2d(channels[i + 1]), nn.ReLU(inplace=True)]
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels[-1], 1, 1)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))
        boxes = []
        for r in range(GRID_ROWS):
            for c in range(GRID_COLS):
                boxes.append([c / GRID_COLS, r / GRID_ROWS, (c + 1) / GRID_COLS, (r + 1) / GRID_ROWS])
        self.register_buffer("cells", torch.tensor(boxes, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        n = x.size(0)
        features = self.head(self.backbone(x))                       # [N,1,8,8]
        learned = torch.tanh(F.adaptive_avg_pool2d(features, (self.rows, self.cols))).reshape(n, -1)
        pixels = x * self.std + self.mean                            # back to [0,1] RGB
        brightness = F.adaptive_avg_pool2d(pixels.mean(dim=1, keepdim=True),
                                           (self.rows, self.cols)).reshape(n, -1)
        scores = torch.sigmoid((brightness - self.threshold) * self.steepness
                               + self.backbone_weight * learned)
        boxes = self.cells.unsqueeze(0).expand(n, -1, -1).contiguous()
        return boxes, scores


def save(module: nn.Module, path: str) -> None:
    scripted = torch.jit.script(module.eval())
    scripted.save(path + ".tmp")
    os.replace(path + ".tmp", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="directory for resnet18.pt, proposer.pt, classifier.pt")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    torch.manual_seed(args.seed)
    save(torchvision.models.resnet18(weights=None), os.path.join(args.out_dir, "resnet18.pt"))
    torch.manual_seed(args.seed + 1)
    save(Proposer(), os.path.join(args.out_dir, "proposer.pt"))
    torch.manual_seed(args.seed + 2)
    save(torchvision.models.resnet18(weights=None, num_classes=10),
         os.path.join(args.out_dir, "classifier.pt"))


if __name__ == "__main__":
    main()
