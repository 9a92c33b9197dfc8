#!/usr/bin/env bash
# `make bench`: runs every benchmark in turn and prints their key=value lines. Each one compares
# side by side within its own run; see docs/benchmarks.md for the figures and what they mean.
set -euo pipefail
build_dir=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
echo "== control plane: DDS lease+commit throughput and master memory"
"$root/$build_dir/bin/dds_bench" "$root/$build_dir/bin/baton"
for suite in tea comm; do
  if [ -x "$root/bench/$suite/run.sh" ]; then
    echo "== $suite"
    bash "$root/bench/$suite/run.sh" "$build_dir"
  fi
done
