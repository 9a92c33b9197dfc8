#!/usr/bin/env bash
# `make demo`: generates the input once, runs the wordcount job with `baton run`, and says where
# the output is. Running it again resumes (or finds the job already done).
set -euo pipefail
build_dir=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
input="$here/input.txt"
if [ ! -s "$input" ]; then
  echo "demo: generating $input (1,000,000 lines)..."
  python3 "$here/generate_input.py" "$input.tmp" --lines 1000000
  mv "$input.tmp" "$input"
fi
"$root/$build_dir/bin/baton" run "$here/job.yaml"
out="$root/demo-out/wordcount"
echo
echo "demo: output is in $out (one part-<shard>.tsv per shard, word<TAB>count)"
echo "demo: top words over all parts:"
cat "$out"/part-*.tsv | awk -F'\t' '{c[$1]+=$2} END {for (w in c) print c[w]"\t"w}' | sort -rn | head -5 || true  # head closes the pipe early
