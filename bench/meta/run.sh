#!/usr/bin/env bash
# G-Meta benchmark (docs/meta.md, docs/benchmarks.md): meta-learning quality and throughput of
# baton's distributed meta-step, side by side in one run with a naive distributed MAML in PyTorch
# (bench/meta/torch_dmaml.py) on the same generated tasks, model shape and ranks. Prints key=value
# lines:
#   meta_auc, plain_auc, plain_finetuned_auc   few-shot AUC on held-out tasks (example data)
#   meta_auc_gain                               meta_auc - plain_auc (the plain model as is)
#   meta_auc_gain_vs_finetuned                  meta_auc - plain_finetuned_auc (both adapted alike)
#   tasks_per_s_{1,2,4}                         baton, 1 epoch, 64 tasks per rank per meta-step
#   seconds_2_{lookup,compute,dense_sync,push,io_wait}  rank 0's time by part on 2 ranks
#   meta_scaling_1_to_2, meta_scaling_1_to_4    ratios of those (4 ranks on this machine's cores
#                                               are time-shared: labelled)
#   independent_2_vs_1                          two independent 1-rank runs at once over one: what
#                                               this machine gives two processes (the ceiling of
#                                               meta_scaling_1_to_2 here)
#   torch_tasks_per_s, gmeta_vs_pytorch         the naive baseline on 2 ranks (all-reduce of every
#                                               gradient, dense tables included, after every
#                                               backward) and baton's 2-rank figure over it
#   gmeta_vs_pytorch_sync_once                  against the baseline syncing once per meta-step
#   gmeta_vs_pytorch[_sync_once]_per_task       the same with baton also running the model task
#                                               by task (--per-task), as the baseline does
#   dedup_speedup, lookup_once_speedup          ablations on 2 ranks: deduplicated ids vs every
#                                               occurrence; one lookup vs one per pass (k + 1)
#   tasks_per_s_2x2_{flat,hierarchical}         2 nodes x 2 ranks on the emulated network, dense
#                                               all-reduce flat or by HO-Ring (root only)
#   grouping_s, metaio_read_s, metaio_speedup   `baton meta prepare` on the rows (parse, group,
#                                               split: what an on-the-fly pipeline redoes every
#                                               epoch; plus writing the file) vs reading every
#                                               episode back, checksums verified
#
# Usage: bench/meta/run.sh [--quick | --full] [build_dir]
#   --quick  2000 training tasks, 1 timed epoch per configuration (~3 min)
#   --full   6000 training tasks
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tasks=2000
build=build
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) tasks=2000; shift ;;
    --full) tasks=6000; shift ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
