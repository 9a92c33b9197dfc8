#!/usr/bin/python3
"""Runs a TorchScript model directly on CSV rows, the way the infer tests' reference is computed.

Reads CSV (header line first), builds a float32 tensor from --dense columns and an int64 tensor
from --sparse columns, calls the model on batches of --batch-size rows and prints
"key,v0,v1,..." per row (floats as repr of float32 via numpy), in file order.

Usage: /usr/bin/python3 reference_predict.py --model M.pt --csv rows.csv --key id \
           --dense d0,d1 --sparse c0,c1 [--batch-size 97] > ref.csv
"""
import argparse
import csv
import sys

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dense", required=True)
    ap.add_argument("--sparse", required=True)
    ap.add_argument("--batch-size", type=int, default=97)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = torch.jit.load(args.model).eval()
    dense_cols = args.dense.split(",")
    sparse_cols = args.sparse.split(",")
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    out = sys.stdout
    with torch.inference_mode():
        for begin in range(0, len(rows), args.batch_size):
            chunk = rows[begin:begin + args.batch_size]
            dense = torch.tensor([[float(r[c]) for c in dense_cols] for r in chunk],
                                 dtype=torch.float32)
            sparse = torch.tensor([[int(r[c]) for c in sparse_cols] for r in chunk],
                                  dtype=torch.int64)
            result = model(dense, sparse).reshape(len(chunk), -1)
            for r, values in zip(chunk, result.tolist()):
                out.write(r[args.key] + "," + ",".join(repr(v) for v in values) + "\n")


if __name__ == "__main__":
    main()
