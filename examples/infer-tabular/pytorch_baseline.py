#!/usr/bin/python3
"""Plain-PyTorch baseline for the DLRM job: what a PyTorch user would write without baton.

An IterableDataset splits the CSV into one byte range per DataLoader worker (a line belongs to the
worker whose range holds its first byte), parses batches of lines with numpy's C loadtxt parser in
the workers, and the main process runs the TorchScript model under inference_mode and writes
`id,score` lines (a header line, then one line per row, score as %.9g; rows in the order batches
arrive, so interleaved across workers). Lines that do not parse (a non-numeric value, a missing
column) are skipped and counted on stderr; a row whose id the model rejects fails the whole run, as it
would in such a script. Prints at the end one line `rows=N seconds=S rows_per_s=R`, timed from before
the DataLoader is created to after the last write (model load excluded).

Usage: /usr/bin/python3 pytorch_baseline.py --model M.pt --csv DATA.csv --out OUT.csv
           [--workers 2] [--batch-size 512] [--threads 1] [--seed 0]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

NUM_DENSE = 13
NUM_SPARSE = 26
NUM_FIELDS = 1 + NUM_DENSE + NUM_SPARSE


def parse(lines: list):
    """(ids, dense float32 [n,13], sparse int64 [n,26], bad line count) for a batch of lines."""
    try:
        values = np.loadtxt(lines, delimiter=",", usecols=range(1, NUM_FIELDS), dtype=np.float64,
                            ndmin=2)
        good = lines
        bad = 0
    except ValueError:
        # Some line in this batch is malformed: parse line by line to keep the good ones.
        good, rows = [], []
        for line in lines:
            try:
                row = np.loadtxt([line], delimiter=",", usecols=range(1, NUM_FIELDS),
                                 dtype=np.float64, ndmin=2)
            except ValueError:
                continue
            good.append(line)
            rows.append(row)
        bad = len(lines) - len(good)
        values = np.concatenate(rows) if rows else np.zeros((0, NUM_FIELDS - 1))
    ids = [line[:line.index(b",")].decode() for line in good]
    dense = torch.from_numpy(values[:, :NUM_DENSE].astype(np.float32))
    sparse = torch.from_numpy(values[:, NUM_DENSE:].astype(np.int64))
    return ids, dense, sparse, bad


class CsvBatches(IterableDataset):
    def __init__(self, path: str, batch_size: int):
        super().__init__()
        self.path = path
        self.batch_size = batch_size

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        size = os.path.getsize(self.path)
        start, end = size * worker // workers, size * (worker + 1) // workers
        with open(self.path, "rb") as f:
            if start == 0:
                f.readline()                      # the header
            else:
                f.seek(start - 1)
                f.readline()                      # the rest of a line that began before start
            pos = f.tell()
            batch = []
            while pos < end:
                line = f.readline()
                if not line:
                    break
                pos += len(line)
                if line.strip():
                    batch.append(line)
                if len(batch) == self.batch_size:
                    yield parse(batch)
                    batch = []
            if batch:
                yield parse(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="TorchScript DLRM (export_model.py)")
    parser.add_argument("--csv", required=True, help="input rows (generate_rows.py)")
    parser.add_argument("--out", required=True, help="output CSV: id,score")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = torch.jit.load(args.model).eval()

    start = time.perf_counter()
    loader = DataLoader(CsvBatches(args.csv, args.batch_size), batch_size=None,
                        num_workers=args.workers)
    rows = bad = 0
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="ascii") as out, torch.inference_mode():
        out.write("id,score\n")
        for ids, dense, sparse, n_bad in loader:
            bad += n_bad
            if not ids:
                continue
            scores = model(dense, sparse).reshape(-1).tolist()
            out.write("".join(f"{i},{s:.9g}\n" for i, s in zip(ids, scores)))
            rows += len(ids)
    os.replace(tmp, args.out)
    seconds = time.perf_counter() - start
    if bad:
        print(f"skipped {bad} malformed lines", file=sys.stderr)
    print(f"rows={rows} seconds={seconds:.3f} rows_per_s={rows / seconds:.1f}")


if __name__ == "__main__":
    main()
