#!/usr/bin/env bash
# PaRO-DP benchmark: every sharding strategy (NNN, ZeRO-1/2/3, the PaRO triples, MiCS-like III)
# training one GPT-style decoder side by side in one run, on an emulated two-tier cluster: each
# node a network namespace (tools/netem/netem.sh), inter-node links shaped to --rate (default
# 1gbit), ranks of a node on the namespace's loopback. Prints paro_bench's key=value lines
# (bench/paro/paro_bench.cc explains each), the CPU's features and the cluster shape.
#
# Usage: bench/paro/run.sh [--quick | --full] [--rate 1gbit] [--bin build/bin/paro_bench]
#   --quick  2 nodes x 2 ranks, full / partial / PEFT training, 5 timed steps each (~3 min)
#   --full   8 timed steps, on 2 nodes x 2 ranks and then 2 nodes x 4 ranks (8 ranks on this
#            machine's cores: labelled, since ranks beyond the core count measure the scheduler as
#            much as the strategies)
# Needs root (network namespaces); exits 77 without it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${root}/build/bin/paro_bench"
rate=1gbit
configs=("2 2")
steps=5
model=(--layers 8 --dim 256 --heads 4 --vocab 2048 --seq 64 --batch 1 --micro-steps 4)
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) configs=("2 2"); steps=5; shift ;;
    --full) configs=("2 2" "2 4"); steps=8; shift ;;
    --rate) rate=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "run.sh: $bin not built (make build)" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "paro_bench skipped=emulated-cluster reason=needs-root-and-ip-netns"
  exit 77
fi
features=$(grep -o -w -E 'avx512f|avx512_bf16|avx512_vnni|avx2' /proc/cpuinfo | sort -u | paste -sd, -)
echo "paro_bench start=$(date -u +%FT%TZ) host_cores=$(nproc) rate=$rate cpu_features=$features"
store=""
out=""
trap 'rm -rf "$store" "$out"' EXIT
for config in "${configs[@]}"; do
  read -r nodes per_node <<<"$config"
  size=$((nodes * per_node))
  if [ "$size" -gt "$(nproc)" ]; then
    echo "paro_bench note=\"${nodes}x${per_node}: $size ranks on $(nproc) cores; compute is time-shared, communication is emulated\""
  fi
  store=$(mktemp -d /tmp/paro-bench-store.XXXXXX)
  out=$(mktemp /tmp/paro-bench-out.XXXXXX)
  # One command per node: its ranks, one thread each (torch and OpenBLAS), bound to the node's
  # address. A rank's failure fails the node and so the run.
  "$root/tools/netem/netem.sh" --nodes "$nodes" --rate "$rate" -- bash -c '
    pids=()
    for ((l = 0; l < '"$per_node"'; l++)); do
      OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$0" --rank $((BATON_NETEM_NODE * '"$per_node"' + l)) \
        --size '"$size"' --nodes '"$nodes"' --per-node '"$per_node"' --store "$1" \
        --addr "$BATON_NETEM_ADDR" --steps '"$steps"' "${@:2}" &
      pids+=($!)
    done
    rc=0
    for p in "${pids[@]}"; do wait "$p" || rc=$?; done
    exit $rc' "$bin" "$store" "${model[@]}" | tee "$out"
  rm -rf "$store"
  # The PyTorch peer of NNG (ZeRO-1: DDP + ZeroRedundancyOptimizer over gloo) on the same emulated
  # cluster, model and steps, with Debian's python3-torch.
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    store=$(mktemp -d /tmp/paro-bench-store.XXXXXX)
    "$root/tools/netem/netem.sh" --nodes "$nodes" --rate "$rate" -- bash -c '
      pids=()
      for ((l = 0; l < '"$per_node"'; l++)); do
        OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 GLOO_SOCKET_IFNAME=eth0 /usr/bin/python3 "$0" \
          --rank $((BATON_NETEM_NODE * '"$per_node"' + l)) --size '"$size"' --store "$1" \
          --steps '"$steps"' "${@:2}" &
        pids+=($!)
      done
      rc=0
      for p in "${pids[@]}"; do wait "$p" || rc=$?; done
      exit $rc' "$here/torch_zero1.py" "$store" \
      "${model[@]}" | tee -a "$out"
    rm -rf "$store"
    awk -v config="${nodes}x${per_node}" '
      /mode=full strategy=NNG / { for (i = 1; i <= NF; i++) if ($i ~ /^samples_per_s=/) { split($i, kv, "="); ours = kv[2] } }
      /^torch_zero1_samples_per_s=/ { split($1, kv, "="); theirs = kv[2] }
      END { if (ours + 0 > 0 && theirs + 0 > 0) printf "nng_vs_torch_zero1=%.3f config=%s\n", ours / theirs, config }
    ' "$out"
  else
    echo "paro_bench skipped=torch_zero1 reason=no-python3-torch"
  fi
  rm -f "$out"
done
