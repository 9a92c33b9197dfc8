#!/usr/bin/env bash
# Straggler benchmark (AntDT, train.straggler), side by side in one run: the same job under the
# same straggler with PyTorch DDP (gloo, Debian's python3-torch; ddp_straggler.py), baton with
# policies off, ND (adjust_batch) and DD (profile), each over its own clean run:
#   emulated setting (2 nodes x 2 ranks; --full adds 2 x 4): each rank's compute is a sleep of
#     rows x 500 us (x its slowdown), the model tiny, gradients and all-reduce real: policies judged
#     at a scale 2 cores cannot hold (sleeping ranks use no CPU), the same emulation inside DDP;
#   stragglers: the last rank k x slower (k = 4; --full 2, 3, 4) and a transient one (4x for
#     6 s every 12 s);
#   real setting (2 ranks x 1 thread, each pinned to its core, a wide MLP whose compute grows with
#     the batch: compute_growth_2x): rank 1 shares core 1 with stress-ng hogs (1; --full 1 and 2),
#     k = 1 + hogs nominally (the CFS share; a rank that waits in the all-reduce gets more).
#   kill_restart (emulated 2 x 2 plus a spare node, 3000 steps): node-1 is a slow host (both its
#     ranks 4x slower from the start); baton with [adjust_batch, kill_restart] moves its workers
#     to the spare; kr_over_clean = its epoch over the clean one with the same rules and spare
#     (--full adds ND alone under the same slow host).
# The clean baton run has adjust_batch on: clean_plans counts what it did with no straggler.
# Per case: X_straggler_ratio = epoch time under the straggler / the same system's clean epoch,
# ideal_ratio = N / (N - 1 + 1/k) (time-weighted for the transient case), nd_vs_ddp = DDP's epoch
# / ND's. Summary: nd_over_ideal, dd_over_ideal (worst policy ratio over the ideal), nd_vs_ddp_k4,
# kr_over_clean.
#
#   bench/straggler/run.sh [--quick | --full] [BUILD_DIR]
#
# --quick: ~10 min; --full: ~30 min. Data, specs and state go to bench-out/straggler/. Needs the
# baton and baton-train-worker targets, /usr/bin/python3 with torch and numpy, stress-ng.
set -euo pipefail
size=full
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) size=quick; shift ;;
    --full) size=full; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
for b in baton baton-train-worker; do
  [ -x "$build/bin/$b" ] || { echo "run.sh: $build/bin/$b not built (ninja -C $build $b)" >&2; exit 2; }
done
exec /usr/bin/python3 "$here/bench_straggler.py" --size "$size" --bin "$build/bin" \
  --out "$root/bench-out/straggler"