bin="$root/$build/bin"
[ -x "$bin/baton-meta-train" ] || { echo "run.sh: $bin/baton-meta-train not built (make build)" >&2; exit 2; }
cores=$(nproc)  # before the export below: nproc honours OMP_NUM_THREADS
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
py=/usr/bin/python3
work=$(mktemp -d /tmp/meta-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
features=$(grep -o -w -E 'avx512f|avx512_bf16|avx512_vnni|avx2' /proc/cpuinfo | sort -u | paste -sd, -)
echo "meta_bench start=$(date -u +%FT%TZ) host_cores=$cores cpu_features=$features"

value() { grep -m1 "^$1=" "$2" | cut -d= -f2; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
prepare() {  # CSV -> episode file
  "$bin/baton" meta prepare --input "$1" --out "$2" --task-key task --label label \
    --dense d0,d1,d2,d3 --sparse c0,c1,c2,c3 --order-by ts >"$2.summary"
}
# baton-meta-train on N ranks (rank 0's figures into OUT): N OUT ARGS...
train() {
  local n=$1 out=$2 store
  shift 2
  store=$(mktemp -d "$work/store.XXXXXX")
  local pids=()
  for ((r = 1; r < n; r++)); do
    "$bin/baton-meta-train" --rank "$r" --size "$n" --store "$store" "$@" >/dev/null 2>&1 &
    pids+=($!)
  done
  "$bin/baton-meta-train" --rank 0 --size "$n" --store "$store" "$@" >"$out" 2>/dev/null
  for p in "${pids[@]}"; do wait "$p"; done
}

# 1. Quality: the example's world (vocabulary 400), meta-learned vs plain, 5 epochs, 1 rank.
$py "$root/examples/meta-ctr/generate_tasks.py" "$work/ex_train.csv" --tasks 600 --seed 1
$py "$root/examples/meta-ctr/generate_tasks.py" "$work/ex_eval.csv" --tasks 150 --first-task 100000 --seed 2
prepare "$work/ex_train.csv" "$work/ex_train.ep"
prepare "$work/ex_eval.csv" "$work/ex_eval.ep"
$py "$root/examples/meta-ctr/export_model.py" "$work/model.pt" --dense 4 --sparse 4 --dim 8 --hidden 32
quality=(--model "$work/model.pt" --train "$work/ex_train.ep" --eval "$work/ex_eval.ep" --epochs 5)
train 1 "$work/meta.out" "${quality[@]}"
train 1 "$work/plain.out" "${quality[@]}" --plain
meta_auc=$(value auc "$work/meta.out")
plain_auc=$(value auc_no_adapt "$work/plain.out")
plain_ft=$(value auc "$work/plain.out")
echo "meta_auc=$meta_auc"
echo "plain_auc=$plain_auc"
echo "plain_finetuned_auc=$plain_ft"
echo "meta_auc_gain=$(awk -v a="$meta_auc" -v b="$plain_auc" 'BEGIN { printf "%.4f", a - b }')"
echo "meta_auc_gain_vs_finetuned=$(awk -v a="$meta_auc" -v b="$plain_ft" 'BEGIN { printf "%.4f", a - b }')"

# 2. Throughput: a large vocabulary (20000 values per field), where tables dominate.
$py "$root/examples/meta-ctr/generate_tasks.py" "$work/train.csv" --tasks "$tasks" --vocab 20000 --seed 3
start=$(date +%s.%N)
prepare "$work/train.csv" "$work/train.ep"
grouping_s=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')
start=$(date +%s.%N)
"$bin/baton" meta inspect "$work/train.ep" --verify >/dev/null
read_s=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')
echo "grouping_s=$grouping_s"
echo "metaio_read_s=$read_s"
echo "metaio_speedup=$(ratio "$grouping_s" "$read_s")"
# 64 tasks per rank per meta-step. A meta-step of this small model computes in a few ms (the
# whole meta-batch in one batched pass), while its five collectives (three for the lookup, the
# all-reduce, the push) cost about a millisecond each on loopback, most of it waiting for the
# rank with more work: at 8 or 32 tasks the synchronisation outweighs the compute on 2 ranks.
per_step=64
speed=(--model "$work/model.pt" --train "$work/train.ep" --epochs 1 --tasks-per-step $per_step)
# Every configuration runs `reps` times, interleaved (a burst of load on this shared machine hits
# one repetition, not one configuration), and keeps its best tasks/s.
reps=3
declare -A best
keep() {  # NAME FILE KEY: best[NAME] = max(best[NAME], FILE's KEY)
  local v
  v=$(value "$3" "$2")
  best[$1]=$(awk -v a="${best[$1]:-0}" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
}
port=$((29500 + RANDOM % 1000))
for ((rep = 0; rep < reps; rep++)); do
  for n in 1 2 4; do
    train "$n" "$work/tps$n.out" "${speed[@]}"
    keep "tps$n" "$work/tps$n.out" tasks_per_s
  done
  # What this machine gives two processes at once: two independent 1-rank runs side by side
  # (their summed tasks/s), the ceiling for 2 ranks.
  "$bin/baton-meta-train" "${speed[@]}" >"$work/indep.a" 2>/dev/null &
  "$bin/baton-meta-train" "${speed[@]}" >"$work/indep.b" 2>/dev/null
  wait
  keep indep2 <(awk -F= '/^tasks_per_s=/ { s += $2 } END { print "tasks_per_s=" s }' \
    "$work/indep.a" "$work/indep.b") tasks_per_s
  # Ablations on 2 ranks.
  train 2 "$work/nodedup.out" "${speed[@]}" --no-dedup
  keep nodedup "$work/nodedup.out" tasks_per_s
  train 2 "$work/perpass.out" "${speed[@]}" --lookups-per-step 2
  keep perpass "$work/perpass.out" tasks_per_s
  train 2 "$work/pertask.out" "${speed[@]}" --per-task
  keep pertask "$work/pertask.out" tasks_per_s
  # The naive PyTorch baseline on the same rows, model shape and meta-batch, 2 ranks.
  for sync in every-inner-step once; do
    for r in 1 0; do
      $py "$here/torch_dmaml.py" --rows "$work/train.csv" --rank "$r" --size 2 \
        --master-port "$port" --vocab 20000 --dim 8 --hidden 32 --tasks-per-step $per_step \
        --sync "$sync" >"$work/torch_$sync.$r.out" 2>/dev/null &
    done
    wait
    port=$((port + 1))
    keep "torch_$sync" "$work/torch_$sync.0.out" torch_tasks_per_s
  done
done
echo "meta_bench note=\"tasks/s: best of $reps interleaved runs, $per_step tasks per rank per meta-step\""
for n in 1 2 4; do echo "tasks_per_s_$n=${best[tps$n]}"; done
if [ "$cores" -lt 4 ]; then
  echo "meta_bench note=\"4 ranks on $cores cores: compute is time-shared\""
fi
t1=${best[tps1]}
t2=${best[tps2]}
echo "meta_scaling_1_to_2=$(ratio "$t2" "$t1")"
echo "meta_scaling_1_to_4=$(ratio "${best[tps4]}" "$t1")"
echo "independent_2_vs_1=$(ratio "${best[indep2]}" "$t1")"
# Where rank 0's time went in the last 2-rank run, in seconds over the epoch.
for part in lookup compute dense_sync push io_wait; do
  echo "seconds_2_$part=$(value ${part}_s "$work/tps2.out")"
done
echo "rows_fetched_per_step_2=$(value rows_fetched_per_step "$work/tps2.out")"
echo "ids_per_step_2=$(value ids_per_step "$work/tps2.out")"
echo "dedup_speedup=$(ratio "$t2" "${best[nodedup]}")"
echo "lookup_once_speedup=$(ratio "$t2" "${best[perpass]}")"
echo "torch_tasks_per_s=${best[torch_every-inner-step]}"
echo "torch_sync_once_tasks_per_s=${best[torch_once]}"
echo "torch_table_floats=$(value torch_table_floats "$work/torch_once.0.out")"
echo "gmeta_vs_pytorch=$(ratio "$t2" "${best[torch_every-inner-step]}")"
echo "gmeta_vs_pytorch_sync_once=$(ratio "$t2" "${best[torch_once]}")"
# The baseline runs the model task by task (eager PyTorch); so does this figure of baton's.
echo "tasks_per_s_2_per_task=${best[pertask]}"
echo "gmeta_vs_pytorch_per_task=$(ratio "${best[pertask]}" "${best[torch_every-inner-step]}")"
echo "gmeta_vs_pytorch_sync_once_per_task=$(ratio "${best[pertask]}" "${best[torch_once]}")"

# 5. Two nodes x two ranks on the emulated network (tools/netem: 1 Gbit/s node links): tasks/s
#    with the dense all-reduce flat and by HO-Ring (this model's dense part is ~13 KiB, far below
#    the 1 MiB where HO-Ring starts to pay: auto mode takes the flat ring). Needs root.
if [ "$(id -u)" -eq 0 ] && ip netns list >/dev/null 2>&1; then
  for mode in flat hierarchical; do
    store=$(mktemp -d "$work/store.XXXXXX")
    "$root/tools/netem/netem.sh" --nodes 2 --rate 1gbit -- bash -c '
      pids=()
      for l in 0 1; do
        r=$((BATON_NETEM_NODE * 2 + l))
        "$0" --rank $r --size 4 --nodes 2 --addr "$BATON_NETEM_ADDR" --store "$1" "${@:2}" \
          >"$1/out.$r" 2>/dev/null &
        pids+=($!)
      done
      rc=0
      for p in "${pids[@]}"; do wait "$p" || rc=$?; done
      exit $rc' "$bin/baton-meta-train" "$store" "${speed[@]}" --allreduce "$mode" >/dev/null
    echo "tasks_per_s_2x2_$mode=$(value tasks_per_s "$store/out.0")"
  done
  echo "meta_bench note=\"2x2: 4 ranks on $cores cores, node links emulated at 1 Gbit/s\""
else
  echo "meta_bench skipped=emulated-2x2 reason=needs-root-and-ip-netns"
fi
