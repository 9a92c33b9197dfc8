#!/usr/bin/python3
"""Writes a Criteo-like CSV for the DLRM example: header id,d0..d12,c0..c25, then one row per record.

id is r<row number>; d0..d6 are lognormal(0,1) and d7..d12 normal(0,1), printed with 4 decimals
(e.g. 1.1340, -0.0288); c0..c25 are ints in [0, vocab). Lines are formatted in numpy as one byte
matrix per chunk, which is what keeps 1M rows fast. --corrupt K replaces K evenly spaced rows (never
row 0) with bad ones, cycling through: a non-numeric dense value (d3=abc), a missing column (the last
field dropped), and an id out of range (c5=vocab+7: it parses, but the model raises); the corrupted
row ids go to stderr. The file is written to OUT.tmp and renamed when complete. Deterministic for a
given seed.

Usage: /usr/bin/python3 generate_rows.py OUT.csv --rows N [--seed 0] [--vocab 10000] [--corrupt K]
"""
import argparse
import os
import sys

import numpy as np

NUM_DENSE = 13
NUM_SPARSE = 26
CHUNK = 20_000
CORRUPTIONS = ("bad_dense", "missing_column", "id_out_of_range")

DENSE_DECIMALS = 4
DENSE_INT_WIDTH = 5      # integer part of a dense value: |x| < 1e5 (clipped); keeps it in int32


def digits(v: np.ndarray, width: int, pad: bool = False) -> np.ndarray:
    """Decimal digits of non-negative ints v (< 10**width) as ASCII, shape v.shape + (width,).

    Leading zeros become 0 bytes (dropped when the row bytes are compacted) unless pad is set.
    """
    pows = 10 ** np.arange(width - 1, -1, -1, dtype=np.int32)
    d = (v[..., None] // pows) % 10 + 48
    if pad:
        return d.astype(np.uint8)
    keep = (v[..., None] >= pows) | (pows == 1)
    return np.where(keep, d, 0).astype(np.uint8)


def format_block(ids: np.ndarray, dense: np.ndarray, sparse: np.ndarray, id_width: int,
                 sparse_width: int) -> bytes:
    """CSV lines for a block of rows, built as one byte matrix with 0 bytes as padding.

    Per-value Python formatting is what would make 1M rows slow; this stays in numpy.
    """
    n = len(ids)
    ids = ids.astype(np.int32)          # int32 digit arithmetic is markedly faster
    sparse = sparse.astype(np.int32)
    cols = [np.full((n, 1), ord("r"), np.uint8), digits(ids[:, None], id_width)[:, 0]]
    scale = 10 ** DENSE_DECIMALS
    q = np.rint(np.clip(dense, -(10.0 ** DENSE_INT_WIDTH) + 1, 10.0 ** DENSE_INT_WIDTH - 1) * scale)
    q = q.astype(np.int32)
    a = np.abs(q)
    sign = np.where(q < 0, ord("-"), 0).astype(np.uint8)[..., None]
    comma = np.full(dense.shape + (1,), ord(","), np.uint8)
    dot = np.full(dense.shape + (1,), ord("."), np.uint8)
    dense_b = np.concatenate([comma, sign, digits(a // scale, DENSE_INT_WIDTH), dot,
                              digits(a % scale, DENSE_DECIMALS, pad=True)], axis=2)
    cols.append(dense_b.reshape(n, -1))
    comma = np.full(sparse.shape + (1,), ord(","), np.uint8)
    cols.append(np.concatenate([comma, digits(sparse, sparse_width)], axis=2).reshape(n, -1))
    cols.append(np.full((n, 1), ord("\n"), np.uint8))
    m = np.concatenate(cols, axis=1)
    return m[m != 0].tobytes()


def corrupted_rows(rows: int, k: int) -> dict:
    """Row number -> kind, for K evenly spaced rows in [1, rows)."""
    if k <= 0:
        return {}
    if k > rows - 1:
        sys.exit(f"--corrupt {k} needs at least {k + 1} rows")
    picks = [1 + (j * (rows - 1)) // k for j in range(k)]
    return {row: CORRUPTIONS[j % len(CORRUPTIONS)] for j, row in enumerate(picks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="CSV file to write")
    parser.add_argument("--rows", type=int, required=True, help="data rows (the header is extra)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=int, default=10000, help="sparse ids are in [0, vocab)")
    parser.add_argument("--corrupt", type=int, default=0, metavar="K",
                        help="replace K evenly spaced rows with malformed ones")
    args = parser.parse_args()

    bad = corrupted_rows(args.rows, args.corrupt)
    bad_sorted = sorted(bad)
    rng = np.random.default_rng(args.seed)
    id_width = len(str(max(args.rows - 1, 0)))
    sparse_width = len(str(args.vocab + 7))
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as out:
        out.write(("id," + ",".join(f"d{i}" for i in range(NUM_DENSE)) + ","
                   + ",".join(f"c{i}" for i in range(NUM_SPARSE)) + "\n").encode())
        for lo in range(0, args.rows, CHUNK):
            hi = min(lo + CHUNK, args.rows)
            n = hi - lo
            ids = np.arange(lo, hi, dtype=np.int64)
            dense = np.empty((n, NUM_DENSE))
            dense[:, :7] = rng.lognormal(0.0, 1.0, size=(n, 7))
            dense[:, 7:] = rng.normal(0.0, 1.0, size=(n, NUM_DENSE - 7))
            sparse = rng.integers(0, args.vocab, size=(n, NUM_SPARSE), dtype=np.int64)
            for row in bad_sorted[np.searchsorted(bad_sorted, lo):np.searchsorted(bad_sorted, hi)]:
                if bad[row] == "id_out_of_range":
                    sparse[row - lo, 5] = args.vocab + 7
            lines = format_block(ids, dense, sparse, id_width, sparse_width)
            i = np.searchsorted(bad_sorted, lo)
            if i < len(bad_sorted) and bad_sorted[i] < hi:
                # Rare: edit the few bad lines of this chunk as text.
                split = lines.split(b"\n")
                while i < len(bad_sorted) and bad_sorted[i] < hi:
                    row = bad_sorted[i]
                    fields = split[row - lo].split(b",")
                    if bad[row] == "bad_dense":
                        fields[1 + 3] = b"abc"
                    elif bad[row] == "missing_column":
                        fields.pop()
                    split[row - lo] = b",".join(fields)
                    i += 1
                lines = b"\n".join(split)
            out.write(lines)
    os.replace(tmp, args.out)
    for row in bad_sorted:
        what = {"bad_dense": "d3=abc",
                "missing_column": "one field short (c25 dropped)",
                "id_out_of_range": f"c5={args.vocab + 7} (out of range)"}[bad[row]]
        print(f"corrupted r{row}: {what}", file=sys.stderr)


if __name__ == "__main__":
    main()
