#!/usr/bin/env python3
"""Writes the wordcount demo input: N lines of words drawn from a Zipf-like vocabulary.

Deterministic for a given seed, so the demo's totals are reproducible. Usage:
  generate_input.py OUT_PATH [--lines 1000000] [--seed 7]
"""
import argparse
import random


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    vocabulary = [f"word{i}" for i in range(5000)]
    cumulative, total = [], 0.0
    for rank in range(len(vocabulary)):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    with open(args.out, "w", encoding="ascii") as out:
        done = 0
        while done < args.lines:
            n = min(10000, args.lines - done)
            # One draw for the whole batch of lines: choices() per word is what costs time.
            lengths = [rng.randint(1, 12) for _ in range(n)]
            words = rng.choices(vocabulary, cum_weights=cumulative, k=sum(lengths))
            lines, pos = [], 0
            for length in lengths:
                lines.append(" ".join(words[pos:pos + length]))
                pos += length
            out.write("\n".join(lines) + "\n")
            done += n


if __name__ == "__main__":
    main()
