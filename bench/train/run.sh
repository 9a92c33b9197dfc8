#!/usr/bin/env bash
# Training benchmark (kind: train), side by side in one run, the train-ctr click model
# (examples/train-ctr) on generated rows, 2 ranks x 1 thread (the machine's 2 cores):
#   1. train_vs_ddp: baton's steady samples/s over PyTorch DistributedDataParallel (gloo, Debian's
#      python3-torch; ddp_baseline.py) on the same rows, initial weights, global batch, optimizer,
#      ranks and threads (OPENBLAS_NUM_THREADS set for both); DDP gets its data as tensors already
#      in memory, baton parses CSV shards as part of its loop;
#   2. checkpoint_overhead: step time with flash checkpoints every 50 steps over none (pairs run
#      alternately; "none" is every_steps beyond the run: a snapshot at step 0 and at the end);
#   3. scaling_2_to_4: 4 ranks' samples/s over 2 ranks'. On a 2-core machine 4 ranks oversubscribe
#      the cores, so this is printed with that label and is not a scaling figure;
#   4. recovery_s: a worker SIGKILLed mid-training, to the moment the new generation (survivor plus
#      the restarted worker) has formed and restored the latest snapshot: the next step starts there;
#   5. rendezvous_s: the first generation forming after its last worker joined.
# Prints the CPU's features and key=value lines.
#
#   bench/train/run.sh [--quick | --full] [BUILD_DIR]
#
# --quick: 200k rows, one epoch (~2 min); --full (default): 400k rows, 2 epochs (~5 min). Data,
# specs and state go to bench-out/train/. Needs the baton and baton-train-worker targets and
# /usr/bin/python3 with torch and numpy.
set -euo pipefail
size=full
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) size=quick; shift ;;
    --full) size=full; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
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
exec /usr/bin/python3 "$here/bench_train.py" --size "$size" --bin "$build/bin" \
  --out "$root/bench-out/train"
