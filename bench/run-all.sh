#!/usr/bin/env bash
# `make bench`: runs every benchmark in turn and prints their key=value lines. Each one compares
# side by side within its own run; see docs/benchmarks.md for the figures and what they mean.
set -euo pipefail
build_dir=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
echo "== control plane: DDS lease+commit throughput and master memory"
"$root/$build_dir/bin/dds_bench" "$root/$build_dir/bin/baton"
echo "== comm: HO-Ring vs flat ring vs gloo (root needed for the emulated two-node part)"
bash "$root/bench/comm/run.sh" --bin "$root/$build_dir/bin/comm_bench"
echo "== LightTEA: YAGO-WIKI20K, 5 random seeds per configuration"
bash "$root/bench/tea/run.sh" "$root/$build_dir" 5
echo "== batch inference: pipelined vs sequential vs PyTorch, bounds, DAG, fault cost"
bash "$root/bench/infer/run.sh" --full "$root/$build_dir"
echo "== training: baton vs PyTorch DDP, recovery from a killed rank, rendezvous"
bash "$root/bench/train/run.sh" --full "$root/$build_dir"
