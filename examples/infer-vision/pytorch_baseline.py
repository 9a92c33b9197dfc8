#!/usr/bin/python3
"""Plain-PyTorch baseline for the single-model vision job: what a PyTorch user would write.

A map-style Dataset over the manifest reads and decodes each JPEG in the DataLoader workers
(torchvision.io.read_file + decode_jpeg, RGB), converts it to float /255, resizes it to size x size
(bilinear, align_corners=False, no antialias) and normalizes it with the ImageNet mean/std; the main
process runs the TorchScript model under inference_mode and writes a header line then
`name,top1_index,top1_logit` per image (logit as %.9g, in manifest order). An image that does not
decode is skipped and named on stderr. Prints at the end one line `images=N seconds=S
images_per_s=R`, timed from before the DataLoader is created to after the last write (model load
excluded).

Usage: /usr/bin/python3 pytorch_baseline.py --manifest M --model resnet18.pt --out OUT.csv
           [--workers 2] [--batch-size 32] [--threads 1] [--size 112] [--seed 0]
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_jpeg, read_file

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


class ManifestImages(Dataset):
    def __init__(self, manifest: str, size: int):
        base = os.path.dirname(os.path.abspath(manifest))
        with open(manifest, encoding="utf-8") as f:
            self.names = [line.strip() for line in f if line.strip()]
        self.paths = [os.path.join(base, name) for name in self.names]
        self.size = size

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int):
        try:
            img = decode_jpeg(read_file(self.paths[i]), mode=ImageReadMode.RGB)
        except RuntimeError:
            return self.names[i], None
        x = img.float().div_(255.0).unsqueeze(0)
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.names[i], (x[0] - MEAN) / STD


def collate(items):
    """(names, batch tensor or None, names that failed to decode)."""
    good = [(n, x) for n, x in items if x is not None]
    bad = [n for n, x in items if x is None]
    batch = torch.stack([x for _, x in good]) if good else None
    return [n for n, _ in good], batch, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True, help="image names, one per line (generate_images.py)")
    parser.add_argument("--model", required=True, help="TorchScript classifier (export_models.py resnet18.pt)")
    parser.add_argument("--out", required=True, help="output CSV: name,top1_index,top1_logit")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--size", type=int, default=112, help="model input height and width")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = torch.jit.load(args.model).eval()

    start = time.perf_counter()
    loader = DataLoader(ManifestImages(args.manifest, args.size), batch_size=args.batch_size,
                        num_workers=args.workers, collate_fn=collate)
    images = 0
    failed = []
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out, torch.inference_mode():
        out.write("name,top1_index,top1_logit\n")
        for names, batch, bad in loader:
            failed += bad
            if batch is None:
                continue
            logits, index = model(batch).max(dim=1)
            out.write("".join(f"{n},{i},{v:.9g}\n"
                              for n, i, v in zip(names, index.tolist(), logits.tolist())))
            images += len(names)
    os.replace(tmp, args.out)
    seconds = time.perf_counter() - start
    for name in failed:
        print(f"skipped {name}: not a decodable JPEG", file=sys.stderr)
    print(f"images={images} seconds={seconds:.3f} images_per_s={images / seconds:.1f}")


if __name__ == "__main__":
    main()
