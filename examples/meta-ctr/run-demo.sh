#!/usr/bin/env bash
# `make demo` (fourth part): G-Meta on generated multi-task clicks. Generates 600 training tasks
# and 150 held-out tasks (new tasks of the same world) once, turns them into episode files with
# `baton meta prepare`, exports the model; then meta-learns it as a job under the master
# (`baton run meta.yaml`, kind: meta: two ranks, every task once per epoch across failures) and
# scores the held-out tasks few-shot with the saved model and table; and, side by side, trains it
# on two ranks started by hand twice — meta-learned and plain — with each one's held-out AUC.
set -euo pipefail
build_dir=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/$build_dir/bin"
data="$here/data"
mkdir -p "$data"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [ ! -s "$data/train.ep" ] || [ ! -s "$data/heldout.ep" ] || [ ! -s "$data/model.pt" ]; then
  echo "demo: generating 600 training and 150 held-out tasks (40 rows each) into $data..."
  /usr/bin/python3 "$here/generate_tasks.py" "$data/train.csv" --tasks 600 --seed 1
  /usr/bin/python3 "$here/generate_tasks.py" "$data/heldout.csv" --tasks 150 --first-task 100000 \
    --seed 2
  for split in train heldout; do
    "$bin/baton" meta prepare --input "$data/$split.csv" --out "$data/$split.ep" --task-key task \
      --label label --dense d0,d1,d2,d3 --sparse c0,c1,c2,c3 --order-by ts
  done
  /usr/bin/python3 "$here/export_model.py" "$data/model.pt" --dense 4 --sparse 4 --dim 8 --hidden 32
fi
out="$root/demo-out"
rm -rf "$out/meta-ctr-state" "$out/meta-ctr"  # a finished demo runs again from the start
"$bin/baton" run "$here/meta.yaml"
store=$(mktemp -d /tmp/meta-demo.XXXXXX)
"$bin/baton-meta-train" --model "$out/meta-ctr/model.pt" --rows "$out/meta-ctr/model.pt.rows" \
  --train "$data/train.ep" --eval "$data/heldout.ep" --epochs 0 >"$store/job.out"
echo "demo: kind: meta job's model ($out/meta-ctr/model.pt): held-out AUC" \
  "$(grep '^auc=' "$store/job.out" | cut -d= -f2) adapted on each task's support rows"
trap 'rm -rf "$store"' EXIT
for mode in meta plain; do
  flag=""
  [ "$mode" = plain ] && flag=--plain
  args=(--model "$data/model.pt" --train "$data/train.ep" --eval "$data/heldout.ep" --epochs 5
        --tasks-per-step 4 --size 2 --store "$store/$mode" $flag)
  "$bin/baton-meta-train" "${args[@]}" --rank 1 >/dev/null 2>"$store/$mode.rank1.err" &
  rank1=$!
  "$bin/baton-meta-train" "${args[@]}" --rank 0 >"$store/$mode.out"
  wait "$rank1" || { cat "$store/$mode.rank1.err" >&2; exit 1; }
  auc=$(grep '^auc=' "$store/$mode.out" | cut -d= -f2)
  as_is=$(grep '^auc_no_adapt=' "$store/$mode.out" | cut -d= -f2)
  tps=$(grep '^tasks_per_s=' "$store/$mode.out" | cut -d= -f2)
  echo "demo: $mode model: held-out AUC $auc adapted on each task's support rows, $as_is as is ($tps tasks/s on 2 ranks)"
done
