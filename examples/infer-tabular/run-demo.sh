#!/usr/bin/env bash
# `make demo` (second part): exports the DLRM-style model and generates 1,000,000 CSV rows once
# (3 of them corrupted on purpose), runs the batch inference job with `baton run`, and says where
# the output is. Running it again resumes (or finds the job already done).
set -euo pipefail
build_dir=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data="$here/data"
mkdir -p "$data"
if [ ! -s "$data/model.pt" ]; then
  echo "demo: exporting the model to $data/model.pt..."
  /usr/bin/python3 "$here/export_model.py" "$data/model.pt"
fi
if [ ! -s "$data/rows.csv" ]; then
  echo "demo: generating $data/rows.csv (1,000,000 rows, 3 corrupted on purpose)..."
  /usr/bin/python3 "$here/generate_rows.py" "$data/rows.csv" --rows 1000000 --corrupt 3
fi
"$root/$build_dir/bin/baton" run "$here/job.yaml"
out="$root/demo-out/infer-tabular"
echo
echo "demo: predictions are in $out (one part-<shard>.csv per shard: id,score)"
head -3 "$(ls "$out"/part-*.csv | head -1)" | sed 's/^/demo:   /'
echo "demo: $(cat "$out"/part-*.csv | wc -l) rows predicted; bad rows ($(cat "$out"/_errors/*.jsonl 2>/dev/null | wc -l)) are in $out/_errors:"
cat "$out"/_errors/*.jsonl 2>/dev/null | cut -c1-160 | sed 's/^/demo:   /' || true
