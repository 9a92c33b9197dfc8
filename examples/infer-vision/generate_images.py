#!/usr/bin/python3
"""Writes N synthetic JPEG images for the vision example, plus a manifest and the ground truth.

Each image (size x size, RGB, JPEG quality 90) is a noisy dark background split into a 2x4 grid
(2 rows, 4 columns, cells numbered row-major like proposer.pt's boxes); a uniformly random number of
cells (0 to 8) each hold a bright filled rectangle covering most of the cell. Files are
img_000000.jpg, ...; OUT_DIR/manifest.txt lists them (relative to the manifest), one per line;
OUT_DIR/truth.csv has `name,cells` where cells is 8 characters, '1' for a cell holding a rectangle
(proposer.pt should score exactly those cells >= 0.5), empty for a corrupted image. --corrupt K
replaces K evenly spaced images (never the first) with garbage (a truncated JPEG header plus random
bytes); they stay in the manifest, and their names go to stderr. manifest.txt and truth.csv are
written last, via .tmp and a rename. Deterministic for a given seed.

Usage: /usr/bin/python3 generate_images.py OUT_DIR --count N [--seed 0] [--size 160] [--corrupt K]
"""
import argparse
import io
import os
import sys

import numpy as np
from PIL import Image

GRID_ROWS, GRID_COLS = 2, 4
TRUNCATED_JPEG_HEADER = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"


def make_image(rng: np.random.Generator, size: int) -> tuple:
    """(uint8 HxWx3 image, list of 8 0/1 flags)."""
    img = rng.normal(0.06, 0.04, size=(size, size, 3))
    count = int(rng.integers(0, GRID_ROWS * GRID_COLS + 1))
    filled = set(rng.choice(GRID_ROWS * GRID_COLS, size=count, replace=False).tolist())
    for k in sorted(filled):
        r, c = divmod(k, GRID_COLS)
        y0, y1 = r * size // GRID_ROWS, (r + 1) * size // GRID_ROWS
        x0, x1 = c * size // GRID_COLS, (c + 1) * size // GRID_COLS
        h = int(round((y1 - y0) * rng.uniform(0.8, 0.95)))
        w = int(round((x1 - x0) * rng.uniform(0.8, 0.95)))
        top = y0 + int(rng.integers(0, y1 - y0 - h + 1))
        left = x0 + int(rng.integers(0, x1 - x0 - w + 1))
        color = rng.uniform(0.75, 1.0, size=3)
        img[top:top + h, left:left + w] = color + rng.normal(0.0, 0.03, size=(h, w, 3))
    pixels = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return pixels, [1 if k in filled else 0 for k in range(GRID_ROWS * GRID_COLS)]


def write_atomic(path: str, data: bytes) -> None:
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="directory for the images, manifest.txt and truth.csv")
    parser.add_argument("--count", type=int, required=True, help="number of images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=160, help="image width and height in pixels")
    parser.add_argument("--corrupt", type=int, default=0, metavar="K",
                        help="replace K evenly spaced images with garbage bytes")
    args = parser.parse_args()
    if args.corrupt > max(args.count - 1, 0):
        sys.exit(f"--corrupt {args.corrupt} needs at least {args.corrupt + 1} images")
    os.makedirs(args.out_dir, exist_ok=True)

    bad = {1 + (j * (args.count - 1)) // args.corrupt for j in range(args.corrupt)} if args.corrupt else set()
    rng = np.random.default_rng(args.seed)
    names, truth = [], []
    for i in range(args.count):
        name = f"img_{i:06d}.jpg"
        pixels, cells = make_image(rng, args.size)
        if i in bad:
            data = TRUNCATED_JPEG_HEADER + rng.integers(0, 256, size=2000, dtype=np.uint8).tobytes()
        else:
            buf = io.BytesIO()
            Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=90)
            data = buf.getvalue()
        with open(os.path.join(args.out_dir, name), "wb") as f:
            f.write(data)
        names.append(name)
        truth.append(f"{name},{'' if i in bad else ''.join(map(str, cells))}")
    write_atomic(os.path.join(args.out_dir, "truth.csv"),
                 ("name,cells\n" + "".join(t + "\n" for t in truth)).encode())
    write_atomic(os.path.join(args.out_dir, "manifest.txt"), "".join(n + "\n" for n in names).encode())
    for i in sorted(bad):
        print(f"corrupted {names[i]}: truncated JPEG header + 2000 random bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
