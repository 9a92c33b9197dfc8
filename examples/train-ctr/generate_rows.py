#!/usr/bin/python3
"""Writes click data with a signal a model can learn: header id,d0..d7,c0..c7,label.

A hidden model draws each label: logit = dense . w + (d0 * d1) * 0.8 + sum_i effect_i[c_i]
+ cross[c0 % 40, c1 % 40] - 1.0, label ~ Bernoulli(sigmoid(logit)); d* are normal(0,1), c* ints in
[0, vocab) with a skewed (Zipf-like) popularity. The hidden weights come from --model-seed, the rows
from --seed, so train and hold-out files share one hidden model. Written to OUT.tmp, then renamed.

Usage: /usr/bin/python3 generate_rows.py OUT.csv --rows N [--seed 0] [--model-seed 7] [--vocab 1000]
"""
import argparse
import os

import numpy as np

NUM_DENSE = 8
NUM_SPARSE = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-seed", type=int, default=7)
    parser.add_argument("--vocab", type=int, default=1000)
    args = parser.parse_args()
    hidden = np.random.default_rng(args.model_seed)
    w = hidden.normal(0, 0.6, NUM_DENSE)
    effects = hidden.normal(0, 0.7, (NUM_SPARSE, args.vocab))
    cross = hidden.normal(0, 1.0, (40, 40))
    rng = np.random.default_rng(args.seed)
    n = args.rows
    dense = rng.normal(0, 1, (n, NUM_DENSE))
    ranks = rng.zipf(1.3, (n, NUM_SPARSE))
    sparse = (ranks * 7919 + np.arange(NUM_SPARSE) * 104729) % args.vocab
    logit = dense @ w + dense[:, 0] * dense[:, 1] * 0.8 - 1.0
    logit += effects[np.arange(NUM_SPARSE), sparse].sum(axis=1)
    logit += cross[sparse[:, 0] % 40, sparse[:, 1] % 40]
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("id," + ",".join(f"d{i}" for i in range(NUM_DENSE)) + ","
                + ",".join(f"c{i}" for i in range(NUM_SPARSE)) + ",label\n")
        for i in range(n):
            f.write(f"r{i}," + ",".join(f"{v:.4f}" for v in dense[i]) + ","
                    + ",".join(str(v) for v in sparse[i]) + f",{label[i]}\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
