#!/usr/bin/python3
"""Prints the AUC of scores against labels: the fraction of (positive, negative) pairs the scores
order correctly (ties count half), computed exactly by ranking.

Usage: /usr/bin/python3 auc.py LABELS.csv SCORES_DIR
  LABELS.csv: the rows with their `id` and `label` columns (the hold-out file);
  SCORES_DIR: kind: infer output, part-*.csv files of "id,score" lines.
"""
import csv
import glob
import os
import sys


def main() -> None:
    labels_path, scores_dir = sys.argv[1], sys.argv[2]
    with open(labels_path) as f:
        reader = csv.DictReader(f)
        label = {row["id"]: int(row["label"]) for row in reader}
    pairs = []
    for part in sorted(glob.glob(os.path.join(scores_dir, "part-*.csv"))):
        with open(part) as f:
            for row in csv.reader(f):
                if row and row[0] in label:
                    pairs.append((float(row[1]), label[row[0]]))
    pairs.sort()
    positives = sum(y for _, y in pairs)
    negatives = len(pairs) - positives
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += average_rank * sum(y for _, y in pairs[i:j])
        i = j
    auc = (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
    print(f"rows={len(pairs)} auc={auc:.4f}")


if __name__ == "__main__":
    main()
