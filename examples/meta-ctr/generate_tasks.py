#!/usr/bin/python3
"""Writes multi-task click data for G-Meta: header task,ts,d0..d3,c0..c3,label.

Every task (a scenario: an advertiser, a user segment) shares one hidden model and shifts it its
own way, so that a model which adapts to a task from a few of its rows beats one global model:

  logit = dense . w + sum_f effect_f[c_f] + b_t + dense . u_t + tau_t[c0 % 8] - 0.5

with w and effect_f shared (from --model-seed), and per task a bias b_t ~ N(0, 1.2), a slope
u_t ~ N(0, 0.8) per dense feature, and a taste tau_t ~ N(0, 1.0) over 8 item groups; label ~
Bernoulli(sigmoid(logit)). d* are normal(0, 1); c* ints with a skewed popularity. Rows of a task
carry increasing timestamps (ts) so that `baton meta prepare --order-by ts` takes the older rows
as support. Task ids of file --first-task.. are distinct across files, so train and held-out
files hold different tasks of the same world. Written to OUT.tmp, then renamed.

Usage: /usr/bin/python3 generate_tasks.py OUT.csv --tasks N [--rows-per-task 40] [--first-task 0]
       [--seed 0] [--model-seed 7] [--vocab 400]
"""
import argparse
import os

import numpy as np

NUM_DENSE = 4
NUM_SPARSE = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--rows-per-task", type=int, default=40)
    parser.add_argument("--first-task", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-seed", type=int, default=7)
    parser.add_argument("--vocab", type=int, default=400)
    args = parser.parse_args()
    hidden = np.random.default_rng(args.model_seed)
    w = hidden.normal(0, 0.5, NUM_DENSE)
    effects = hidden.normal(0, 0.6, (NUM_SPARSE, args.vocab))
    rng = np.random.default_rng(args.seed)
    popularity = 1.0 / np.arange(1, args.vocab + 1) ** 0.8
    popularity /= popularity.sum()
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("task,ts," + ",".join(f"d{i}" for i in range(NUM_DENSE)) + "," +
                ",".join(f"c{i}" for i in range(NUM_SPARSE)) + ",label\n")
        for t in range(args.first_task, args.first_task + args.tasks):
            bias = rng.normal(0, 1.2)
            slope = rng.normal(0, 0.8, NUM_DENSE)
            taste = rng.normal(0, 1.0, 8)
            n = args.rows_per_task
            dense = rng.normal(0, 1, (n, NUM_DENSE))
            sparse = rng.choice(args.vocab, size=(n, NUM_SPARSE), p=popularity)
            logit = (dense @ (w + slope) + effects[np.arange(NUM_SPARSE), sparse].sum(axis=1) +
                     bias + taste[sparse[:, 0] % 8] - 0.5)
            labels = rng.random(n) < 1 / (1 + np.exp(-logit))
            for r in range(n):
                f.write(f"task{t},{r}," + ",".join(f"{x:.4f}" for x in dense[r]) + "," +
                        ",".join(str(c) for c in sparse[r]) + f",{int(labels[r])}\n")
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
