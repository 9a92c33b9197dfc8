#!/usr/bin/env bash
# Runs the comm benchmark side by side: one node on loopback (4 and 8 ranks: flat ring vs gloo) and
# two emulated nodes (2x2 and 2x4 ranks, inter-node links shaped by tools/netem/netem.sh: HO-Ring vs
# flat ring vs gloo). Prints comm_bench's key=value lines plus a summary.
#
# Usage: bench/comm/run.sh [--quick | --full] [--bin PATH/TO/comm_bench] [--rate 1gbit]
# Sizes: 1 KiB to 64 MiB by default (about 10 minutes on two shared cores); --full goes to 256 MiB
# (several times longer); --quick runs 1 KiB, 1 MiB and 16 MiB only.
# The emulated-cluster part needs root; without it only the loopback part runs.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${root}/build/bin/comm_bench"
size_flags=(--max-bytes 67108864)
rate=1gbit
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) size_flags=(--quick); shift ;;
    --full) size_flags=(); shift ;;
    --bin) bin=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "run.sh: $bin not built" >&2; exit 2; }
mbit=$(echo "$rate" | sed -E 's/gbit$/000/; s/mbit$//')

out=$(mktemp /tmp/comm-bench-out.XXXXXX)
trap 'rm -f "$out"' EXIT
echo "comm_bench start=$(date -u +%FT%TZ) host_cores=$(nproc) rate=$rate"
for ranks in 4 8; do
  "$bin" loopback --ranks "$ranks" "${size_flags[@]}" | tee -a "$out"
done
# Open MPI baseline (mpi_bench, bench/comm/mpi_bench.cc) on the same host, same message sizes and
# busbw definitions. config=loopback-N: Open MPI's ob1/TCP on lo only, the fair comparison with
# gloo's TCP transport; config=loopback-N-mpi-shm: Open MPI's defaults (shared memory between the
# ranks of a node), what an MPI user gets. Then 2 ranks, 64 MiB allreduce, the reference point
# "gloo 43.5 ms, Open MPI 25.6 ms". A failing mpirun is reported and the rest still runs.
mpi_bin="$(dirname "$bin")/mpi_bench"
if ! command -v mpirun >/dev/null 2>&1; then
  echo "comm_bench skipped=openmpi reason=mpirun-not-found(install-openmpi-bin)"
elif [ ! -x "$mpi_bin" ]; then
  echo "comm_bench skipped=openmpi reason=mpi_bench-not-built(needs-libopenmpi-dev) bin=$mpi_bin"
else
  mpi_sizes=(--sizes 1M,16M,64M)
  case " ${size_flags[*]:-} " in
    *" --quick "*) mpi_sizes=(--sizes 1M,16M --iters 5) ;;
    "  ") mpi_sizes=(--sizes 1M,16M,64M,256M) ;;  # --full
  esac
  mpi_tcp=(--mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo)
  # mpi_run RANKS LABEL [mpirun options...] -- [mpi_bench flags...]
  mpi_run() {
    local ranks=$1 label=$2 opts=()
    shift 2
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    if ! mpirun --allow-run-as-root --oversubscribe -np "$ranks" "${opts[@]}" \
      "$mpi_bin" --label "$label" "$@" | tee -a "$out"; then
      echo "comm_bench failed=openmpi config=$label"
    fi
  }
  for ranks in 4 8; do
    mpi_run "$ranks" "loopback-$ranks" "${mpi_tcp[@]}" -- "${mpi_sizes[@]}"
    mpi_run "$ranks" "loopback-$ranks-mpi-shm" -- "${mpi_sizes[@]}"
  done
  mpi_run 2 loopback-2 "${mpi_tcp[@]}" -- --sizes 64M --colls allreduce
  mpi_run 2 loopback-2-mpi-shm -- --sizes 64M --colls allreduce
fi
if [ "$(id -u)" -eq 0 ] && ip netns list >/dev/null 2>&1; then
  for per_node in 2 4; do
    store=$(mktemp -d /tmp/comm-bench-store.XXXXXX)
    "$root/tools/netem/netem.sh" --nodes 2 --rate "$rate" -- \
      "$bin" node --nodes 2 --per-node "$per_node" --store "$store" --link-mbit "$mbit" \
      "${size_flags[@]}" | tee -a "$out"
    rm -rf "$store"
  done
else
  echo "comm_bench skipped=emulated-cluster reason=needs-root-and-ip-netns"
fi

# Summary over messages >= 1 MiB: the worst and the best ratio for each figure.
awk '
  { bytes = 0; for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
  v["bytes"] >= 1048576 {
    for (k in v) if (k == "hring_vs_ring" || k == "ring_vs_gloo" || k == "busbw_fraction" || k == "hring_busbw_fraction") {
      key = v["config"] "_" v["coll"] "_" k
      if (!(key in lo) || v[k] < lo[key]) lo[key] = v[k]
      if (!(key in hi) || v[k] > hi[key]) hi[key] = v[k]
    }
  }
  { delete v }
  END { for (k in lo) printf "comm summary %s_min=%s %s_max=%s\n", k, lo[k], k, hi[k] }
' "$out" | sort
